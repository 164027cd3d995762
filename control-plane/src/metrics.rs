//! Counters for `/metrics`, in the Prometheus text format. Plain atomics: the control plane
//! handles a few requests per call, nothing here needs a metrics library.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every counter and gauge the control plane exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `/api/session` successes.
    pub sessions_created: AtomicU64,
    /// Leads written (or queued).
    pub leads_saved: AtomicU64,
    /// Calls handed to Twilio.
    pub calls_placed: AtomicU64,
    /// `trigger_call` refusals by a guard (number, limits, active call).
    pub calls_refused: AtomicU64,
    /// Twilio REST failures.
    pub twilio_errors: AtomicU64,
    /// OpenAI REST failures.
    pub openai_errors: AtomicU64,
    /// Signed status callbacks accepted.
    pub status_callbacks: AtomicU64,
    /// Callbacks or internal requests refused for their signature.
    pub signature_failures: AtomicU64,
    /// Stream tokens redeemed.
    pub tokens_redeemed: AtomicU64,
    /// Stream tokens refused (forged, expired, replayed, unknown).
    pub tokens_refused: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Call events stored.
    pub call_events: AtomicU64,
    /// Writes queued in the outbox since start.
    pub outbox_queued: AtomicU64,
    /// Outbox writes replayed since start.
    pub outbox_replayed: AtomicU64,
    /// Outbox writes refused for good.
    pub outbox_dead: AtomicU64,
    /// Writes waiting in the outbox now (gauge).
    pub outbox_pending: AtomicU64,
    /// Transcript lines purged by retention.
    pub transcripts_purged: AtomicU64,
    /// Call retries scheduled.
    pub retries_scheduled: AtomicU64,
    /// Call retries placed by the worker.
    pub retries_placed: AtomicU64,
    /// Call retries cancelled.
    pub retries_cancelled: AtomicU64,
    /// Retries found stuck in `placing` (their control plane stopped) and settled.
    pub retries_recovered: AtomicU64,
    /// Answering-machine detection results received.
    pub amd_results: AtomicU64,
    /// Calls a machine answered that were given the voicemail policy (message left or hung up).
    pub voicemails: AtomicU64,
    /// Warm transfers handed to Twilio (`<Dial>` to `TRANSFER_TARGET`).
    pub transfers_requested: AtomicU64,
    /// Warm transfers a person took (`DialCallStatus` completed/answered).
    pub transfers_completed: AtomicU64,
    /// Warm transfers nobody took (busy, no-answer, failed, canceled).
    pub transfers_failed: AtomicU64,
    /// `transfer_to_human` requests refused (no target, bad arguments, Twilio refused).
    pub transfers_refused: AtomicU64,
    /// Hand-over notes `TRANSFER_WEBHOOK_URL` did not accept.
    pub transfer_webhook_failures: AtomicU64,
    /// Seconds Twilio billed (`CallDuration` of `completed` callbacks).
    pub twilio_billed_seconds: AtomicU64,
    /// OpenAI input tokens the gateways reported.
    pub openai_input_tokens: AtomicU64,
    /// OpenAI output tokens the gateways reported.
    pub openai_output_tokens: AtomicU64,
    /// GPT-Live seconds of session the gateways reported (whole seconds, per call).
    pub openai_live_seconds: AtomicU64,
    /// Twilio's part of the calls' cost, millionths of `PRICES_FILE`'s currency.
    pub cost_twilio_micros: AtomicU64,
    /// OpenAI's part of the calls' cost, millionths of `PRICES_FILE`'s currency.
    pub cost_openai_micros: AtomicU64,
}

impl Metrics {
    /// Adds one.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64, &str); 34] = [
            ("callway_sessions_created_total", "counter", &self.sessions_created, "Web sessions created"),
            ("callway_leads_saved_total", "counter", &self.leads_saved, "Leads saved or queued"),
            ("callway_calls_placed_total", "counter", &self.calls_placed, "Calls created at Twilio"),
            (
                "callway_calls_refused_total",
                "counter",
                &self.calls_refused,
                "trigger_call refused by a guard",
            ),
            ("callway_twilio_errors_total", "counter", &self.twilio_errors, "Twilio REST failures"),
            ("callway_openai_errors_total", "counter", &self.openai_errors, "OpenAI REST failures"),
            (
                "callway_status_callbacks_total",
                "counter",
                &self.status_callbacks,
                "Signed Twilio callbacks accepted",
            ),
            (
                "callway_signature_failures_total",
                "counter",
                &self.signature_failures,
                "Requests refused for their signature",
            ),
            (
                "callway_stream_tokens_redeemed_total",
                "counter",
                &self.tokens_redeemed,
                "Stream tokens redeemed",
            ),
            ("callway_stream_tokens_refused_total", "counter", &self.tokens_refused, "Stream tokens refused"),
            ("callway_rate_limited_total", "counter", &self.rate_limited, "Requests refused by a rate limit"),
            ("callway_call_events_total", "counter", &self.call_events, "Call events stored"),
            ("callway_outbox_queued_total", "counter", &self.outbox_queued, "Writes queued in the outbox"),
            ("callway_outbox_replayed_total", "counter", &self.outbox_replayed, "Outbox writes replayed"),
            ("callway_outbox_dead_total", "counter", &self.outbox_dead, "Outbox writes refused for good"),
            ("callway_outbox_pending", "gauge", &self.outbox_pending, "Writes waiting in the outbox"),
            (
                "callway_transcripts_purged_total",
                "counter",
                &self.transcripts_purged,
                "Transcript lines purged",
            ),
            ("callway_retries_scheduled_total", "counter", &self.retries_scheduled, "Call retries scheduled"),
            ("callway_retries_placed_total", "counter", &self.retries_placed, "Call retries placed"),
            ("callway_retries_cancelled_total", "counter", &self.retries_cancelled, "Call retries cancelled"),
            (
                "callway_retries_recovered_total",
                "counter",
                &self.retries_recovered,
                "Call retries found stuck in placing after a control-plane stop and settled (requeued, adopted or failed)",
            ),
            (
                "callway_amd_results_total",
                "counter",
                &self.amd_results,
                "Answering-machine detection results received",
            ),
            (
                "callway_twilio_billed_seconds_total",
                "counter",
                &self.twilio_billed_seconds,
                "Seconds Twilio billed (CallDuration of completed calls)",
            ),
            (
                "callway_openai_input_tokens_total",
                "counter",
                &self.openai_input_tokens,
                "OpenAI input tokens reported by the gateways",
            ),
            (
                "callway_openai_output_tokens_total",
                "counter",
                &self.openai_output_tokens,
                "OpenAI output tokens reported by the gateways",
            ),
            (
                "callway_openai_live_seconds_total",
                "counter",
                &self.openai_live_seconds,
                "GPT-Live seconds of session reported by the gateways (billed per second)",
            ),
            (
                "callway_call_cost_twilio_micros_total",
                "counter",
                &self.cost_twilio_micros,
                "Twilio's part of the calls' cost, millionths of PRICES_FILE's currency",
            ),
            (
                "callway_call_cost_openai_micros_total",
                "counter",
                &self.cost_openai_micros,
                "OpenAI's part of the calls' cost, millionths of PRICES_FILE's currency",
            ),
            (
                "callway_transfers_total{outcome=\"requested\"}",
                "counter",
                &self.transfers_requested,
                "Warm transfers by outcome: requested (Dial sent), completed, failed, refused",
            ),
            ("callway_transfers_total{outcome=\"completed\"}", "counter", &self.transfers_completed, ""),
            ("callway_transfers_total{outcome=\"failed\"}", "counter", &self.transfers_failed, ""),
            ("callway_transfers_total{outcome=\"refused\"}", "counter", &self.transfers_refused, ""),
            (
                "callway_transfer_webhook_failures_total",
                "counter",
                &self.transfer_webhook_failures,
                "Hand-over notes TRANSFER_WEBHOOK_URL did not accept (the transfer went on)",
            ),
            (
                "callway_voicemails_total",
                "counter",
                &self.voicemails,
                "Calls answered by a machine handled by VOICEMAIL_POLICY (message left or hung up)",
            ),
        ];
        let mut out = String::with_capacity(4096);
        let mut family_done = "";
        for (name, kind, value, help) in rows {
            // A labelled series (`name{label="…"}`) shares its family's HELP and TYPE lines.
            let family = name.split('{').next().unwrap_or(name);
            if family != family_done {
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
                family_done = family;
            }
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.calls_placed);
        let text = m.render();
        assert!(text.contains("# TYPE callway_calls_placed_total counter\ncallway_calls_placed_total 1\n"));
        assert!(text.contains("# TYPE callway_outbox_pending gauge\ncallway_outbox_pending 0\n"));
        Metrics::inc(&m.transfers_failed);
        assert!(text.matches("# TYPE callway_transfers_total counter").count() == 1, "{text}");
        let text = m.render();
        assert!(text.contains("callway_transfers_total{outcome=\"completed\"} 0\ncallway_transfers_total{outcome=\"failed\"} 1\n"), "{text}");
    }
}
