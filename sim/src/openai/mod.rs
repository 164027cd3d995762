//! OpenAI Realtime simulator (owner: the OpenAI simulator work of issue 4).
pub mod cli;
