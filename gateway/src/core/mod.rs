//! The sans-IO core: everything the gateway decides, with no socket, clock or runtime in sight.
//! Bytes and times go in, bytes and events come out; the shell (`io/`) owns the rest.
pub mod auth;
pub mod buf;
pub mod json_scan;
pub mod openai;
pub mod twilio;
pub mod ws;
