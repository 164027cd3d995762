//! Faithful simulators of the services Callway talks to but cannot reach from a test machine.
//!
//! - [`openai`]: OpenAI Realtime GA (WebSocket server, `client_secrets` REST).
//! - [`twilio`]: Twilio (the caller on a Media Stream, the REST API, status callbacks).
//!
//! Each is a library (tests, benches and the demo embed it) and a role of the `callway-sim`
//! binary.
pub mod openai;
pub mod twilio;
