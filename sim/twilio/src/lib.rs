//! Twilio simulator (issue 4): not built yet.
pub mod cli;
