//! Callway edge gateway.
//!
//! - [`core`]: the sans-IO heart — WebSocket codec, Twilio and OpenAI codecs, auth, audio, the
//!   frame path. No sockets, no clocks: bytes and times in, bytes and events out.
//! - `io` (feature `shell`, on by default): the network shell on tokio (thread per core, `SO_REUSEPORT`, rustls): listeners,
//!   upgrade authorization and token redemption, one task per call, health and metrics, drain.
//! - [`config`]: the environment, validated at start; [`metrics`]: the counters.
//! - [`samples`]: realistic protocol messages for tests, benches and fuzz corpora.
pub mod config;
pub mod core;
#[cfg(feature = "shell")]
pub mod io;
pub mod metrics;
pub mod samples;
