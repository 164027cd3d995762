//! Callway edge gateway.
//!
//! - [`core`]: the sans-IO heart — WebSocket codec, Twilio and OpenAI codecs, auth, audio, the
//!   frame path. No sockets, no clocks: bytes and times in, bytes and events out.
//! - [`samples`]: realistic protocol messages for tests, benches and fuzz corpora.
pub mod core;
pub mod samples;
