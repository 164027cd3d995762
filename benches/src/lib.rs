//! Frame-path benchmarks (`benches/frame_path.rs`, criterion) and the end-to-end load generator
//! ([`loadgen`], binary `callway-loadgen`). Results and how to read them: `benches/README.md`.

pub mod loadgen;
