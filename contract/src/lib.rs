//! What the two Callway binaries (the edge gateway and the control plane) and the simulators
//! agree on.
//!
//! - [`stream_token`]: the short-lived, signed token the control plane puts in the Twilio
//!   `<Stream url>` path and the gateway checks before it accepts the upgrade.
//! - [`twilio_signature`]: Twilio's `X-Twilio-Signature` scheme (HMAC-SHA1), for the WebSocket
//!   upgrade (gateway), status callbacks (control plane) and the Twilio simulator that signs.
//! - [`internal_api`]: the HMAC-authenticated JSON API the gateway calls on the control plane.
//! - [`env`]: how both binaries read and validate their configuration.
//! - [`realtime`]: the OpenAI Realtime model and turn detection, read the same way by both.
//! - [`voice_api`]: which OpenAI voice API (Realtime or GPT-Live) and model both binaries use.
//!
//! Everything here is pure (no clock, no I/O): callers pass the current time in.
#![forbid(unsafe_code)]

pub mod env;
pub mod internal_api;
pub mod realtime;
pub mod stream_token;
pub mod twilio_signature;
pub mod voice_api;
