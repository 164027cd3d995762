//! What the call receives and does nothing with is counted by kind, over a fixed label set:
//! unknown Twilio events, Twilio events before `start` or of another stream, OpenAI events the
//! call does not act on by type, and OpenAI event types it does not know as `unknown`.

mod call_support;

use call_support::{Pair, config, tone_b64};
use callway_gateway::core::call::IGNORED_LABELS;
use callway_gateway::samples;

fn counts(p: &Pair) -> Vec<(&'static str, &'static str, u32)> {
    p.call.stats().ignored.iter().collect()
}

#[test]
fn twilio_events_are_counted_by_why_they_were_ignored() {
    let mut p = Pair::new(config());
    p.twilio_send(&samples::twilio_media(2, 1, &tone_b64(20)));
    p.twilio_start();
    p.twilio_send(r#"{"event":"brand_new","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}"#);
    p.twilio_send("not json");
    p.twilio_send(&samples::twilio_mark(9, "r1-c1-100").replace("MZ18ad3ab5a668481ce02b83e7395059f0", "MZ0"));
    assert_eq!(
        counts(&p),
        [
            ("twilio", "unparsable", 1),
            ("twilio", "unknown_event", 1),
            ("twilio", "before_start", 1),
            ("twilio", "foreign_stream", 1),
        ]
    );
}

#[test]
fn openai_events_are_counted_by_type_and_new_types_as_unknown() {
    let mut p = Pair::live(config());
    let before = p.call.stats().ignored;
    p.openai_send(r#"{"type":"rate_limits.updated","event_id":"e","rate_limits":[]}"#);
    p.openai_send(r#"{"type":"rate_limits.updated","event_id":"e","rate_limits":[]}"#);
    p.openai_send(r#"{"type":"response.something_new","event_id":"e"}"#);
    p.openai_send(r#"{"type":"response.something_else_new","event_id":"e"}"#);
    p.openai_send("[1,2]");
    let after = p.call.stats().ignored;
    let delta: Vec<(&str, &str, u32)> = IGNORED_LABELS
        .iter()
        .zip(after.0.iter().zip(before.0))
        .filter(|(_, (a, b))| **a > *b)
        .map(|((peer, kind), (a, b))| (*peer, *kind, a - b))
        .collect();
    assert_eq!(
        delta,
        [("openai", "unparsable", 1), ("openai", "unknown", 2), ("openai", "rate_limits.updated", 2)]
    );
}
