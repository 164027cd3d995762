//! A call's stored rows (the call, its status timeline, the gateway's events) turned into what a
//! person reads: a timeline in time order, the conversation as a dialogue, durations and usage.
//! Sans-IO: the backends fill [`CallRows`], [`CallRecord::build`] does the rest.

use contract::internal_api::{CallEvent, Side, Speaker, TranscriptLine};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Numbers;

/// The call row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallFacts {
    /// Call id.
    pub id: Uuid,
    /// The lead called.
    pub lead_id: Uuid,
    /// The web session that asked for it (`None` for a retry).
    pub session_id: Option<Uuid>,
    /// Twilio's `CallSid`, once placed.
    pub call_sid: Option<String>,
    /// Latest status.
    pub status: String,
    /// Which attempt to reach the lead.
    pub attempt: u32,
    /// Why the stream ended.
    pub end_reason: Option<String>,
    /// Which side ended it (`twilio`, `openai`, `gateway`, `control_plane`).
    pub end_side: Option<String>,
    /// Milliseconds of stream.
    pub duration_ms: Option<i64>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the gateway redeemed its stream token (the stream began).
    #[serde(with = "time::serde::rfc3339::option")]
    pub token_redeemed_at: Option<OffsetDateTime>,
}

/// Who was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadName {
    /// Lead id.
    pub id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The number, masked unless revealed.
    pub phone: String,
}

/// One status line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// `queued`, `ringing`, `stream-started`, `hangup-requested`, `retry-scheduled`, …
    pub status: String,
    /// `twilio-call`, `twilio-stream`, `control-plane`, `retry`, `phone-tool`.
    pub source: String,
    /// Detail (`CallDuration=42`, a tool's outcome, …).
    pub detail: Option<String>,
    /// When.
    pub at: OffsetDateTime,
}

/// One event of the gateway as stored (its JSON payload is a [`CallEvent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Position in the call's event stream.
    pub seq: i64,
    /// The event, JSON.
    pub payload: String,
    /// When the batch arrived.
    pub created_at: OffsetDateTime,
}

/// Everything a backend reads for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRows {
    /// The call.
    pub call: CallFacts,
    /// The web conversation's summary the call was placed with.
    pub web_summary: String,
    /// The web conversation itself, as the page saw it (empty for calls asked otherwise, and
    /// once purged).
    pub web_transcript: Vec<TranscriptLine>,
    /// The end-of-call summary, once written ([`crate::summary`]).
    pub outcome_summary: Option<String>,
    /// Usage totals stored on the call.
    pub input_tokens: i64,
    /// Usage totals stored on the call.
    pub output_tokens: i64,
    /// The lead (number in full; masked by [`CallRecord::build`]).
    pub lead: LeadName,
    /// Its status timeline, in insertion order.
    pub statuses: Vec<StatusRow>,
    /// Its events, by `seq`.
    pub events: Vec<EventRow>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineItem {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Milliseconds since the call was asked for (negative never; clocks are the control
    /// plane's).
    pub offset_ms: i64,
    /// `call`, `status`, `stream`, `token`, `tool`, `retry`, `transfer`, `end`.
    pub kind: &'static str,
    /// What happened (`ringing`, `stream-started`, `save_lead`, `caller_hung_up`, …).
    pub what: String,
    /// Who said so (`twilio-call`, `gateway`, `control-plane`, …).
    pub source: String,
    /// Detail.
    pub detail: Option<String>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialogueLine {
    /// `web` (the conversation on the page: its lines, then the summary the web agent wrote
    /// when it asked for the call) or `phone`.
    pub part: &'static str,
    /// `agent`, `caller` (the prospect, on the page as on the phone), or `summary` for the
    /// web part.
    pub speaker: &'static str,
    /// The words.
    pub text: String,
    /// Milliseconds since the stream started (phone lines).
    pub at_ms: Option<u64>,
}

/// How long each stage took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Durations {
    /// From the first `ringing` to the answer (`in-progress`).
    pub ringing_ms: Option<i64>,
    /// Stream length, from the gateway's end of call.
    pub talk_ms: Option<i64>,
    /// From the request to the last line of the timeline.
    pub total_ms: i64,
}

/// Tokens the call's model used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Model responses counted.
    pub responses: u32,
}

/// A call as a person reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The call.
    pub call: CallFacts,
    /// Who was called.
    pub lead: LeadName,
    /// What happened, in time order.
    pub timeline: Vec<TimelineItem>,
    /// What was said: the web part, then the phone part in order.
    pub dialogue: Vec<DialogueLine>,
    /// Summaries: the web conversation's (the call was placed with it).
    pub summary: Summaries,
    /// Stage durations.
    pub durations: Durations,
    /// Usage.
    pub usage: Usage,
    /// Its cost, with `PRICES_FILE` ([`super::read::call_priced`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::CallCost>,
}

/// The summaries known for a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summaries {
    /// The web conversation, as the web agent summarised it when it asked for the call.
    pub web: String,
    /// The call itself, as `SUMMARY_MODEL` summarised it once it ended (`None` before, or
    /// when summaries are off).
    pub call: Option<String>,
}

fn side_name(s: Side) -> &'static str {
    crate::store::sql::side_name(s)
}

fn speaker_name(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "agent",
        Speaker::Caller => "caller",
    }
}

fn kind_of(source: &str, status: &str) -> &'static str {
    match source {
        "twilio-stream" => "stream",
        "retry" => "retry",
        "phone-tool" => "tool",
        "transfer" => "transfer",
        _ if status == "hangup-requested" => "tool",
        _ => "status",
    }
}

impl CallRecord {
    /// Builds the record from a backend's rows, numbers shown per `numbers`.
    pub fn build(rows: CallRows, numbers: Numbers) -> CallRecord {
        let CallRows {
            call,
            web_summary,
            web_transcript,
            outcome_summary,
            input_tokens,
            output_tokens,
            mut lead,
            statuses,
            events,
        } = rows;
        lead.phone = numbers.show(&lead.phone);
        let start = call.created_at;
        let mut timeline = vec![TimelineItem {
            at: start,
            offset_ms: 0,
            kind: "call",
            what: "requested".into(),
            source: if call.attempt > 1 { "retry".into() } else { "web".into() },
            detail: Some(format!("attempt {}", call.attempt)),
        }];
        let offset = |at: OffsetDateTime| (at - start).whole_milliseconds().max(0) as i64;
        if let Some(at) = call.token_redeemed_at {
            timeline.push(TimelineItem {
                at,
                offset_ms: offset(at),
                kind: "token",
                what: "stream token redeemed".into(),
                source: "gateway".into(),
                detail: None,
            });
        }
        let mut ringing_at = None;
        let mut answered_at = None;
        for s in &statuses {
            match s.status.as_str() {
                "ringing" if ringing_at.is_none() => ringing_at = Some(s.at),
                "in-progress" | "answered" if answered_at.is_none() => answered_at = Some(s.at),
                _ => {}
            }
            timeline.push(TimelineItem {
                at: s.at,
                offset_ms: offset(s.at),
                kind: kind_of(&s.source, &s.status),
                what: s.status.clone(),
                source: s.source.clone(),
                detail: s.detail.clone(),
            });
        }
        // The stream began at Twilio's `stream-started`, else when the gateway redeemed the token.
        let stream_start =
            statuses.iter().find(|s| s.status == "stream-started").map(|s| s.at).or(call.token_redeemed_at);
        let mut dialogue: Vec<DialogueLine> = web_transcript
            .into_iter()
            .map(|l| DialogueLine {
                part: "web",
                speaker: speaker_name(l.speaker),
                text: l.text,
                at_ms: None,
            })
            .collect();
        if !web_summary.trim().is_empty() {
            dialogue.push(DialogueLine {
                part: "web",
                speaker: "summary",
                text: web_summary.clone(),
                at_ms: None,
            });
        }
        let mut phone_lines = Vec::new();
        let mut usage = Usage { input_tokens, output_tokens, responses: 0 };
        let mut talk_ms = call.duration_ms;
        for e in &events {
            // A payload this build cannot read (a newer gateway's event) is skipped, not fatal.
            let Ok(event) = serde_json::from_str::<CallEvent>(&e.payload) else { continue };
            match event {
                CallEvent::Transcript { speaker, text, at_ms } => {
                    phone_lines.push((
                        at_ms,
                        e.seq,
                        DialogueLine {
                            part: "phone",
                            speaker: speaker_name(speaker),
                            text,
                            at_ms: Some(at_ms),
                        },
                    ));
                }
                CallEvent::Usage { .. } => usage.responses += 1,
                CallEvent::Ended { side, reason, duration_ms } => {
                    talk_ms = Some(i64::try_from(duration_ms).unwrap_or(i64::MAX));
                    // When the stream ended: its start plus its length (the batch that told us
                    // arrives later), never after the batch.
                    let ended_at = stream_start
                        .map(|s| s + time::Duration::milliseconds(talk_ms.unwrap_or(0)))
                        .map_or(e.created_at, |t| t.min(e.created_at));
                    timeline.push(TimelineItem {
                        at: ended_at,
                        offset_ms: offset(ended_at),
                        kind: "end",
                        what: reason,
                        source: side_name(side).into(),
                        detail: Some(format!("stream of {:.1} s", duration_ms as f64 / 1000.0)),
                    });
                }
                #[allow(unreachable_patterns, reason = "CallEvent may grow")]
                _ => {}
            }
        }
        phone_lines.sort_by_key(|(at_ms, seq, _)| (*at_ms, *seq));
        dialogue.extend(phone_lines.into_iter().map(|(_, _, l)| l));
        // Stable: lines of one instant keep the order they were written in.
        timeline.sort_by_key(|t| t.at);
        let total_ms = timeline.last().map_or(0, |t| t.offset_ms);
        let ringing_ms = match (ringing_at, answered_at) {
            (Some(r), Some(a)) => Some((a - r).whole_milliseconds().max(0) as i64),
            _ => None,
        };
        CallRecord {
            call,
            lead,
            timeline,
            dialogue,
            summary: Summaries { web: web_summary, call: outcome_summary },
            durations: Durations { ringing_ms, talk_ms, total_ms },
            usage,
            cost: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000 + s).unwrap()
    }

    fn status(s: &str, source: &str, t: i64) -> StatusRow {
        StatusRow { status: s.into(), source: source.into(), detail: None, at: at(t) }
    }

    fn event(seq: i64, e: CallEvent, t: i64) -> EventRow {
        EventRow { seq, payload: serde_json::to_string(&e).unwrap(), created_at: at(t) }
    }

    fn rows() -> CallRows {
        let id = Uuid::from_u128(1);
        let lead_id = Uuid::from_u128(2);
        CallRows {
            call: CallFacts {
                id,
                lead_id,
                session_id: None,
                call_sid: Some("CA1".into()),
                status: "completed".into(),
                attempt: 1,
                end_reason: Some("caller_hung_up".into()),
                end_side: Some("twilio".into()),
                duration_ms: Some(9_000),
                created_at: at(0),
                token_redeemed_at: Some(at(3)),
            },
            web_summary: "Veut une démo lundi.".into(),
            web_transcript: vec![
                TranscriptLine { speaker: Speaker::Agent, text: "Bonjour, je suis Claire.".into() },
                TranscriptLine { speaker: Speaker::Caller, text: "Une démo lundi ?".into() },
            ],
            outcome_summary: None,
            input_tokens: 120,
            output_tokens: 80,
            lead: LeadName {
                id: lead_id,
                first_name: "Camille".into(),
                last_name: "Durand".into(),
                phone: "+33612345678".into(),
            },
            statuses: vec![
                status("queued", "twilio-call", 0),
                status("ringing", "twilio-call", 1),
                status("in-progress", "twilio-call", 3),
                status("stream-started", "twilio-stream", 3),
                status("completed", "twilio-call", 13),
            ],
            events: vec![
                // Written out of order on purpose: the dialogue follows the stream's clock.
                event(
                    1,
                    CallEvent::Transcript {
                        speaker: Speaker::Caller,
                        text: "Oui, bonjour.".into(),
                        at_ms: 2_500,
                    },
                    12,
                ),
                event(
                    0,
                    CallEvent::Transcript {
                        speaker: Speaker::Agent,
                        text: "Bonjour Camille !".into(),
                        at_ms: 400,
                    },
                    12,
                ),
                event(
                    2,
                    CallEvent::Usage {
                        response_id: "resp_1".into(),
                        input_tokens: 120,
                        output_tokens: 80,
                        details: None,
                    },
                    12,
                ),
                event(
                    3,
                    CallEvent::Ended {
                        side: Side::Twilio,
                        reason: "caller_hung_up".into(),
                        duration_ms: 9_000,
                    },
                    12,
                ),
            ],
        }
    }

    #[test]
    fn a_call_reads_as_a_timeline_a_dialogue_and_durations() {
        let r = CallRecord::build(rows(), Numbers::Masked);
        let whats: Vec<&str> = r.timeline.iter().map(|t| t.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "requested",
                "queued",
                "ringing",
                "stream token redeemed",
                "in-progress",
                "stream-started",
                "caller_hung_up",
                "completed"
            ]
        );
        assert_eq!(r.timeline[3].kind, "token");
        assert_eq!(r.timeline[6].kind, "end");
        let lines: Vec<(&str, &str)> = r.dialogue.iter().map(|l| (l.part, l.speaker)).collect();
        assert_eq!(
            lines,
            [
                ("web", "agent"),
                ("web", "caller"),
                ("web", "summary"),
                ("phone", "agent"),
                ("phone", "caller")
            ],
            "the web conversation, its summary, then the call"
        );
        assert_eq!(r.dialogue[1].text, "Une démo lundi ?");
        assert_eq!(
            r.durations,
            Durations { ringing_ms: Some(2_000), talk_ms: Some(9_000), total_ms: 13_000 }
        );
        assert_eq!(r.usage, Usage { input_tokens: 120, output_tokens: 80, responses: 1 });
        assert_eq!(r.lead.phone, "+33******78");
        assert_eq!(r.timeline.last().unwrap().at - r.call.created_at, Duration::seconds(13));
    }

    #[test]
    fn numbers_show_in_full_only_when_revealed() {
        assert_eq!(CallRecord::build(rows(), Numbers::Revealed).lead.phone, "+33612345678");
        let json = serde_json::to_value(CallRecord::build(rows(), Numbers::Masked)).unwrap();
        assert_eq!(json["call"]["id"], "00000000-0000-0000-0000-000000000001", "ids as text");
        assert!(!json.to_string().contains("612345678"));
    }

    #[test]
    fn an_unreadable_event_is_skipped() {
        let mut r = rows();
        r.events.push(EventRow {
            seq: 9,
            payload: "{\"type\":\"from_the_future\"}".into(),
            created_at: at(12),
        });
        assert_eq!(
            CallRecord::build(r, Numbers::Masked).dialogue.len(),
            5,
            "2 web lines, the summary, 2 phone lines"
        );
    }
}
