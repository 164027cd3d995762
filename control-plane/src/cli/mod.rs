//! Commands of `callway-control` beyond `serve` that read what the service holds (the others,
//! `migrate`, `purge`, `erase`, `opt-out`, live in `main.rs`).
//!
//! - [`records`]: `leads`, `lead <id>`, `call <id>`, `calls --cost` with `--json` and `--reveal`.

pub mod records;
