//! `callway-control`: the control plane binary.
fn main() {
    eprintln!("callway-control: not built yet (issue 5)");
    std::process::exit(2);
}
