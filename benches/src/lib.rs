//! Helpers shared by the frame-path benchmarks and the load generator.
