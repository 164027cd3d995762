//! OpenAI GPT-Live codec (`protocols.md` §G): the client events the gateway sends and the
//! server events it reads, the second upstream protocol beside [`crate::core::openai`]
//! (Realtime).
//!
//! Writers produce the shapes of the vendored Live client schema (every one is validated
//! against `openai-live-client-events.schema.json` in `tests/live_client_schema.rs`).
//! `session.input_audio.append` is the hot one: the session runs `audio/pcmu` at 8000 both
//! ways, so Twilio's base64 goes out unchanged inside [`append_parts`], no decode, no
//! re-encode.
//!
//! The reader ([`parse_server_event`]) has a fast path for `session.output_audio.delta` (a
//! continuous real-time stream, silence included: most of the traffic): the delta comes back
//! as a slice of the receive buffer. Everything else goes through simd-json into borrowed
//! structs. A delegated function call arrives nested, `response.event {event:
//! {type: "response.output_item.done", item: {type: "function_call", …}}}`, and is read in
//! one pass. Unknown event types are not errors: they come back as [`LiveEvent::Other`].

use serde::Deserialize;

use crate::core::buf::{BufferFull, SliceWriter};
use crate::core::json_scan::{self, Value};
use crate::core::openai::{ErrorEvent, OpenAiError, RawError, ToolDef, need, write_tools};

/// `response.create`: continue the delegated response once tool outputs are in.
pub const RESPONSE_CREATE: &[u8] = br#"{"type":"response.create"}"#;
/// `session.close`: finalise the session (answered by `session.closed`, then close 1000).
pub const SESSION_CLOSE: &[u8] = br#"{"type":"session.close"}"#;

/// `{"type":"session.input_audio.append","audio":…}` as slices, the audio unchanged.
#[inline]
pub fn append_parts(audio_b64: &[u8]) -> [&[u8]; 3] {
    [br#"{"type":"session.input_audio.append","audio":""#, audio_b64, br#""}"#]
}

/// Who said a line of the history given to a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRole {
    /// The prospect (a `user` message).
    User,
    /// The agent (an `assistant` message).
    Assistant,
}

/// What goes into `session.start`. Model, instructions, voice and format are fixed for the
/// session's life (§G); only the delegation may change later.
#[derive(Debug, Clone, Copy)]
pub struct LiveStart<'a> {
    /// `gpt-live-1.1`.
    pub model: &'a str,
    /// The agent's instructions (with the web conversation's summary).
    pub instructions: &'a str,
    /// Text history (the conversation so far on a resumed session), oldest first, at most
    /// [`MAX_HISTORY`] messages are written (the most recent).
    pub history: &'a [(HistoryRole, &'a str)],
    /// Output voice (`marin`).
    pub voice: &'a str,
    /// The Responses model that runs the phone tools (delegation).
    pub delegation_model: &'a str,
    /// Instructions of that model.
    pub delegation_instructions: &'a str,
    /// The phone tools.
    pub tools: &'a [ToolDef<'a>],
}

/// Most `input` messages a session may start with (§G: ≤ 128).
pub const MAX_HISTORY: usize = 128;

/// Writes `session.start` (`audio/pcmu` at 8000 both ways, Responses delegation with the
/// tools; strict function schemas).
pub fn write_session_start(w: &mut SliceWriter<'_>, s: &LiveStart<'_>) -> Result<(), BufferFull> {
    w.put(br#"{"type":"session.start","session":{"model":"#)?;
    w.put_json_str(s.model)?;
    w.put(br#","instructions":"#)?;
    w.put_json_str(s.instructions)?;
    let skip = s.history.len().saturating_sub(MAX_HISTORY);
    if s.history.len() > skip {
        w.put(br#","input":["#)?;
        for (i, (role, text)) in s.history[skip..].iter().enumerate() {
            if i > 0 {
                w.put(b",")?;
            }
            match role {
                HistoryRole::User => w.put(br#"{"role":"user","content":[{"type":"input_text","text":"#)?,
                HistoryRole::Assistant => {
                    w.put(br#"{"role":"assistant","content":[{"type":"output_text","text":"#)?
                }
            }
            w.put_json_str(text)?;
            w.put(b"}]}")?;
        }
        w.put(b"]")?;
    }
    w.put(br#","audio":{"format":{"type":"audio/pcmu","rate":8000},"output":{"voice":"#)?;
    w.put_json_str(s.voice)?;
    w.put(br#"}},"delegation":{"type":"responses","responses":{"model":"#)?;
    w.put_json_str(s.delegation_model)?;
    w.put(br#","instructions":"#)?;
    w.put_json_str(s.delegation_instructions)?;
    w.put(br#","tools":"#)?;
    write_tools(w, s.tools, true)?;
    w.put(b"}}}}")
}

/// The three ways to put text into a running session (§G), each acknowledged by its
/// `.appended` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// `session.instructions.append`: policy.
    Instructions,
    /// `session.thinking.append`: silent context (DTMF digits, a tool's progress).
    Thinking,
    /// `session.commentary.append`: something the model should say (the greeting).
    Commentary,
}

impl TextKind {
    fn event_type(self) -> &'static [u8] {
        match self {
            TextKind::Instructions => b"session.instructions.append",
            TextKind::Thinking => b"session.thinking.append",
            TextKind::Commentary => b"session.commentary.append",
        }
    }
}

/// Writes a text append; `delegation_id` is always written (§G: required, may be null).
pub fn write_text(
    w: &mut SliceWriter<'_>,
    kind: TextKind,
    content: &str,
    delegation_id: Option<&str>,
) -> Result<(), BufferFull> {
    w.put(br#"{"type":""#)?;
    w.put(kind.event_type())?;
    w.put(br#"","content":"#)?;
    w.put_json_str(content)?;
    w.put(br#","delegation_id":"#)?;
    match delegation_id {
        Some(id) => w.put_json_str(id)?,
        None => w.put(b"null")?,
    }
    w.put(b"}")
}

/// Writes `response.item.create` carrying the `function_call_output` for `call_id` (`output`
/// is a JSON string's contents, escaped here). Follow with [`RESPONSE_CREATE`].
pub fn write_function_output(w: &mut SliceWriter<'_>, call_id: &str, output: &str) -> Result<(), BufferFull> {
    w.put(br#"{"type":"response.item.create","item":{"type":"function_call_output","call_id":"#)?;
    w.put_json_str(call_id)?;
    w.put(br#","output":"#)?;
    w.put_json_str(output)?;
    w.put(b"}}")
}

/// Why a Live session closed (`session.closed.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// After our `session.close`.
    CloseRequested,
    /// The session reached its maximum length.
    Expired,
    /// OpenAI ended it for its content.
    Content,
    /// The remote party hung up (SIP).
    RemoteHangup,
    /// The transport was lost.
    ConnectionLost,
    /// A reason this gateway does not know yet.
    Other,
}

impl ClosedReason {
    fn parse(s: &str) -> Self {
        match s {
            "close_requested" => ClosedReason::CloseRequested,
            "expired" => ClosedReason::Expired,
            "content" => ClosedReason::Content,
            "remote_hangup" => ClosedReason::RemoteHangup,
            "connection_lost" => ClosedReason::ConnectionLost,
            _ => ClosedReason::Other,
        }
    }
}

/// A Live server event, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LiveEvent<'a> {
    /// `session.output_audio.delta`: base64 µ-law (checked to be base64), silence included.
    AudioDelta {
        /// The audio, forwarded to Twilio unchanged.
        delta: &'a [u8],
    },
    /// `session.started`: audio may flow.
    Started {
        /// The session id (`sess_…`).
        session_id: &'a str,
    },
    /// `session.input_transcript.delta`: a fragment of what the caller said.
    InputTranscript {
        /// The words (spacing included).
        delta: &'a str,
        /// Start on the session timeline (ms).
        start_ms: u64,
        /// End on the session timeline (ms).
        end_ms: u64,
    },
    /// `session.output_transcript.delta`: a fragment of what the agent said.
    OutputTranscript {
        /// The words (spacing included).
        delta: &'a str,
        /// Start on the session timeline (ms).
        start_ms: u64,
        /// End on the session timeline (ms).
        end_ms: u64,
    },
    /// A delegated function call (`response.event` wrapping `response.output_item.done`
    /// whose item is a `function_call`).
    FunctionCall {
        /// Answer with this id.
        call_id: &'a str,
        /// Tool name.
        name: &'a str,
        /// JSON arguments, as a string.
        arguments: &'a str,
    },
    /// Any other event of the delegated Responses stream.
    Delegated {
        /// The nested event's `type`.
        kind: &'a str,
    },
    /// `session.usage.updated`: cumulative billed seconds.
    UsageUpdated {
        /// Seconds of session so far.
        seconds: f64,
    },
    /// `session.closed`: the session is over (the socket closes next).
    Closed {
        /// Why.
        reason: ClosedReason,
        /// Cumulative billed seconds.
        seconds: f64,
    },
    /// `error`.
    Error(ErrorEvent<'a>),
    /// Any other event type (acknowledgements, `session.delegation.created`, `info`, new ones).
    Other {
        /// The `type`.
        kind: &'a str,
    },
}

/// Reads one Live server event (a WebSocket text payload, valid UTF-8).
pub fn parse_server_event(json: &mut [u8]) -> Result<LiveEvent<'_>, OpenAiError> {
    if let Some(span) = scan_delta(json) {
        return Ok(LiveEvent::AudioDelta { delta: &json[span] });
    }
    parse_slow(json)
}

/// The delta fast path alone (public for the differential fuzz target and benches).
pub fn parse_delta_fast(json: &[u8]) -> Option<&[u8]> {
    scan_delta(json).map(|span| &json[span])
}

fn scan_delta(json: &[u8]) -> Option<std::ops::Range<usize>> {
    let delta = template_delta(json).or_else(|| scan_delta_any_order(json))?;
    let start = delta.as_ptr() as usize - json.as_ptr() as usize;
    Some(start..start + delta.len())
}

/// Tier 1: `{"type":"session.output_audio.delta","delta":"…"}`, the layout observed.
#[inline]
fn template_delta(json: &[u8]) -> Option<&[u8]> {
    let mut t = json_scan::Template::new(json);
    t.lit(br#"{"type":"session.output_audio.delta","delta":""#)?;
    let delta = t.base64_str()?;
    t.lit(b"}")?;
    t.end()?;
    Some(delta)
}

/// Tier 2: any field order, with the optional `start_ms`/`end_ms` (sideband reflections) and
/// `event_id`; anything else, or a field the full parser reads given twice (which it refuses),
/// gives up to the full parser.
fn scan_delta_any_order(json: &[u8]) -> Option<&[u8]> {
    let (mut is_delta, mut delta) = (false, None);
    let (mut seen_type, mut seen_start, mut seen_end) = (false, false, false);
    let once = |seen: &mut bool| (!std::mem::replace(seen, true)).then_some(());
    json_scan::scan(json, &mut |parent, key, value| {
        if parent.is_some() {
            return None;
        }
        match (key, value) {
            (b"type", Value::Str(t)) => {
                once(&mut seen_type)?;
                is_delta = t == b"session.output_audio.delta";
                is_delta.then_some(())
            }
            (b"delta", Value::Str(d)) => {
                if delta.replace(d).is_some() {
                    return None;
                }
                Some(())
            }
            (b"start_ms", Value::Int(_)) => once(&mut seen_start),
            (b"end_ms", Value::Int(_)) => once(&mut seen_end),
            (b"event_id", Value::Str(_)) => Some(()),
            _ => None,
        }
    })?;
    let delta = delta.filter(|_| is_delta)?;
    json_scan::is_base64(delta).then_some(delta)
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    delta: Option<&'a str>,
    #[serde(default)]
    start_ms: Option<u64>,
    #[serde(default)]
    end_ms: Option<u64>,
    #[serde(borrow, default)]
    session: Option<RawSession<'a>>,
    #[serde(borrow, default)]
    reason: Option<&'a str>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(borrow, default)]
    event: Option<RawNested<'a>>,
    #[serde(borrow, default)]
    error: Option<RawError<'a>>,
}

#[derive(Deserialize)]
struct RawSession<'a> {
    #[serde(borrow, default)]
    id: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    seconds: Option<f64>,
}

#[derive(Deserialize)]
struct RawNested<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    item: Option<RawItem<'a>>,
}

#[derive(Deserialize)]
struct RawItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    call_id: Option<&'a str>,
    #[serde(borrow, default)]
    name: Option<&'a str>,
    #[serde(borrow, default)]
    arguments: Option<&'a str>,
}

/// The full parser (simd-json). Public for the differential fuzz target.
pub fn parse_slow(json: &mut [u8]) -> Result<LiveEvent<'_>, OpenAiError> {
    let raw: RawEvent<'_> = simd_json::serde::from_slice(json).map_err(|_| OpenAiError::InvalidJson)?;
    Ok(match raw.kind {
        "session.output_audio.delta" => {
            let delta = need(raw.delta, "session.output_audio.delta", "delta")?.as_bytes();
            if !json_scan::is_base64(delta) {
                return Err(OpenAiError::BadAudio);
            }
            LiveEvent::AudioDelta { delta }
        }
        "session.started" => {
            const E: &str = "session.started";
            LiveEvent::Started { session_id: need(need(raw.session, E, "session")?.id, E, "session.id")? }
        }
        kind @ ("session.input_transcript.delta" | "session.output_transcript.delta") => {
            let (delta, start_ms, end_ms) = if kind == "session.input_transcript.delta" {
                const E: &str = "session.input_transcript.delta";
                (
                    need(raw.delta, E, "delta")?,
                    need(raw.start_ms, E, "start_ms")?,
                    need(raw.end_ms, E, "end_ms")?,
                )
            } else {
                const E: &str = "session.output_transcript.delta";
                (
                    need(raw.delta, E, "delta")?,
                    need(raw.start_ms, E, "start_ms")?,
                    need(raw.end_ms, E, "end_ms")?,
                )
            };
            if kind == "session.input_transcript.delta" {
                LiveEvent::InputTranscript { delta, start_ms, end_ms }
            } else {
                LiveEvent::OutputTranscript { delta, start_ms, end_ms }
            }
        }
        "response.event" => {
            const E: &str = "response.event";
            let nested = need(raw.event, E, "event")?;
            match nested.item {
                Some(item) if nested.kind == "response.output_item.done" && item.kind == "function_call" => {
                    LiveEvent::FunctionCall {
                        call_id: need(item.call_id, E, "event.item.call_id")?,
                        name: need(item.name, E, "event.item.name")?,
                        arguments: need(item.arguments, E, "event.item.arguments")?,
                    }
                }
                _ => LiveEvent::Delegated { kind: nested.kind },
            }
        }
        "session.usage.updated" => {
            const E: &str = "session.usage.updated";
            LiveEvent::UsageUpdated {
                seconds: need(need(raw.usage, E, "usage")?.seconds, E, "usage.seconds")?,
            }
        }
        "session.closed" => {
            const E: &str = "session.closed";
            LiveEvent::Closed {
                reason: ClosedReason::parse(need(raw.reason, E, "reason")?),
                seconds: raw.usage.and_then(|u| u.seconds).unwrap_or(0.0),
            }
        }
        "error" => LiveEvent::Error(need(raw.error, "error", "error")?.event()),
        kind => LiveEvent::Other { kind },
    })
}

/// Whether a base64 µ-law chunk is pure digital silence (every byte `0xFF`, which GPT-Live
/// streams between utterances), decided on the base64 itself: `FF FF FF` encodes as `////`,
/// a one- or two-byte tail as `/w==` or `//8=`. Vectorises; no decoding.
#[inline]
pub fn is_silence_b64(b64: &[u8]) -> bool {
    let (body, tail): (&[u8], &[u8]) = match b64 {
        [rest @ .., b'/', b'w', b'=', b'='] => (rest, b"/"),
        [rest @ .., b'/', b'/', b'8', b'='] => (rest, b"//"),
        _ => (b64, b""),
    };
    !b64.is_empty() && body.iter().fold(true, |all, &c| all & (c == b'/')) && tail.iter().all(|&c| c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(f: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>) -> serde_json::Value {
        let mut buf = vec![0u8; 16 * 1024];
        let mut w = SliceWriter::new(&mut buf);
        f(&mut w).unwrap();
        let n = w.written();
        serde_json::from_slice(&buf[..n]).unwrap()
    }

    #[test]
    fn session_start_carries_format_voice_history_and_delegated_tools() {
        let tools = [ToolDef {
            name: "end_call",
            description: "Raccroche.",
            parameters_json: r#"{"type":"object"}"#,
        }];
        let history = [(HistoryRole::User, "Allô ?"), (HistoryRole::Assistant, "Bonjour \"Zoé\"")];
        let v = write(|w| {
            write_session_start(
                w,
                &LiveStart {
                    model: "gpt-live-1.1",
                    instructions: "Tu es Claire.",
                    history: &history,
                    voice: "marin",
                    delegation_model: "gpt-5-mini",
                    delegation_instructions: "Outils.",
                    tools: &tools,
                },
            )
        });
        let s = &v["session"];
        assert_eq!(v["type"], "session.start");
        assert_eq!(s["audio"]["format"], serde_json::json!({"type": "audio/pcmu", "rate": 8000}));
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["input"][1]["content"][0]["text"], "Bonjour \"Zoé\"");
        assert_eq!(s["input"][1]["role"], "assistant");
        assert_eq!(s["delegation"]["responses"]["tools"][0]["name"], "end_call");
        assert_eq!(s["delegation"]["responses"]["tools"][0]["strict"], true);
        // No history: no `input` at all.
        let v = write(|w| {
            write_session_start(
                w,
                &LiveStart {
                    model: "gpt-live-1",
                    instructions: "",
                    history: &[],
                    voice: "marin",
                    delegation_model: "m",
                    delegation_instructions: "",
                    tools: &[],
                },
            )
        });
        assert!(v["session"].get("input").is_none(), "{v}");
    }

    #[test]
    fn text_appends_always_name_the_delegation() {
        let v = write(|w| write_text(w, TextKind::Thinking, "L'appelant a tapé 5", None));
        assert_eq!(
            v,
            serde_json::json!({"type": "session.thinking.append", "content": "L'appelant a tapé 5", "delegation_id": null})
        );
        let v = write(|w| write_text(w, TextKind::Commentary, "Salue.", Some("del_1")));
        assert_eq!(v["delegation_id"], "del_1");
    }

    #[test]
    fn the_delta_fast_path_and_the_full_parser_agree() {
        for text in [
            r#"{"type":"session.output_audio.delta","delta":"//8="}"#,
            r#"{"delta":"AAEC","type":"session.output_audio.delta","start_ms":0,"end_ms":100}"#,
            r#"{"type":"session.output_audio.delta","event_id":"e1","delta":"AAEC"}"#,
        ] {
            let fast = parse_delta_fast(text.as_bytes()).map(<[u8]>::to_vec);
            let mut copy = text.as_bytes().to_vec();
            let LiveEvent::AudioDelta { delta } = parse_slow(&mut copy).unwrap() else { panic!("{text}") };
            assert_eq!(fast.as_deref(), Some(delta), "{text}");
        }
        // A field given twice: the full parser refuses it, so the fast path gives up (found by
        // the openai_live_event fuzz target).
        for twice in [
            r#"{"type":"session.output_audio.delta","delta":"AAEC","delta":"//8="}"#,
            r#"{"type":"session.output_audio.delta","type":"session.output_audio.delta","delta":"AAEC"}"#,
            r#"{"type":"session.output_audio.delta","delta":"AAEC","end_ms":1,"end_ms":2}"#,
        ] {
            assert_eq!(parse_delta_fast(twice.as_bytes()), None, "{twice}");
            assert_eq!(parse_slow(&mut twice.as_bytes().to_vec()), Err(OpenAiError::InvalidJson), "{twice}");
        }
        // Not base64: the fast path gives up, the full parser refuses.
        let bad = r#"{"type":"session.output_audio.delta","delta":"no!"}"#;
        assert_eq!(parse_delta_fast(bad.as_bytes()), None);
        assert_eq!(parse_slow(&mut bad.as_bytes().to_vec()), Err(OpenAiError::BadAudio));
    }

    #[test]
    fn a_nested_function_call_is_read_with_its_escaped_arguments() {
        let mut text = br#"{"type":"response.event","event_id":"e","delegation_id":"del_1","event":{"type":"response.output_item.done","output_index":0,"item":{"id":"fc_1","type":"function_call","call_id":"call_1","name":"end_call","arguments":"{\"reason\":\"completed\"}","status":"completed"},"sequence_number":7}}"#.to_vec();
        assert_eq!(
            parse_server_event(&mut text).unwrap(),
            LiveEvent::FunctionCall {
                call_id: "call_1",
                name: "end_call",
                arguments: r#"{"reason":"completed"}"#
            }
        );
        let mut text =
            br#"{"type":"response.event","event_id":"e","event":{"type":"response.output_text.delta","delta":"x"}}"#.to_vec();
        assert_eq!(
            parse_server_event(&mut text).unwrap(),
            LiveEvent::Delegated { kind: "response.output_text.delta" }
        );
    }

    #[test]
    fn session_events_are_read() {
        let mut t = br#"{"type":"session.started","event_id":"e","session":{"id":"sess_1","expires_at":1,"model":"gpt-live-1.1"}}"#.to_vec();
        assert_eq!(parse_server_event(&mut t).unwrap(), LiveEvent::Started { session_id: "sess_1" });
        let mut t = br#"{"type":"session.closed","event_id":"e","reason":"expired","session":{"id":"s"},"usage":{"seconds":61.5}}"#.to_vec();
        assert_eq!(
            parse_server_event(&mut t).unwrap(),
            LiveEvent::Closed { reason: ClosedReason::Expired, seconds: 61.5 }
        );
        let mut t = br#"{"type":"session.usage.updated","event_id":"e","usage":{"seconds":60}}"#.to_vec();
        assert_eq!(parse_server_event(&mut t).unwrap(), LiveEvent::UsageUpdated { seconds: 60.0 });
        let mut t = r#"{"type":"session.input_transcript.delta","event_id":"e","delta":" Zoé","start_ms":1200,"end_ms":1500}"#.as_bytes().to_vec();
        assert_eq!(
            parse_server_event(&mut t).unwrap(),
            LiveEvent::InputTranscript { delta: " Zoé", start_ms: 1200, end_ms: 1500 }
        );
        let mut t = br#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"m","param":"session.x","client_event_id":"evt_1"}}"#.to_vec();
        let LiveEvent::Error(e) = parse_server_event(&mut t).unwrap() else { panic!() };
        assert_eq!(
            (e.code, e.param, e.event_id),
            (Some("unknown_parameter"), Some("session.x"), Some("evt_1"))
        );
        let mut t =
            br#"{"type":"session.thinking.appended","event_id":"e","start_ms":1,"end_ms":1}"#.to_vec();
        assert_eq!(
            parse_server_event(&mut t).unwrap(),
            LiveEvent::Other { kind: "session.thinking.appended" }
        );
        let mut t = br#"{"type":"session.closed"}"#.to_vec();
        assert!(matches!(parse_server_event(&mut t), Err(OpenAiError::MissingField { .. })));
    }

    #[test]
    fn silence_is_recognised_in_base64() {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        for n in [1, 2, 3, 4, 5, 800] {
            assert!(is_silence_b64(b64(&vec![0xFF; n]).as_bytes()), "{n}");
            let mut loud = vec![0xFF; n];
            loud[n - 1] = 0x80;
            assert!(!is_silence_b64(b64(&loud).as_bytes()), "{n}");
            loud = vec![0xFF; n];
            loud[0] = 0x7F;
            assert!(!is_silence_b64(b64(&loud).as_bytes()), "{n}");
        }
        assert!(!is_silence_b64(b""));
    }
}
