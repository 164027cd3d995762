//! A soak's result: what the run measured ([`SoakOutcome`], inside the run's result), and the
//! judged report ([`SoakReport`]): frames relayed vs. sent with the cut and lost ones, the
//! gateway's RSS over time and its spread after warm-up, OpenAI sessions left, errors by kind
//! (the gateway's `/metrics`, the stand-in's real-server errors, the cross-leg checks), and a
//! verdict per requirement. Printed as a Markdown table; written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::counts::SoakCounts;
use crate::loadgen::recorder::Counts;
use crate::loadgen::report::RunResult;

/// One RSS sample of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RssSample {
    /// Seconds since the first call started.
    pub t_s: f64,
    /// Resident set (KiB).
    pub kib: u64,
}

/// What a soak run measured beside the load generator's counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakOutcome {
    /// The soak's counts.
    pub counts: SoakCounts,
    /// The gateway's RSS over the run.
    pub rss: Vec<RssSample>,
    /// The gateway's `/metrics` after the last call.
    pub metrics: BTreeMap<String, f64>,
    /// Why `/metrics` could not be read, if so.
    pub metrics_error: Option<String>,
}

/// RSS after warm-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RssStats {
    /// Samples judged.
    pub samples: usize,
    /// Mean (KiB).
    pub mean_kib: f64,
    /// Smallest (KiB).
    pub min_kib: u64,
    /// Largest (KiB).
    pub max_kib: u64,
    /// Largest distance of a sample from the mean, in % of the mean.
    pub max_dev_pct: f64,
    /// Least-squares slope (KiB per minute).
    pub slope_kib_per_min: f64,
}

impl RssStats {
    /// Over the samples at or after `warmup_s`.
    pub fn after(samples: &[RssSample], warmup_s: f64) -> Self {
        let s: Vec<&RssSample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
        if s.is_empty() {
            return Self::default();
        }
        let n = s.len() as f64;
        let mean = s.iter().map(|x| x.kib as f64).sum::<f64>() / n;
        let mean_t = s.iter().map(|x| x.t_s).sum::<f64>() / n;
        let var_t = s.iter().map(|x| (x.t_s - mean_t).powi(2)).sum::<f64>();
        let cov = s.iter().map(|x| (x.t_s - mean_t) * (x.kib as f64 - mean)).sum::<f64>();
        Self {
            samples: s.len(),
            mean_kib: mean,
            min_kib: s.iter().map(|x| x.kib).min().unwrap_or(0),
            max_kib: s.iter().map(|x| x.kib).max().unwrap_or(0),
            max_dev_pct: s.iter().map(|x| (x.kib as f64 - mean).abs()).fold(0.0, f64::max) / mean * 100.0,
            slope_kib_per_min: if var_t > 0.0 { cov / var_t * 60.0 } else { 0.0 },
        }
    }
}

/// One requirement and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What must hold.
    pub requirement: String,
    /// What was measured.
    pub measured: String,
    /// Met.
    pub ok: bool,
}

/// The judged result of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The exact command.
    pub command: String,
    /// When it finished (Unix seconds).
    pub finished_unix: u64,
    /// Concurrent calls.
    pub calls: u32,
    /// Length of the soak (s).
    pub duration_s: f64,
    /// Warm-up excluded from the RSS judgement (s).
    pub warmup_s: f64,
    /// The load generator's frame counts (`lost` net of the cut frames).
    pub frames: Counts,
    /// The soak's counts.
    pub soak: SoakCounts,
    /// RSS after warm-up.
    pub rss_after_warmup: RssStats,
    /// Every RSS sample.
    pub rss: Vec<RssSample>,
    /// The gateway's `/metrics` at the end.
    pub gateway_metrics: BTreeMap<String, f64>,
    /// Why `/metrics` could not be read, if so.
    pub gateway_metrics_error: Option<String>,
    /// Calls that failed, by reason.
    pub failures: Vec<(String, u32)>,
    /// Each requirement.
    pub verdicts: Vec<Verdict>,
}

fn verdict(requirement: &str, measured: String, ok: bool) -> Verdict {
    Verdict { requirement: requirement.to_owned(), measured, ok }
}

impl SoakReport {
    /// Judges a soak run; `warmup_s` of RSS samples are not judged, `rss_tolerance_pct` is the
    /// allowed spread around the mean after it.
    pub fn judge(r: &RunResult, command: String, warmup_s: f64, rss_tolerance_pct: f64) -> Self {
        let out = r.soak.clone().unwrap_or_default();
        let c = &r.counts;
        let s = &out.counts;
        let rss = RssStats::after(&out.rss, warmup_s);
        let relayed_ok = c.lost == 0 && c.duplicated + c.misrouted + c.unknown + c.undecodable == 0;
        let checks = &s.checks;
        let verdicts = vec![
            verdict(
                "0 frames lost outside injected faults",
                format!(
                    "sent {}, relayed back {}, cut by hang-ups {}, cut by OpenAI drops {}, lost {}; duplicated {}, misrouted {}, corrupt {}",
                    c.sent,
                    c.received,
                    s.cut_by_hangup,
                    s.cut_by_openai_drop,
                    c.lost,
                    c.duplicated,
                    c.misrouted,
                    c.unknown + c.undecodable
                ),
                relayed_ok,
            ),
            verdict(
                &format!("gateway RSS flat within ±{rss_tolerance_pct} % after warm-up"),
                format!(
                    "{} samples, mean {:.0} KiB, {}–{} KiB, max deviation {:.2} %, slope {:+.1} KiB/min",
                    rss.samples,
                    rss.mean_kib,
                    rss.min_kib,
                    rss.max_kib,
                    rss.max_dev_pct,
                    rss.slope_kib_per_min
                ),
                rss.samples >= 2 && rss.max_dev_pct <= rss_tolerance_pct,
            ),
            verdict(
                "0 OpenAI sessions left open after the last call",
                c.openai_sessions_left.to_string(),
                c.openai_sessions_left == 0,
            ),
            verdict(
                "0 errors the real OpenAI server would have sent",
                format!("{:?}", s.errors),
                s.errors.total() == 0,
            ),
            verdict(
                "every barge-in cleared on Twilio, truncated within what was played",
                format!(
                    "{} barge-ins, {} cleared, {} void (the call or its session ended first), {} not cleared, {} truncates checked, {} beyond played",
                    checks.barge_ins,
                    checks.cleared,
                    checks.voided,
                    checks.not_cleared,
                    checks.truncates_checked,
                    checks.truncates_beyond_played
                ),
                checks.barge_ins > 0 && checks.not_cleared == 0 && checks.truncates_beyond_played == 0,
            ),
            verdict(
                "every tool call answered with its function_call_output",
                format!(
                    "{} tool calls, {} control-plane requests, {} outputs ({} naming no pending call, {} without the control plane's answer), {} B of caller audio not kept",
                    s.tool_calls,
                    c.tool_requests,
                    s.tool_outputs,
                    s.tool_outputs_unknown,
                    s.tool_outputs_not_saved,
                    s.queue_overflow_bytes
                ),
                s.tool_calls > 0
                    && s.tool_outputs_unknown + s.tool_outputs_not_saved + s.queue_overflow_bytes == 0,
            ),
        ];
        Self {
            command,
            finished_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            calls: r.calls,
            duration_s: r.window_s,
            warmup_s,
            frames: r.counts,
            soak: out.counts,
            rss_after_warmup: rss,
            rss: out.rss,
            gateway_metrics: out.metrics,
            gateway_metrics_error: out.metrics_error,
            failures: r.failures.clone(),
            verdicts,
        }
    }

    /// Whether every requirement was met.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.ok)
    }

    /// The Markdown tables: the verdicts, then what was injected and the gateway's counters.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "| requirement | measured | met |\n|---|---|---|");
        for v in &self.verdicts {
            let _ = writeln!(
                t,
                "| {} | {} | {} |",
                v.requirement,
                v.measured,
                if v.ok { "yes" } else { "**no**" }
            );
        }
        let s = &self.soak;
        let _ = writeln!(
            t,
            "\n| injected | count |\n|---|---|\n| calls started | {} |\n| random hang-ups | {} |\n| OpenAI drops | {} |\n| barge-ins | {} |\n| tool calls | {} |\n| responses created | {} |",
            s.calls_started, s.hang_ups, s.openai_drops, s.barge_ins, s.tool_calls, s.responses
        );
        let _ = writeln!(t, "\n| gateway /metrics (non-zero) | value |\n|---|---|");
        for (k, v) in self.gateway_metrics.iter().filter(|(_, v)| **v != 0.0) {
            let _ = writeln!(t, "| `{k}` | {v} |");
        }
        if let Some(e) = &self.gateway_metrics_error {
            let _ = writeln!(t, "| (not read: {e}) | |");
        }
        if !self.failures.is_empty() {
            let _ = writeln!(t, "\n| call failures | calls |\n|---|---|");
            for (k, v) in &self.failures {
                let _ = writeln!(t, "| {k} | {v} |");
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_stats_ignore_warm_up_and_measure_spread_and_slope() {
        let samples: Vec<RssSample> = (0..10)
            .map(|i| RssSample {
                t_s: f64::from(i) * 10.0,
                kib: if i < 3 { 1000 } else { 20_000 + i as u64 * 10 },
            })
            .collect();
        let s = RssStats::after(&samples, 30.0);
        assert_eq!((s.samples, s.min_kib, s.max_kib), (7, 20_030, 20_090));
        assert!((s.mean_kib - 20_060.0).abs() < 1e-9);
        assert!((s.max_dev_pct - 30.0 / 20_060.0 * 100.0).abs() < 1e-9);
        assert!((s.slope_kib_per_min - 60.0).abs() < 1e-9, "10 KiB per 10 s");
        assert_eq!(RssStats::after(&samples, 1e9).samples, 0);
    }
}
