//! Callway edge gateway.
//!
//! - [`core`]: the sans-IO heart — WebSocket codec, Twilio and OpenAI codecs, auth, audio. No
//!   sockets, no clocks: bytes and times in, bytes and events out.
pub mod core;
