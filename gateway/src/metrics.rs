//! The gateway's counters, shared by every worker thread (atomics, relaxed: counters need no
//! ordering), rendered as Prometheus text on `GATEWAY_OPS_ADDR/metrics`.
//!
//! Nothing here is touched per frame: frame counts are added from each call's
//! [`CallStats`] about once a second and at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::core::call::{AmdOutcome, CallStats, IGNORED_LABELS};

/// The [`AmdOutcome`]s, in the order of [`Metrics::amd_outcomes`].
const AMD_OUTCOMES: [AmdOutcome; 4] =
    [AmdOutcome::NotRunning, AmdOutcome::Person, AmdOutcome::Machine, AmdOutcome::Undecided];

/// Every counter of the gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Calls running now.
    pub active_calls: AtomicI64,
    /// Upgrades answered with 101.
    pub upgrades_accepted: AtomicU64,
    /// Caller media frames relayed to OpenAI (directly or after being held).
    pub frames_to_openai: AtomicU64,
    /// Agent audio chunks relayed to Twilio.
    pub frames_to_twilio: AtomicU64,
    /// Caller audio bytes the hold ring dropped (ring full during a long connect/reconnect).
    pub hold_dropped_bytes: AtomicU64,
    /// Barge-ins handled.
    pub barge_ins: AtomicU64,
    /// Tool calls run at the control plane.
    pub tool_calls: AtomicU64,
    /// Tool calls that failed (timeout, transport, non-2xx).
    pub tool_failures: AtomicU64,
    /// Event batches delivered to the control plane.
    pub event_batches: AtomicU64,
    /// Event batches given up on after retries.
    pub event_batches_failed: AtomicU64,
    /// OpenAI connections that failed to open.
    pub upstream_connect_failures: AtomicU64,
    /// Whether the gateway is draining (`/readyz` answers 503).
    pub draining: std::sync::atomic::AtomicBool,
    /// Workers serving (`/readyz` needs all of them).
    pub workers_ready: AtomicU64,
    /// Workers configured.
    pub workers_total: AtomicU64,
    /// Heap trims run (`io/memory.rs`).
    pub memory_trims: AtomicU64,
    /// Time spent in them, nanoseconds.
    pub memory_trim_ns: AtomicU64,
    /// The I/O shell relaying calls (`uring` or `epoll`), set once at start.
    pub io_shell: std::sync::OnceLock<&'static str>,
    /// TLS certificate reloads that swapped a new certificate in (`SIGHUP`).
    pub tls_reloads: AtomicU64,
    /// TLS certificate reloads refused (a file unusable: the previous certificate stays).
    pub tls_reload_failures: AtomicU64,
    /// SHA-256 of the leaf certificate served now, hex (empty without TLS).
    tls_cert_sha256: Mutex<String>,
    /// The OpenAI voice API and model every call uses (`OPENAI_VOICE_API`), set once at start.
    pub voice_engine: std::sync::OnceLock<(&'static str, String)>,
    /// GPT-Live: silent output chunks held back (Twilio had nothing left to play).
    pub live_silence_held_back: AtomicU64,
    /// GPT-Live: billed session seconds of ended calls, in milliseconds.
    pub live_session_ms: AtomicU64,
    /// Answering-machine detection answers, by [`AmdOutcome`] (`not_running`, `person`,
    /// `machine`, `undecided`).
    pub amd_outcomes: [AtomicU64; 4],
    /// Events received and not acted on, by `IGNORED_LABELS` entry.
    ignored: IgnoredTotals,
    calls_ended: Mutex<BTreeMap<&'static str, u64>>,
    upgrades_refused: Mutex<BTreeMap<u16, u64>>,
}

/// What a call had already added to the shared counters (to add only the difference).
#[derive(Debug, Default, Clone, Copy)]
pub struct Reported {
    stats: CallStats,
    hold_dropped_bytes: u64,
}

/// One counter per `IGNORED_LABELS` entry.
#[derive(Debug)]
struct IgnoredTotals([AtomicU64; IGNORED_LABELS.len()]);

impl Default for IgnoredTotals {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Reported {
    /// The ignored-event counts reported so far, `(peer, kind, count)`.
    pub fn ignored(&self) -> Vec<(&'static str, &'static str, u32)> {
        self.stats.ignored.iter().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An upgrade was refused with `status`.
    pub fn upgrade_refused(&self, status: u16) {
        *lock(&self.upgrades_refused).entry(status).or_default() += 1;
    }

    /// Upgrades refused with `status` so far.
    pub fn upgrades_refused(&self, status: u16) -> u64 {
        lock(&self.upgrades_refused).get(&status).copied().unwrap_or(0)
    }

    /// The control plane answered a call's answering-machine question with `outcome`.
    pub fn amd_outcome(&self, outcome: AmdOutcome) {
        if let Some(i) = AMD_OUTCOMES.iter().position(|o| *o == outcome) {
            Self::inc(&self.amd_outcomes[i]);
        }
    }

    /// A call ended for `reason` (a `CloseReason::code`).
    pub fn call_ended(&self, reason: &'static str) {
        *lock(&self.calls_ended).entry(reason).or_default() += 1;
    }

    /// Calls ended for `reason` so far.
    pub fn calls_ended(&self, reason: &str) -> u64 {
        lock(&self.calls_ended).get(reason).copied().unwrap_or(0)
    }

    /// Adds what a call did since `last` was reported.
    pub fn add_call_stats(&self, last: &mut Reported, now: CallStats, hold_dropped_bytes: u64) {
        let add = |c: &AtomicU64, new: u64, old: u64| {
            if new > old {
                c.fetch_add(new - old, Ordering::Relaxed);
            }
        };
        let to_openai = now.media_forwarded + now.media_held;
        add(&self.frames_to_openai, to_openai, last.stats.media_forwarded + last.stats.media_held);
        add(&self.frames_to_twilio, now.agent_chunks_sent, last.stats.agent_chunks_sent);
        add(&self.barge_ins, now.barge_ins, last.stats.barge_ins);
        add(&self.live_silence_held_back, now.live_silence_held_back, last.stats.live_silence_held_back);
        add(&self.hold_dropped_bytes, hold_dropped_bytes, last.hold_dropped_bytes);
        for (i, c) in self.ignored.0.iter().enumerate() {
            add(c, u64::from(now.ignored.0[i]), u64::from(last.stats.ignored.0[i]));
        }
        *last = Reported { stats: now, hold_dropped_bytes };
    }

    /// Ignored events of `peer` and `kind` so far (all calls).
    pub fn ignored(&self, peer: &str, kind: &str) -> u64 {
        IGNORED_LABELS
            .iter()
            .position(|l| *l == (peer, kind))
            .map_or(0, |i| self.ignored.0[i].load(Ordering::Relaxed))
    }

    /// The certificate served from now on (its leaf's SHA-256, hex).
    pub fn tls_certificate_loaded(&self, sha256: &str) {
        sha256.clone_into(&mut lock(&self.tls_cert_sha256));
    }

    /// The leaf SHA-256 of the certificate served now (empty without TLS).
    pub fn tls_certificate(&self) -> String {
        lock(&self.tls_cert_sha256).clone()
    }

    /// Whether `/readyz` should answer 200.
    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Relaxed)
            && self.workers_ready.load(Ordering::Relaxed) == self.workers_total.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        one(
            "callway_gateway_active_calls",
            "gauge",
            "Calls running now.",
            self.active_calls.load(Ordering::Relaxed).to_string(),
        );
        one(
            "callway_gateway_upgrades_accepted_total",
            "counter",
            "Twilio upgrades answered with 101.",
            g(&self.upgrades_accepted).to_string(),
        );
        one(
            "callway_gateway_hold_dropped_bytes_total",
            "counter",
            "Caller audio bytes dropped by a full hold ring.",
            g(&self.hold_dropped_bytes).to_string(),
        );
        one(
            "callway_gateway_barge_ins_total",
            "counter",
            "Barge-ins handled.",
            g(&self.barge_ins).to_string(),
        );
        one(
            "callway_gateway_tool_calls_total",
            "counter",
            "Tool calls run.",
            g(&self.tool_calls).to_string(),
        );
        one(
            "callway_gateway_tool_failures_total",
            "counter",
            "Tool calls that failed.",
            g(&self.tool_failures).to_string(),
        );
        one(
            "callway_gateway_event_batches_total",
            "counter",
            "Event batches delivered to the control plane.",
            g(&self.event_batches).to_string(),
        );
        one(
            "callway_gateway_event_batches_failed_total",
            "counter",
            "Event batches given up on.",
            g(&self.event_batches_failed).to_string(),
        );
        one(
            "callway_gateway_memory_trims_total",
            "counter",
            "Times the memory freed by ended calls was handed back to the system.",
            g(&self.memory_trims).to_string(),
        );
        one(
            "callway_gateway_memory_trim_seconds_total",
            "counter",
            "Time spent handing freed memory back to the system.",
            format!("{:.6}", g(&self.memory_trim_ns) as f64 / 1e9),
        );
        one(
            "callway_gateway_upstream_connect_failures_total",
            "counter",
            "OpenAI connections that failed to open.",
            g(&self.upstream_connect_failures).to_string(),
        );
        one(
            "callway_gateway_live_silence_held_back_total",
            "counter",
            "GPT-Live output chunks of pure silence not sent to Twilio (it had nothing left to play).",
            g(&self.live_silence_held_back).to_string(),
        );
        one(
            "callway_gateway_live_session_seconds_total",
            "counter",
            "GPT-Live billed session seconds of ended calls.",
            format!("{:.3}", g(&self.live_session_ms) as f64 / 1e3),
        );
        if let Some((engine, model)) = self.voice_engine.get() {
            let _ = writeln!(
                s,
                "# HELP callway_gateway_voice_engine The OpenAI voice API and model every call uses (OPENAI_VOICE_API).\n\
                 # TYPE callway_gateway_voice_engine gauge\n\
                 callway_gateway_voice_engine{{engine=\"{engine}\",model=\"{model}\"}} 1"
            );
        }
        let _ = writeln!(
            s,
            "# HELP callway_gateway_io_shell The I/O shell relaying calls (GATEWAY_IO).\n\
             # TYPE callway_gateway_io_shell gauge\n\
             callway_gateway_io_shell{{shell=\"{}\"}} 1",
            self.io_shell.get().copied().unwrap_or("starting")
        );
        let _ = writeln!(
            s,
            "# HELP callway_gateway_frames_relayed_total Frames relayed, by direction.\n\
             # TYPE callway_gateway_frames_relayed_total counter\n\
             callway_gateway_frames_relayed_total{{direction=\"twilio_to_openai\"}} {}\n\
             callway_gateway_frames_relayed_total{{direction=\"openai_to_twilio\"}} {}",
            g(&self.frames_to_openai),
            g(&self.frames_to_twilio)
        );
        let _ = writeln!(
            s,
            "# HELP callway_gateway_tls_reloads_total TLS certificate reloads (SIGHUP), by result (error: the previous certificate is still served).\n\
             # TYPE callway_gateway_tls_reloads_total counter\n\
             callway_gateway_tls_reloads_total{{result=\"ok\"}} {}\n\
             callway_gateway_tls_reloads_total{{result=\"error\"}} {}",
            g(&self.tls_reloads),
            g(&self.tls_reload_failures)
        );
        let _ = writeln!(
            s,
            "# HELP callway_gateway_amd_outcomes_total Answering-machine detection answers the greeting waited for, by outcome (undecided: no result within AMD_HOLD_MS, or the control plane unreachable; the agent greets).\n\
             # TYPE callway_gateway_amd_outcomes_total counter"
        );
        for (outcome, n) in AMD_OUTCOMES.iter().zip(&self.amd_outcomes) {
            let _ = writeln!(
                s,
                "callway_gateway_amd_outcomes_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                g(n)
            );
        }
        let sha = self.tls_certificate();
        if !sha.is_empty() {
            let _ = writeln!(
                s,
                "# HELP callway_gateway_tls_certificate_info The certificate new handshakes present (leaf SHA-256).\n\
                 # TYPE callway_gateway_tls_certificate_info gauge\n\
                 callway_gateway_tls_certificate_info{{sha256=\"{sha}\"}} 1"
            );
        }
        let _ = writeln!(
            s,
            "# HELP callway_gateway_calls_total Calls ended, by reason.\n# TYPE callway_gateway_calls_total counter"
        );
        for (reason, n) in lock(&self.calls_ended).iter() {
            let _ = writeln!(s, "callway_gateway_calls_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP callway_gateway_upgrades_refused_total Upgrades refused, by HTTP status.\n# TYPE callway_gateway_upgrades_refused_total counter"
        );
        for (status, n) in lock(&self.upgrades_refused).iter() {
            let _ = writeln!(s, "callway_gateway_upgrades_refused_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP callway_gateway_ignored_events_total Events received and not acted on, by peer and kind (unknown: a kind not in the fixed label set).\n# TYPE callway_gateway_ignored_events_total counter"
        );
        for ((peer, kind), c) in IGNORED_LABELS.iter().zip(&self.ignored.0) {
            let n = g(c);
            if n > 0 {
                let _ = writeln!(
                    s,
                    "callway_gateway_ignored_events_total{{peer=\"{peer}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_and_adds_only_differences() {
        let m = Metrics::default();
        m.upgrade_refused(403);
        m.upgrade_refused(403);
        m.call_ended("caller_hung_up");
        let _ = m.io_shell.set("uring");
        let mut last = Reported::default();
        let stats =
            CallStats { media_forwarded: 10, media_held: 2, agent_chunks_sent: 5, ..CallStats::default() };
        m.add_call_stats(&mut last, stats, 0);
        m.add_call_stats(&mut last, stats, 160);
        let text = m.render();
        assert!(text.contains("callway_gateway_upgrades_refused_total{status=\"403\"} 2"), "{text}");
        assert!(text.contains("callway_gateway_calls_total{reason=\"caller_hung_up\"} 1"), "{text}");
        assert!(text.contains("{direction=\"twilio_to_openai\"} 12"), "{text}");
        assert!(text.contains("{direction=\"openai_to_twilio\"} 5"), "{text}");
        assert!(text.contains("callway_gateway_hold_dropped_bytes_total 160"), "{text}");
        assert!(text.contains("callway_gateway_io_shell{shell=\"uring\"} 1"), "{text}");
    }
}
