//! OpenAI Realtime (GA) codec: the client events we send and the server events we read.
//!
//! Writers produce exactly the GA shapes of protocols.md C2/C3 (every one is validated against
//! the official client-event schema in tests). `input_audio_buffer.append` is special: with
//! `audio/pcmu` on both sides Twilio's base64 is already what OpenAI wants, so
//! [`append_parts`] wraps it unchanged — no decode, no re-encode.
//!
//! The reader ([`parse_server_event`]) has a fast path for `response.output_audio.delta` (the
//! agent's voice, most of the traffic): one scan, the `delta` returned as a slice of the
//! receive buffer. Everything else goes through simd-json into borrowed structs. Unknown event
//! types are not errors (OpenAI adds events): they come back as [`ServerEvent::Other`].

use std::fmt::Write as _;

use serde::Deserialize;

use crate::core::buf::{BufferFull, SliceWriter};
use crate::core::json_scan::{self, Value};

/// `input_audio_buffer.commit`.
pub const COMMIT: &[u8] = br#"{"type":"input_audio_buffer.commit"}"#;
/// `input_audio_buffer.clear`.
pub const CLEAR: &[u8] = br#"{"type":"input_audio_buffer.clear"}"#;
/// `response.cancel`.
pub const RESPONSE_CANCEL: &[u8] = br#"{"type":"response.cancel"}"#;

/// `{"type":"input_audio_buffer.append","audio":…}` as slices, the audio unchanged.
#[inline]
pub fn append_parts(audio_b64: &[u8]) -> [&[u8]; 3] {
    [br#"{"type":"input_audio_buffer.append","audio":""#, audio_b64, br#""}"#]
}

/// Turn detection of the Realtime session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TurnDetection {
    /// OpenAI's voice-activity detection decides when the caller's turn ends.
    ServerVad {
        /// Activation threshold, 0.0–1.0.
        threshold: f32,
        /// Audio kept before detected speech (ms).
        prefix_padding_ms: u32,
        /// Silence that ends a turn (ms).
        silence_duration_ms: u32,
        /// Start a response when a turn ends.
        create_response: bool,
        /// Cancel the running response when the caller starts speaking.
        interrupt_response: bool,
    },
    /// Semantic turn detection.
    SemanticVad {
        /// `low`, `medium`, `high` or `auto`.
        eagerness: &'static str,
        /// Start a response when a turn ends.
        create_response: bool,
        /// Cancel the running response when the caller starts speaking.
        interrupt_response: bool,
    },
    /// No detection: the gateway commits and asks for responses itself.
    Disabled,
}

/// A function tool offered to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolDef<'a> {
    /// Function name.
    pub name: &'a str,
    /// What it does, for the model.
    pub description: &'a str,
    /// JSON Schema of the arguments, as raw JSON (written verbatim; must be valid JSON).
    pub parameters_json: &'a str,
}

/// Writes `tools` as a JSON array of function tools (`{"type":"function","name",
/// "description","parameters"}`, plus `"strict":true` when `strict`: GPT-Live's delegated
/// Responses tools are strict, Realtime's session tools take no such field).
pub(crate) fn write_tools(
    w: &mut SliceWriter<'_>,
    tools: &[ToolDef<'_>],
    strict: bool,
) -> Result<(), BufferFull> {
    w.put(b"[")?;
    for (i, tool) in tools.iter().enumerate() {
        if i > 0 {
            w.put(b",")?;
        }
        w.put(br#"{"type":"function","name":"#)?;
        w.put_json_str(tool.name)?;
        w.put(br#","description":"#)?;
        w.put_json_str(tool.description)?;
        w.put(br#","parameters":"#)?;
        w.put(tool.parameters_json.as_bytes())?;
        w.put(if strict { &br#","strict":true}"#[..] } else { b"}" })?;
    }
    w.put(b"]")
}

/// What goes into `session.update`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig<'a> {
    /// `gpt-realtime`.
    pub model: &'a str,
    /// System instructions (built from the call context).
    pub instructions: &'a str,
    /// Output voice (`marin`).
    pub voice: &'a str,
    /// Turn detection.
    pub turn_detection: TurnDetection,
    /// Input transcription model and language (`gpt-4o-transcribe`, `fr`), if wanted.
    pub transcription: Option<(&'a str, &'a str)>,
    /// Tools.
    pub tools: &'a [ToolDef<'a>],
}

fn fmt_err(_: std::fmt::Error) -> BufferFull {
    BufferFull { needed: usize::MAX, available: 0 }
}

/// Writes `session.update` (GA shape, `audio/pcmu` both ways).
pub fn write_session_update(w: &mut SliceWriter<'_>, cfg: &SessionConfig<'_>) -> Result<(), BufferFull> {
    w.put(br#"{"type":"session.update","session":{"type":"realtime","model":"#)?;
    w.put_json_str(cfg.model)?;
    w.put(br#","output_modalities":["audio"],"instructions":"#)?;
    w.put_json_str(cfg.instructions)?;
    w.put(br#","audio":{"input":{"format":{"type":"audio/pcmu"}"#)?;
    if let Some((model, language)) = cfg.transcription {
        w.put(br#","transcription":{"model":"#)?;
        w.put_json_str(model)?;
        w.put(br#","language":"#)?;
        w.put_json_str(language)?;
        w.put(b"}")?;
    }
    w.put(br#","turn_detection":"#)?;
    match cfg.turn_detection {
        TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
            create_response,
            interrupt_response,
        } => {
            write!(
                w,
                r#"{{"type":"server_vad","threshold":{threshold},"prefix_padding_ms":{prefix_padding_ms},"silence_duration_ms":{silence_duration_ms},"create_response":{create_response},"interrupt_response":{interrupt_response}}}"#
            )
            .map_err(fmt_err)?;
        }
        TurnDetection::SemanticVad { eagerness, create_response, interrupt_response } => {
            w.put(br#"{"type":"semantic_vad","eagerness":"#)?;
            w.put_json_str(eagerness)?;
            write!(w, r#","create_response":{create_response},"interrupt_response":{interrupt_response}}}"#)
                .map_err(fmt_err)?;
        }
        TurnDetection::Disabled => w.put(b"null")?,
    }
    w.put(br#"},"output":{"format":{"type":"audio/pcmu"},"voice":"#)?;
    w.put_json_str(cfg.voice)?;
    w.put(br#"}},"tools":"#)?;
    write_tools(w, cfg.tools, false)?;
    w.put(br#","tool_choice":"auto"}}"#)
}

/// Writes `response.create`, with per-response `instructions` if given.
pub fn write_response_create(w: &mut SliceWriter<'_>, instructions: Option<&str>) -> Result<(), BufferFull> {
    match instructions {
        None => w.put(br#"{"type":"response.create"}"#),
        Some(text) => {
            w.put(br#"{"type":"response.create","response":{"instructions":"#)?;
            w.put_json_str(text)?;
            w.put(b"}}")
        }
    }
}

/// Writes `conversation.item.truncate`: the assistant item was heard up to `audio_end_ms`.
pub fn write_truncate(w: &mut SliceWriter<'_>, item_id: &str, audio_end_ms: u64) -> Result<(), BufferFull> {
    w.put(br#"{"type":"conversation.item.truncate","item_id":"#)?;
    w.put_json_str(item_id)?;
    w.put(br#","content_index":0,"audio_end_ms":"#)?;
    w.put_u64(audio_end_ms)?;
    w.put(b"}")
}

/// Writes the `function_call_output` item answering tool call `call_id` (`output` is a JSON
/// string's contents, escaped here).
pub fn write_function_output(w: &mut SliceWriter<'_>, call_id: &str, output: &str) -> Result<(), BufferFull> {
    w.put(br#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"#)?;
    w.put_json_str(call_id)?;
    w.put(br#","output":"#)?;
    w.put_json_str(output)?;
    w.put(b"}}")
}

/// Writes a user text message item (DTMF, context notes).
pub fn write_user_text(w: &mut SliceWriter<'_>, text: &str) -> Result<(), BufferFull> {
    w.put(br#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"#)?;
    w.put_json_str(text)?;
    w.put(b"}]}}")
}

/// A chunk of the agent's voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioDelta<'a> {
    /// The response it belongs to (ASCII).
    pub response_id: &'a [u8],
    /// The assistant item, for truncation (ASCII).
    pub item_id: &'a [u8],
    /// Output index.
    pub output_index: u64,
    /// Content index.
    pub content_index: u64,
    /// Base64 μ-law (checked to be in the base64 alphabet; forwarded to Twilio unchanged).
    pub delta: &'a [u8],
}

/// Final status of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// Finished.
    Completed,
    /// Cancelled (by us or by `interrupt_response`).
    Cancelled,
    /// Stopped early (token limit, content filter).
    Incomplete,
    /// Failed.
    Failed,
    /// Any other value.
    Other,
}

/// Tokens used by a response (a missing or `null` count is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// How they split (`None` when the event has neither detail object).
    pub details: Option<contract::internal_api::TokenDetails>,
}

/// An `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorEvent<'a> {
    /// `invalid_request_error`, `server_error`, …
    pub kind: &'a str,
    /// Machine code (`session_expired`, `input_audio_buffer_commit_empty`, …).
    pub code: Option<&'a str>,
    /// Human text.
    pub message: &'a str,
    /// The offending parameter.
    pub param: Option<&'a str>,
    /// The client `event_id` this answers.
    pub event_id: Option<&'a str>,
}

/// A server event, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent<'a> {
    /// `response.output_audio.delta`.
    AudioDelta(AudioDelta<'a>),
    /// `session.created`.
    SessionCreated,
    /// `session.updated`.
    SessionUpdated,
    /// `input_audio_buffer.speech_started`.
    SpeechStarted {
        /// The user item being created.
        item_id: &'a str,
        /// Where speech began in the input buffer (ms).
        audio_start_ms: u64,
    },
    /// `input_audio_buffer.speech_stopped`.
    SpeechStopped {
        /// The user item.
        item_id: &'a str,
        /// Where speech ended (ms).
        audio_end_ms: u64,
    },
    /// `input_audio_buffer.committed`.
    Committed {
        /// The user item created.
        item_id: &'a str,
    },
    /// `input_audio_buffer.cleared`.
    Cleared,
    /// `response.created`.
    ResponseCreated {
        /// The response.
        response_id: &'a str,
    },
    /// `response.output_audio.done`.
    AudioDone {
        /// The response.
        response_id: &'a str,
        /// The item.
        item_id: &'a str,
    },
    /// `response.output_audio_transcript.done`: what the agent said.
    AgentTranscript {
        /// The item.
        item_id: &'a str,
        /// The words.
        transcript: &'a str,
    },
    /// `conversation.item.input_audio_transcription.completed`: what the caller said.
    CallerTranscript {
        /// The item.
        item_id: &'a str,
        /// The words.
        transcript: &'a str,
    },
    /// `response.function_call_arguments.done`: the model calls a tool.
    FunctionCall {
        /// Answer with this id.
        call_id: &'a str,
        /// Tool name.
        name: &'a str,
        /// JSON arguments, as a string.
        arguments: &'a str,
    },
    /// `response.done`.
    ResponseDone {
        /// The response.
        response_id: &'a str,
        /// How it ended.
        status: ResponseStatus,
        /// Tokens, when reported.
        usage: Option<Usage>,
    },
    /// `error`.
    Error(ErrorEvent<'a>),
    /// Any other event type (known but not needed here, or new).
    Other {
        /// The `type`.
        kind: &'a str,
    },
}

/// Why a server event could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiError {
    /// Not JSON, or a field of an unexpected type.
    #[error("OpenAI event is not valid JSON of the expected shape")]
    InvalidJson,
    /// A field the event type requires is missing.
    #[error("OpenAI `{event}` event lacks `{field}`")]
    MissingField {
        /// Event type.
        event: &'static str,
        /// Field.
        field: &'static str,
    },
    /// An audio delta that is not base64.
    #[error("OpenAI audio delta is not base64")]
    BadAudio,
}

/// Top-level keys the full parser reads; the fast path gives up if it meets one it does not
/// handle, so both paths always read the same fields.
const SLOW_KEYS: &[&[u8]] = &[
    b"type",
    b"event_id",
    b"response_id",
    b"item_id",
    b"output_index",
    b"content_index",
    b"delta",
    b"transcript",
    b"call_id",
    b"name",
    b"arguments",
    b"audio_start_ms",
    b"audio_end_ms",
    b"response",
    b"error",
];

/// Reads one server event (a WebSocket text payload, valid UTF-8).
pub fn parse_server_event(json: &mut [u8]) -> Result<ServerEvent<'_>, OpenAiError> {
    if let Some(fast) = scan_delta(json) {
        return Ok(ServerEvent::AudioDelta(fast.resolve(json)));
    }
    parse_slow(json)
}

/// The delta fast path alone (public for the differential fuzz target and benches).
pub fn parse_delta_fast(json: &[u8]) -> Option<AudioDelta<'_>> {
    scan_delta(json).map(|f| f.resolve(json))
}

type Span = std::ops::Range<usize>;

struct FastDelta {
    response_id: Span,
    item_id: Span,
    output_index: u64,
    content_index: u64,
    delta: Span,
}

impl FastDelta {
    fn resolve(self, json: &[u8]) -> AudioDelta<'_> {
        AudioDelta {
            response_id: &json[self.response_id],
            item_id: &json[self.item_id],
            output_index: self.output_index,
            content_index: self.content_index,
            delta: &json[self.delta],
        }
    }
}

fn scan_delta(json: &[u8]) -> Option<FastDelta> {
    template_delta(json).or_else(|| scan_delta_any_order(json))
}

fn span_in(json: &[u8], s: &[u8]) -> Span {
    let start = s.as_ptr() as usize - json.as_ptr() as usize;
    start..start + s.len()
}

/// Tier 1: the GA layout (`type`, `event_id`, `response_id`, `item_id`, `output_index`,
/// `content_index`, `delta`).
#[inline]
fn template_delta(json: &[u8]) -> Option<FastDelta> {
    let mut t = json_scan::Template::new(json);
    t.lit(br#"{"type":"response.output_audio.delta","event_id":""#)?;
    t.short_str()?;
    t.lit(br#","response_id":""#)?;
    let response_id = t.short_str()?;
    t.lit(br#","item_id":""#)?;
    let item_id = t.short_str()?;
    t.lit(br#","output_index":"#)?;
    let output_index = t.int()?;
    t.lit(br#","content_index":"#)?;
    let content_index = t.int()?;
    t.lit(br#","delta":""#)?;
    let delta = t.base64_str()?;
    t.lit(b"}")?;
    t.end()?;
    Some(FastDelta {
        response_id: span_in(json, response_id),
        item_id: span_in(json, item_id),
        output_index,
        content_index,
        delta: span_in(json, delta),
    })
}

/// Tier 2: any key order, whitespace, unknown scalar fields.
fn scan_delta_any_order(json: &[u8]) -> Option<FastDelta> {
    let span = |s: &[u8]| span_in(json, s);
    let (mut ty, mut event_id, mut response_id, mut item_id, mut delta) = (None, None, None, None, None);
    let (mut output_index, mut content_index) = (None, None);
    fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
        if slot.is_some() || v.is_none() {
            return None;
        }
        *slot = v;
        Some(())
    }
    fn str_of(v: Value<'_>) -> Option<&[u8]> {
        if let Value::Str(s) = v { Some(s) } else { None }
    }
    fn int_of(v: Value<'_>) -> Option<u64> {
        if let Value::Int(n) = v { Some(n) } else { None }
    }
    json_scan::scan(json, &mut |parent, key, v| {
        if parent.is_some() {
            return None;
        }
        match key {
            b"type" => once(&mut ty, str_of(v)),
            b"event_id" => once(&mut event_id, str_of(v)),
            b"response_id" => once(&mut response_id, str_of(v)),
            b"item_id" => once(&mut item_id, str_of(v)),
            b"delta" => once(&mut delta, str_of(v)),
            b"output_index" => once(&mut output_index, int_of(v)),
            b"content_index" => once(&mut content_index, int_of(v)),
            k if SLOW_KEYS.contains(&k) => None,
            _ => Some(()),
        }
    })?;
    if ty? != b"response.output_audio.delta" {
        return None;
    }
    let delta = delta?;
    if !json_scan::is_base64(delta) {
        return None;
    }
    Some(FastDelta {
        response_id: span(response_id?),
        item_id: span(item_id?),
        output_index: output_index?,
        content_index: content_index?,
        delta: span(delta),
    })
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    response_id: Option<&'a str>,
    #[serde(borrow, default)]
    item_id: Option<&'a str>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    content_index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<&'a str>,
    #[serde(borrow, default)]
    transcript: Option<&'a str>,
    #[serde(borrow, default)]
    call_id: Option<&'a str>,
    #[serde(borrow, default)]
    name: Option<&'a str>,
    #[serde(borrow, default)]
    arguments: Option<&'a str>,
    #[serde(default)]
    audio_start_ms: Option<u64>,
    #[serde(default)]
    audio_end_ms: Option<u64>,
    #[serde(borrow, default)]
    response: Option<RawResponse<'a>>,
    #[serde(borrow, default)]
    error: Option<RawError<'a>>,
}

#[derive(Deserialize)]
struct RawResponse<'a> {
    #[serde(borrow, default)]
    id: Option<&'a str>,
    #[serde(borrow, default)]
    status: Option<&'a str>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

/// Every count is nullable in the GA schema (`anyOf: [integer, null]`).
#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_token_details: Option<RawInputDetails>,
    #[serde(default)]
    output_token_details: Option<RawOutputDetails>,
}

#[derive(Deserialize)]
struct RawInputDetails {
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cached_tokens_details: Option<RawCachedDetails>,
}

#[derive(Deserialize)]
struct RawCachedDetails {
    #[serde(default)]
    audio_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct RawOutputDetails {
    #[serde(default)]
    audio_tokens: Option<u64>,
}

impl RawUsage {
    fn usage(self) -> Usage {
        let details =
            (self.input_token_details.is_some() || self.output_token_details.is_some()).then(|| {
                let input = self.input_token_details.as_ref();
                contract::internal_api::TokenDetails {
                    input_audio_tokens: input.and_then(|d| d.audio_tokens).unwrap_or(0),
                    input_cached_tokens: input.and_then(|d| d.cached_tokens).unwrap_or(0),
                    input_cached_audio_tokens: input
                        .and_then(|d| d.cached_tokens_details.as_ref())
                        .and_then(|c| c.audio_tokens)
                        .unwrap_or(0),
                    output_audio_tokens: self
                        .output_token_details
                        .as_ref()
                        .and_then(|d| d.audio_tokens)
                        .unwrap_or(0),
                }
            });
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            details,
        }
    }
}

/// The `error` object of both voice APIs: Realtime names the client event at fault
/// `event_id`, GPT-Live `client_event_id`.
#[derive(Deserialize)]
pub(crate) struct RawError<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    message: Option<&'a str>,
    #[serde(borrow, default)]
    param: Option<&'a str>,
    #[serde(borrow, default)]
    event_id: Option<&'a str>,
    #[serde(borrow, default)]
    client_event_id: Option<&'a str>,
}

impl<'a> RawError<'a> {
    /// The error as the call core sees it (a missing type or message is `unknown` / empty).
    pub(crate) fn event(self) -> ErrorEvent<'a> {
        ErrorEvent {
            kind: self.kind.unwrap_or("unknown"),
            code: self.code,
            message: self.message.unwrap_or(""),
            param: self.param,
            event_id: self.event_id.or(self.client_event_id),
        }
    }
}

/// `v`, or the error naming the event and the field it lacks.
pub(crate) fn need<T>(v: Option<T>, event: &'static str, field: &'static str) -> Result<T, OpenAiError> {
    v.ok_or(OpenAiError::MissingField { event, field })
}

/// The full parser (simd-json). Public for the differential fuzz target.
pub fn parse_slow(json: &mut [u8]) -> Result<ServerEvent<'_>, OpenAiError> {
    let raw: RawEvent<'_> = simd_json::serde::from_slice(json).map_err(|_| OpenAiError::InvalidJson)?;
    Ok(match raw.kind {
        "response.output_audio.delta" => {
            const E: &str = "response.output_audio.delta";
            let delta = need(raw.delta, E, "delta")?.as_bytes();
            if !json_scan::is_base64(delta) {
                return Err(OpenAiError::BadAudio);
            }
            ServerEvent::AudioDelta(AudioDelta {
                response_id: need(raw.response_id, E, "response_id")?.as_bytes(),
                item_id: need(raw.item_id, E, "item_id")?.as_bytes(),
                output_index: need(raw.output_index, E, "output_index")?,
                content_index: need(raw.content_index, E, "content_index")?,
                delta,
            })
        }
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            item_id: need(raw.item_id, "input_audio_buffer.speech_started", "item_id")?,
            audio_start_ms: need(raw.audio_start_ms, "input_audio_buffer.speech_started", "audio_start_ms")?,
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped {
            item_id: need(raw.item_id, "input_audio_buffer.speech_stopped", "item_id")?,
            audio_end_ms: need(raw.audio_end_ms, "input_audio_buffer.speech_stopped", "audio_end_ms")?,
        },
        "input_audio_buffer.committed" => {
            ServerEvent::Committed { item_id: need(raw.item_id, "input_audio_buffer.committed", "item_id")? }
        }
        "input_audio_buffer.cleared" => ServerEvent::Cleared,
        "response.created" => ServerEvent::ResponseCreated {
            response_id: need(
                need(raw.response, "response.created", "response")?.id,
                "response.created",
                "response.id",
            )?,
        },
        "response.output_audio.done" => ServerEvent::AudioDone {
            response_id: need(raw.response_id, "response.output_audio.done", "response_id")?,
            item_id: need(raw.item_id, "response.output_audio.done", "item_id")?,
        },
        "response.output_audio_transcript.done" => ServerEvent::AgentTranscript {
            item_id: need(raw.item_id, "response.output_audio_transcript.done", "item_id")?,
            transcript: need(raw.transcript, "response.output_audio_transcript.done", "transcript")?,
        },
        "conversation.item.input_audio_transcription.completed" => ServerEvent::CallerTranscript {
            item_id: need(raw.item_id, "conversation.item.input_audio_transcription.completed", "item_id")?,
            transcript: need(
                raw.transcript,
                "conversation.item.input_audio_transcription.completed",
                "transcript",
            )?,
        },
        "response.function_call_arguments.done" => ServerEvent::FunctionCall {
            call_id: need(raw.call_id, "response.function_call_arguments.done", "call_id")?,
            name: need(raw.name, "response.function_call_arguments.done", "name")?,
            arguments: need(raw.arguments, "response.function_call_arguments.done", "arguments")?,
        },
        "response.done" => {
            let r = need(raw.response, "response.done", "response")?;
            ServerEvent::ResponseDone {
                response_id: need(r.id, "response.done", "response.id")?,
                status: match r.status {
                    Some("completed") => ResponseStatus::Completed,
                    Some("cancelled") => ResponseStatus::Cancelled,
                    Some("incomplete") => ResponseStatus::Incomplete,
                    Some("failed") => ResponseStatus::Failed,
                    _ => ResponseStatus::Other,
                },
                usage: r.usage.map(RawUsage::usage),
            }
        }
        "error" => ServerEvent::Error(need(raw.error, "error", "error")?.event()),
        kind => ServerEvent::Other { kind },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const DELTA: &str = r#"{"type":"response.output_audio.delta","event_id":"event_4950","response_id":"resp_001","item_id":"item_008","output_index":0,"content_index":0,"delta":"/////w=="}"#;

    fn write(f: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>) -> serde_json::Value {
        let mut buf = vec![0u8; 8192];
        let mut w = SliceWriter::new(&mut buf);
        f(&mut w).unwrap();
        serde_json::from_slice(w.as_written()).unwrap()
    }

    fn slow(s: &str) -> Result<String, OpenAiError> {
        let mut b = s.as_bytes().to_vec();
        parse_slow(&mut b).map(|e| format!("{e:?}"))
    }

    #[test]
    fn delta_fast_and_slow_agree() {
        let fast = parse_delta_fast(DELTA.as_bytes()).unwrap();
        assert_eq!(fast.delta, b"/////w==");
        assert_eq!((fast.response_id, fast.item_id), (&b"resp_001"[..], &b"item_008"[..]));
        assert_eq!(slow(DELTA).unwrap(), format!("{:?}", ServerEvent::AudioDelta(fast)));
    }

    #[test]
    fn delta_with_unknown_object_falls_back_but_parses() {
        let s = DELTA.replace(r#""delta""#, r#""obfuscation":{"x":1},"delta""#);
        assert!(parse_delta_fast(s.as_bytes()).is_none());
        let mut b = s.into_bytes();
        assert!(matches!(parse_server_event(&mut b).unwrap(), ServerEvent::AudioDelta(_)));
    }

    /// Found by the `openai_differential` fuzz target: an empty object was invisible to the
    /// fast path, so `"transcript":{}` (which the full parser refuses: not a string) or a
    /// duplicated `"output_index":{}` let the fast path accept what the full parser refuses.
    #[test]
    fn empty_objects_are_seen_by_the_fast_path() {
        for extra in [r#","transcript":{}"#, r#","output_index":{}"#, r#","type":{}"#, r#","response":{}"#] {
            let s = format!("{}{extra}}}", &DELTA[..DELTA.len() - 1]);
            assert!(parse_delta_fast(s.as_bytes()).is_none(), "{s}");
            let mut b = s.clone().into_bytes();
            assert_eq!(parse_server_event(&mut b).map(|e| format!("{e:?}")), slow(&s), "{s}");
        }
        // An unknown key with an empty object is ignored by both parsers.
        let s = format!(r#"{},"obfuscation":{{}}}}"#, &DELTA[..DELTA.len() - 1]);
        let fast = parse_delta_fast(s.as_bytes()).unwrap();
        assert_eq!(slow(&s).unwrap(), format!("{:?}", ServerEvent::AudioDelta(fast)));
    }

    #[test]
    fn other_events_classify() {
        let cases = [
            (
                r#"{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1000,"item_id":"item_1"}"#,
                "SpeechStarted",
            ),
            (
                r#"{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r","item_id":"i","output_index":0,"call_id":"call_1","name":"save_lead","arguments":"{\"first_name\":\"Zoé\"}"}"#,
                "FunctionCall",
            ),
            (
                r#"{"type":"response.done","event_id":"e","response":{"id":"resp_1","object":"realtime.response","status":"cancelled","output":[],"usage":{"total_tokens":5,"input_tokens":3,"output_tokens":2}}}"#,
                "ResponseDone",
            ),
            (
                r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}"#,
                "Error",
            ),
            (r#"{"type":"rate_limits.updated","event_id":"e","rate_limits":[]}"#, "Other"),
        ];
        for (json, kind) in cases {
            let out = slow(json).unwrap();
            assert!(out.starts_with(kind), "{out}");
        }
        assert!(slow(cases[1].0).unwrap().contains(r#"arguments: "{\"first_name\":\"Zoé\"}""#));
        assert!(slow(cases[2].0).unwrap().contains(
            "status: Cancelled, usage: Some(Usage { input_tokens: 3, output_tokens: 2, details: None })"
        ));
    }

    #[test]
    fn response_usage_details_are_read_and_nulls_count_as_zero() {
        let mut b = br#"{"type":"response.done","event_id":"e","response":{"id":"resp_2","object":"realtime.response","status":"completed","output":[],"usage":{"total_tokens":1700,"input_tokens":1500,"output_tokens":200,"input_token_details":{"text_tokens":300,"audio_tokens":1200,"image_tokens":0,"cached_tokens":1024,"cached_tokens_details":{"text_tokens":256,"audio_tokens":768,"image_tokens":null}},"output_token_details":{"text_tokens":40,"audio_tokens":160}}}}"#.to_vec();
        let ServerEvent::ResponseDone { usage: Some(u), .. } = parse_server_event(&mut b).unwrap() else {
            panic!("a response.done with usage")
        };
        assert_eq!((u.input_tokens, u.output_tokens), (1500, 200));
        assert_eq!(
            u.details,
            Some(contract::internal_api::TokenDetails {
                input_audio_tokens: 1200,
                input_cached_tokens: 1024,
                input_cached_audio_tokens: 768,
                output_audio_tokens: 160,
            })
        );
        let mut b = br#"{"type":"response.done","event_id":"e","response":{"id":"r","status":"failed","usage":{"total_tokens":null,"input_tokens":null,"output_tokens":7,"input_token_details":null,"output_token_details":{"text_tokens":7,"audio_tokens":null}}}}"#.to_vec();
        let ServerEvent::ResponseDone { usage: Some(u), .. } = parse_server_event(&mut b).unwrap() else {
            panic!("a response.done with usage")
        };
        assert_eq!((u.input_tokens, u.output_tokens), (0, 7));
        assert_eq!(u.details.map(|d| (d.input_audio_tokens, d.output_audio_tokens)), Some((0, 0)));
    }

    #[test]
    fn bad_events_are_typed_errors() {
        assert_eq!(slow("{"), Err(OpenAiError::InvalidJson));
        assert_eq!(slow(r#"{"no_type":1}"#), Err(OpenAiError::InvalidJson));
        assert_eq!(
            slow(r#"{"type":"input_audio_buffer.speech_started","item_id":"i"}"#),
            Err(OpenAiError::MissingField {
                event: "input_audio_buffer.speech_started",
                field: "audio_start_ms"
            })
        );
        assert_eq!(slow(&DELTA.replace("/////w==", "not audio!")), Err(OpenAiError::BadAudio));
    }

    #[test]
    fn writers_produce_the_documented_shapes() {
        assert_eq!(append_parts(b"AAAA").concat(), br#"{"type":"input_audio_buffer.append","audio":"AAAA"}"#);
        let v = write(|w| write_truncate(w, "item_1", 1840));
        assert_eq!(
            v,
            serde_json::json!({"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":1840})
        );
        let v = write(|w| write_function_output(w, "call_1", r#"{"lead_id":"42"}"#));
        assert_eq!(v["item"]["output"], r#"{"lead_id":"42"}"#);
        let v = write(|w| write_response_create(w, Some("Dis « bonjour »\n")));
        assert_eq!(v["response"]["instructions"], "Dis « bonjour »\n");
    }
}
