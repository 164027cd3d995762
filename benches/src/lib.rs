//! Frame-path benchmarks (`benches/frame_path.rs`, criterion). Results and how to read them:
//! `benches/README.md`.
