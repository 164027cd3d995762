//! Twilio simulator (owner: the Twilio simulator work of issue 4).
pub mod cli;
