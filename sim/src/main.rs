//! `callway-sim`: the simulators from the shell, one subcommand per role.
use clap::{Parser, Subcommand};

/// Stand-ins for Twilio and OpenAI Realtime that follow the real protocols, errors included.
#[derive(Parser)]
#[command(name = "callway-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// OpenAI Realtime: WebSocket `/v1/realtime` and REST `/v1/realtime/client_secrets`.
    Openai(callway_sim::openai::cli::OpenAiArgs),
    /// A Twilio caller: opens a Media Streams WebSocket to a URL and plays a call over it.
    TwilioCall(callway_sim::twilio::cli::TwilioCallArgs),
    /// Twilio REST API (`Calls.json`, `OutgoingCallerIds.json`) that places calls and sends callbacks.
    TwilioApi(callway_sim::twilio::cli::TwilioApiArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The rules every Callway binary shares: stderr, colours only on a terminal without
    // NO_COLOR, LOG_FORMAT=json, numbers and tokens masked in every line.
    callway_logs::init("info", callway_logs::Format::from_env().map_err(anyhow::Error::msg)?);
    match Cli::parse().role {
        Role::Openai(a) => callway_sim::openai::cli::run(a).await,
        Role::TwilioCall(a) => callway_sim::twilio::cli::run_call(a).await,
        Role::TwilioApi(a) => callway_sim::twilio::cli::run_api(a).await,
    }
}
