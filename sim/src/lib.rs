//! Faithful simulators of the services Callway talks to but cannot reach from a test machine.
//!
//! - [`openai`]: OpenAI Realtime GA (WebSocket server, `client_secrets` REST) — crate
//!   `callway-sim-openai` in `sim/openai/`.
//! - [`twilio`]: Twilio (the caller on a Media Stream, the REST API, status callbacks) — crate
//!   `callway-sim-twilio` in `sim/twilio/`.
//!
//! One crate per simulator keeps each self-contained; this crate gathers them behind the
//! `callway-sim` binary, one subcommand per role.
pub use callway_sim_openai as openai;
pub use callway_sim_twilio as twilio;
