//! The sans-IO core: everything the gateway decides, with no socket, clock or runtime in sight.
//! Bytes and times go in, bytes and events come out; the shell owns sockets, TLS and clocks.
//!
//! - [`ws`]: WebSocket codec and upgrade.
//! - [`twilio`], [`openai`], [`live`]: the JSON protocols (Twilio, OpenAI Realtime, OpenAI
//!   GPT-Live), fast paths for the hot events.
//! - [`relay`]: the frame path composed from the above.
//! - [`audio`]: μ-law, energy, the hold ring.
//! - [`auth`]: who may open a stream.
//! - [`call`]: one call's state machine (start to close, barge-in, tools, timeouts, reconnect).
pub mod audio;
pub mod auth;
pub mod buf;
pub mod call;
pub mod json_scan;
pub mod live;
pub mod openai;
pub mod relay;
pub mod twilio;
pub mod ws;
