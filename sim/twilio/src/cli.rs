//! `callway-sim twilio-call` / `twilio-api` arguments and entry points.

/// Arguments of `callway-sim twilio-call`.
#[derive(clap::Args, Debug)]
pub struct TwilioCallArgs {}

/// Arguments of `callway-sim twilio-api`.
#[derive(clap::Args, Debug)]
pub struct TwilioApiArgs {}

/// Runs one simulated call.
pub async fn run_call(_args: TwilioCallArgs) -> anyhow::Result<()> {
    anyhow::bail!("the Twilio caller simulator CLI is not wired yet")
}

/// Runs the REST API until interrupted.
pub async fn run_api(_args: TwilioApiArgs) -> anyhow::Result<()> {
    anyhow::bail!("the Twilio REST simulator CLI is not wired yet")
}
