//! The soak's command-line flags (flattened into `callway-loadgen`'s), with the defaults of
//! `scripts/soak`'s run: calls of 30 s to 4 min, a barge-in every ~20 s and a tool call every
//! ~30 s per call, half the OpenAI sessions reset every 3 min, RSS sampled every 10 s.

use std::time::Duration;

use clap::Args;

use super::script::ScriptConfig;
use crate::loadgen::options::parse_duration;

/// `--soak` and its knobs.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Run a soak instead of load levels: one level (--calls N kept concurrent), one run,
    /// relay mode, for --duration, with the faults below.
    #[arg(long)]
    pub soak: bool,
    /// Shortest call: each call hangs up at a random time between --call-min and --call-max
    /// after it started, and a new call takes its place.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub call_min: Duration,
    /// Longest call.
    #[arg(long, default_value = "4m", value_parser = parse_duration)]
    pub call_max: Duration,
    /// Mean time between barge-ins in one OpenAI session.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub barge_every: Duration,
    /// Mean time between tool calls in one OpenAI session.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub tool_every: Duration,
    /// Time between OpenAI drop waves (the first one after the ramp and this long).
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub drop_every: Duration,
    /// Share of the open OpenAI sessions each wave resets (0–1).
    #[arg(long, default_value_t = 0.5)]
    pub drop_share: f64,
    /// Period of the gateway RSS samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub rss_every: Duration,
    /// RSS samples before the end of the ramp and this long after are warm-up, not judged.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub warmup: Duration,
}

impl SoakArgs {
    /// The stand-in's script settings.
    pub fn script(&self) -> ScriptConfig {
        ScriptConfig {
            barge_every_ms: self.barge_every.as_millis() as u64,
            tool_every_ms: self.tool_every.as_millis() as u64,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.call_min.is_zero() || self.call_max < self.call_min {
            return Err("--call-min must be above 0 and at most --call-max".into());
        }
        if !(0.0..=1.0).contains(&self.drop_share) {
            return Err("--drop-share is a share: 0 to 1".into());
        }
        if [self.barge_every, self.tool_every, self.drop_every, self.rss_every]
            .iter()
            .any(|d| d.as_millis() < 10)
        {
            return Err(
                "--barge-every, --tool-every, --drop-every and --rss-every must be at least 10ms".into()
            );
        }
        Ok(())
    }
}
