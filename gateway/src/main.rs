//! `callway-gateway`.
fn main() {}
