//! `callway-loadgen`: the end-to-end load generator (issue 16, part 1).
//!
//! It measures the real gateway binary, unmodified, on loopback: N concurrent simulated Twilio
//! calls, each a real signed WebSocket upgrade to `/api/twilio/media-stream/<stream token>`
//! sending 20 ms μ-law `media` frames; a stub control plane (token redemption, event batches);
//! and an OpenAI Realtime stand-in that echoes every `input_audio_buffer.append` back as a
//! `response.output_audio.delta`. One round trip is caller `media` → gateway → `append` →
//! stand-in → `delta` → gateway → `media` + `mark` → caller, timed from the frame's scheduled
//! send time. The echo-floor mode runs the same callers against a one-leg WebSocket echo
//! server, the baseline every report carries.
//!
//! # Design rules (why the harness measures the gateway and not itself)
//! - ONE process plays all three outside parties, with one event loop per core it is given
//!   (`--cores 1`: a single thread), pinned; the gateway runs pinned on another core.
//! - Pacing comes from ONE periodic tick (`timerfd`, 1 ms), calls spread over 20 phases; never
//!   a timer per call or per frame. Writes are batched: one `write` per socket per tick.
//! - Events are parsed by byte search, frames written from constant pieces: the harness costs
//!   less per frame than the gateway, and reports its own CPU, idle share and tick lateness, and
//!   flags a run as *harness-bound* when its core was above 85 % busy.
//!
//! # Files, one concern each
//! - [`options`]: the command line; [`setup`]: secrets, stream tokens, signatures, the
//!   gateway's environment; [`pacing`]: the tick schedule and the run's timeline;
//! - [`frame`]: frame ids inside the μ-law payload; [`scan`]: byte-search parsing;
//!   [`conn`]: output buffers, reads, plain or TLS sockets; [`tls`]: `--tls`, the test CA;
//! - [`caller`]: a simulated Twilio call; [`openai_stub`]: the Realtime stand-in;
//!   [`control_stub`]: the stub control plane; [`event_loop`]: one loop holding them all;
//! - [`recorder`]: what a loop measures; [`stats`]: histograms, percentiles, spread;
//!   [`procfs`]: CPU, RSS, core busy time; [`syscalls`]: perf or strace;
//!   [`process`]: spawned processes (killed on drop) and pinning;
//! - [`run`]: levels × repeats × modes and the monitor; [`report`]: results, summary table,
//!   JSON; [`plot`]: the SVG;
//! - [`soak`]: `--soak`, the same loop for a long run with faults (hang-ups, barge-ins, tool
//!   calls, OpenAI drops) and what must hold through them.

pub mod caller;
pub mod conn;
pub mod control_stub;
pub mod event_loop;
pub mod frame;
pub mod openai_stub;
pub mod options;
pub mod pacing;
pub mod plot;
pub mod process;
pub mod procfs;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scan;
pub mod setup;
pub mod soak;
pub mod stats;
pub mod syscalls;
pub mod tls;

pub use options::{Mode, Options};
pub use run::{Harness, TargetEndpoint};
