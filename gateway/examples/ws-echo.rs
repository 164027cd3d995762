//! WebSocket conformance harness (being built).
fn main() {}
