//! `callway-sim openai` arguments and entry point.

/// Arguments of `callway-sim openai`.
#[derive(clap::Args, Debug)]
pub struct OpenAiArgs {}

/// Runs the role until interrupted.
pub async fn run(_args: OpenAiArgs) -> anyhow::Result<()> {
    anyhow::bail!("the OpenAI simulator is not built yet (issue 4)")
}
