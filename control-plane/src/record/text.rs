//! The CLI's plain-text rendering of the records: aligned columns for lists, one section per
//! part of a call (timeline, durations, dialogue, summary, usage, cost). Times are UTC; amounts
//! in the price table's currency, exact to the millionth.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::macros::format_description;

use super::{CallBrief, CallRecord, LeadListItem, LeadRecord};
use crate::cost::{CallCost, Cost, CostReport};

fn when(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn outcome(c: &CallBrief) -> String {
    let mut s = c.status.clone();
    if let Some(r) = &c.end_reason {
        let _ = write!(s, " ({r})");
    }
    if let Some(d) = c.duration_ms {
        let _ = write!(s, ", {}", seconds(d));
    }
    s
}

/// `callway-control leads`.
pub fn leads(list: &[LeadListItem]) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("no leads yet\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<19}  {:<36}  {:<24}  {:<13}  {:<19}  {:<6}  {:>5}  LAST CALL",
        "CREATED (UTC)", "LEAD", "NAME", "PHONE", "CONSENT (UTC)", "SOURCE", "CALLS"
    );
    for l in list {
        let name = format!("{} {}", l.first_name, l.last_name);
        let last = l
            .last_call
            .as_ref()
            .map_or_else(|| "-".into(), |c| format!("{} {}", when(c.created_at), outcome(c)));
        let _ = writeln!(
            out,
            "{:<19}  {:<36}  {:<24}  {:<13}  {:<19}  {:<6}  {:>5}  {last}",
            when(l.created_at),
            l.id,
            name,
            l.phone,
            when(l.consent_at),
            l.source,
            l.calls
        );
    }
    out
}

/// `callway-control lead <id>`.
pub fn lead(r: &LeadRecord) -> String {
    let l = &r.lead;
    let mut out = String::new();
    let _ = writeln!(out, "Lead {}  {} {}  {}", l.id, l.first_name, l.last_name, l.phone);
    let _ = writeln!(
        out,
        "  source {}, created {}, updated {} (UTC)",
        l.source,
        when(l.created_at),
        when(l.updated_at)
    );
    let _ = writeln!(out, "  consent {} UTC: {}", when(l.consent_at), l.consent_text);
    if let Some(s) = l.session_id {
        let _ = writeln!(out, "  web session {s}");
    }
    let _ = writeln!(out, "\nCalls (newest first)");
    if r.calls.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for c in &r.calls {
        let _ = writeln!(out, "  {}  {}  attempt {}  {}", c.id, when(c.created_at), c.attempt, outcome(c));
        if let Some(cost) = r.cost.as_ref().and_then(|k| k.calls.iter().find(|k| k.call_id == c.id)) {
            let _ = writeln!(out, "      cost {}", call_cost_line(cost));
        }
        if let Some(s) = &c.outcome_summary {
            for line in s.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    if !r.retries.is_empty() {
        let _ = writeln!(out, "\nRetries");
        for t in &r.retries {
            let _ = writeln!(
                out,
                "  attempt {}  after {}  {}  due {} UTC{}",
                t.attempt,
                t.reason,
                t.state,
                when(t.due_at),
                t.detail.as_deref().map(|d| format!("  ({d})")).unwrap_or_default()
            );
        }
    }
    if let Some(k) = &r.cost {
        let _ = writeln!(out, "\nCost of its calls: {}", sum_line(&k.total));
        notes(&mut out, &k.calls);
    }
    let _ = writeln!(out, "\nSee a call: callway-control call <call id>");
    out
}

/// `callway-control call <id>`.
pub fn call(r: &CallRecord) -> String {
    let c = &r.call;
    let mut out = String::new();
    let _ = writeln!(out, "Call {}  attempt {}  {}", c.id, c.attempt, c.status);
    let _ =
        writeln!(out, "  lead {}  {} {}  {}", r.lead.id, r.lead.first_name, r.lead.last_name, r.lead.phone);
    if let Some(sid) = &c.call_sid {
        let _ = writeln!(out, "  Twilio {sid}");
    }
    if let Some(reason) = &c.end_reason {
        let _ = writeln!(out, "  ended: {reason} ({} side)", c.end_side.as_deref().unwrap_or("unknown"));
    }
    let _ = writeln!(out, "\nTimeline (UTC)");
    for t in &r.timeline {
        let _ = writeln!(
            out,
            "  {:>8}  {}  {:<6}  {:<22}  {:<13}{}",
            format!("+{}", seconds(t.offset_ms)),
            when(t.at),
            t.kind,
            t.what,
            t.source,
            t.detail.as_deref().map(|d| format!("  {d}")).unwrap_or_default()
        );
    }
    let d = &r.durations;
    let _ = writeln!(
        out,
        "\nDurations: ringing {}, talk {}, total {}",
        d.ringing_ms.map_or_else(|| "-".into(), seconds),
        d.talk_ms.map_or_else(|| "-".into(), seconds),
        seconds(d.total_ms)
    );
    let _ = writeln!(out, "\nDialogue");
    if r.dialogue.is_empty() {
        let _ = writeln!(out, "  (nothing recorded)");
    }
    for l in &r.dialogue {
        let at = l.at_ms.map(|ms| format!(" {}", seconds(ms as i64))).unwrap_or_default();
        let who = match l.speaker {
            "agent" => "Agent",
            "caller" => "Prospect",
            _ => "Summary",
        };
        let _ = writeln!(out, "  [{}{at}] {who}: {}", l.part, l.text);
    }
    let _ = writeln!(out, "\nSummary\n  web conversation: {}", r.summary.web);
    match &r.summary.call {
        Some(s) => {
            let _ = writeln!(out, "  the call:");
            for line in s.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  the call: (none yet: written once the call has ended, when SUMMARY_MODEL is set)"
            );
        }
    }
    let u = &r.usage;
    let _ = writeln!(
        out,
        "\nUsage: {} input tokens, {} output tokens, {} response(s)",
        u.input_tokens, u.output_tokens, u.responses
    );
    if let Some(k) = &r.cost {
        let _ = writeln!(out, "\nCost: {}", call_cost_line(k));
        if let Some(t) = &k.tokens {
            let _ = writeln!(
                out,
                "  tokens: input {} text, {} audio, {} cached text, {} cached audio; output {} text, {} audio",
                t.text_input,
                t.audio_input,
                t.cached_text_input,
                t.cached_audio_input,
                t.text_output,
                t.audio_output
            );
        }
        notes(&mut out, std::slice::from_ref(k));
    }
    out
}

/// Micros as an amount: `0.091`, `12.50`, `0.000125` (at least two decimals, exact).
pub fn amount(micros: u64) -> String {
    let mut s = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 3 {
        s.pop();
    }
    s
}

/// What OpenAI was billed for: tokens, Live seconds, or `-`.
fn openai_usage(c: &Cost) -> String {
    match (c.input_tokens + c.output_tokens, c.live_seconds) {
        (0, s) if s > 0.0 => format!("{s:.1} s"),
        (0, _) => "-".into(),
        (_, s) if s > 0.0 => format!("{}/{} tok + {s:.1} s", c.input_tokens, c.output_tokens),
        _ => format!("{}/{} tok", c.input_tokens, c.output_tokens),
    }
}

/// Twilio's billed seconds, with a transferred leg's.
fn twilio_seconds(c: &Cost) -> String {
    match c.transfer_seconds {
        0 => format!("{} s", c.twilio_seconds),
        t => format!("{} s + transfer {t} s", c.twilio_seconds),
    }
}

fn call_cost_line(k: &CallCost) -> String {
    let c = &k.cost;
    format!(
        "{} {}  (Twilio {}: {}; OpenAI {} {}: {})",
        amount(c.total_micros),
        c.currency,
        twilio_seconds(c),
        amount(c.twilio_micros),
        k.model.as_deref().unwrap_or("-"),
        openai_usage(c),
        amount(c.openai_micros)
    )
}

fn sum_line(c: &Cost) -> String {
    format!(
        "{} {}  (Twilio {}: {}; OpenAI {}: {})",
        amount(c.total_micros),
        c.currency,
        twilio_seconds(c),
        amount(c.twilio_micros),
        openai_usage(c),
        amount(c.openai_micros)
    )
}

fn notes(out: &mut String, calls: &[CallCost]) {
    for k in calls {
        if let Some(why) = &k.unpriced {
            let _ = writeln!(out, "  note: call {}: {why}", k.call_id);
        }
        if k.model_source == Some("configured") {
            let _ = writeln!(
                out,
                "  note: call {}: its gateway did not say which model it ran; priced at the configured one",
                k.call_id
            );
        }
    }
}

/// `callway-control calls --cost`.
pub fn costs(r: &CostReport) -> String {
    let mut out = String::new();
    if r.calls.is_empty() {
        out.push_str("no calls\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<19}  {:<36}  {:<36}  {:<13}  {:<8}  {:<18}  {:>8}  {:>10}  {:<22}  {:>10}  {:>10}",
        "CREATED (UTC)",
        "CALL",
        "LEAD",
        "PHONE",
        "ENGINE",
        "MODEL",
        "TWILIO S",
        format!("TWILIO {}", r.currency),
        "OPENAI USAGE",
        format!("OPENAI {}", r.currency),
        format!("TOTAL {}", r.currency)
    );
    for k in &r.calls {
        let c = &k.cost;
        let _ = writeln!(
            out,
            "{:<19}  {:<36}  {:<36}  {:<13}  {:<8}  {:<18}  {:>8}  {:>10}  {:<22}  {:>10}  {:>10}",
            when(k.created_at),
            k.call_id,
            k.lead_id,
            k.phone,
            k.engine.as_deref().unwrap_or("-"),
            k.model.as_deref().unwrap_or("-"),
            c.twilio_seconds,
            amount(c.twilio_micros),
            openai_usage(c),
            amount(c.openai_micros),
            amount(c.total_micros)
        );
    }
    let _ = writeln!(out, "\nTotal of {} call(s): {}", r.calls.len(), sum_line(&r.total));
    notes(&mut out, &r.calls);
    out
}
