//! Frame-path benchmarks.
fn main() {}
