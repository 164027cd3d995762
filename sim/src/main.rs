//! `callway-sim`: the simulators from the shell.
fn main() {
    eprintln!("callway-sim: no simulator role is built yet (issue 4)");
    std::process::exit(2);
}
