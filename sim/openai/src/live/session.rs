//! One GPT-Live session's behaviour, free of I/O: client event in, server events out, and the
//! output audio stream advanced by [`LiveSession::on_timer`]. The socket, the clock and the
//! faults are the driver's (`driver.rs`).
//!
//! The session timeline: milliseconds since `session.started`, counted by the output stream
//! (each `session.output_audio.delta` covers the next `chunk_ms` of it, silence or speech). The
//! stream is paced on tokio's clock, one chunk per `chunk_ms`, and runs at most
//! [`INPUT_LEAD_MS`] ahead of the caller's audio (milliseconds appended): the session advances
//! only while audio keeps coming, as G says: when the audio stops, the stream stops with it,
//! and it resumes at real-time pace when audio comes back. What the caller's audio does (turns loud, ends a
//! turn) takes effect when the stream reaches the moment it happened, so the outcome does not
//! depend on how the client cuts or batches its appends.
//!
//! The agent is the Realtime simulator's: the same [`Script`] (replies in order, tool calls on
//! a user turn, the caller's transcripts), the same energy detector ([`Vad`], fixed parameters:
//! threshold 0.5, 500 ms of silence ends a turn), the same conversation store for function
//! calls and their outputs. It speaks the next scripted reply after each caller turn, after
//! each `session.commentary.append` (a greeting) and after each Responses `response.create`;
//! on the turn a tool call is scripted for, it delegates instead (saying the call's preamble
//! if it has one). It stops talking by itself as soon as the caller's audio turns loud, and
//! does not start while the caller is talking.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{self, Delegation, LiveFormat, StartConfig, tokens};
use super::responses::{ResponsesOutput, stream};
use super::schema::check_live_client_event;
use crate::api_error::ApiError;
use crate::conversation::{ConvItem, Conversation};
use crate::ids::IdGen;
use crate::script::{Script, fill_from_output};
use crate::session::{binary_frame_error, parse_frame};
use crate::vad::{FRAME_MS, Vad, VadEvent, VadParams};

/// How far (ms) the output stream may run ahead of the caller's audio.
pub(crate) const INPUT_LEAD_MS: u64 = 200;
/// Silence that ends a caller's turn.
const TURN_SILENCE_MS: u64 = 500;
/// How often `session.usage.updated` is sent ("about once a minute").
pub(crate) const USAGE_INTERVAL: Duration = Duration::from_secs(60);
/// Largest `session.input_audio.append` (15 MiB of base64, as Realtime).
const MAX_APPEND: usize = 15 * 1024 * 1024;

/// Settings fixed when the session is accepted.
#[derive(Debug, Clone)]
pub(crate) struct LiveSettings {
    /// What the agent says and does.
    pub script: Script,
    /// Audio per `session.output_audio.delta`.
    pub chunk_ms: u32,
    /// From the moment the agent has something to say to its first audio.
    pub ttfb: Duration,
    /// Extra delay before `session.started` (the `SlowStart` fault).
    pub slow_start: Duration,
    /// `session.started`'s `expires_at` (Unix seconds).
    pub expires_at: u64,
    /// Unix seconds now at acceptance (for Responses' `created_at`).
    pub unix_at_accept: u64,
}

/// What the driver sends.
#[derive(Debug)]
pub(crate) enum LiveOut {
    /// A server event without `event_id`.
    Event(Value),
    /// One chunk of the output stream, in the session's format: a `session.output_audio.delta`
    /// (base64, no id, no timestamps) on a WebSocket, the audio track on WebRTC.
    Audio(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingStart,
    Starting {
        due: Instant,
    },
    /// `at`: when `session.started` was sent (usage counts from it); `stream`: when the output
    /// stream's position 0 is (or would have been) due, moved later while the caller's audio
    /// is missing, so the stream pauses rather than bursts to catch up.
    Started {
        at: Instant,
        stream: Instant,
    },
    Closed,
}

/// Something the caller's audio did, applied when the stream reaches it.
#[derive(Debug, Clone, Copy)]
enum Heard {
    Loud,
    TurnEnded { start_ms: u64, end_ms: u64 },
}

/// Something the agent is saying or about to say.
#[derive(Debug)]
struct Utterance {
    audio: Vec<u8>,
    pos: usize,
    words: Vec<String>,
    words_sent: usize,
    not_before_ms: u64,
}

#[derive(Debug)]
struct DelegationState {
    id: String,
    /// Responses: the call whose output is awaited, and whether it came.
    call: Option<(String, bool)>,
}

/// One GPT-Live session.
pub(crate) struct LiveSession {
    /// `sess_`.
    pub id: String,
    pub(crate) ids: IdGen,
    settings: LiveSettings,
    phase: Phase,
    format: LiveFormat,
    delegation: Delegation,
    resource: Value,
    input_us: u64,
    muted: bool,
    vad: Option<Vad>,
    speech_start_ms: Option<u64>,
    heard: VecDeque<(u64, Heard)>,
    caller_speaking: bool,
    user_turns: u32,
    replies_spoken: usize,
    calls_fired: Vec<bool>,
    conv: Conversation,
    out_pos_ms: u64,
    utterances: VecDeque<Utterance>,
    delegations: Vec<DelegationState>,
    usage_sent: u32,
    /// The `event_id` of the `session.start` being answered.
    start_eid: Option<String>,
    /// Queued output.
    pub out: Vec<LiveOut>,
    /// `session.input_audio.append` events accepted.
    pub appends: u64,
    /// Audio bytes they carried.
    pub appended_bytes: u64,
    /// Client events refused by the client-events schema.
    pub client_violations: Vec<String>,
    /// Set when the session has said `session.closed` (or can no longer): the reason.
    pub closed_reason: Option<String>,
    /// Session seconds so far (as last reported).
    pub usage_seconds: f64,
    /// The close frame the driver sends once the queue is flushed.
    pub close_with: Option<(u16, &'static str)>,
}

fn words_of(s: &str) -> Vec<String> {
    s.split_inclusive(' ').map(str::to_owned).collect()
}

impl LiveSession {
    /// A session waiting for `session.start`.
    pub(crate) fn new(settings: LiveSettings) -> Self {
        let mut ids = IdGen::new();
        let calls = settings.script.tool_calls.len();
        Self {
            id: ids.next("sess"),
            ids,
            settings,
            phase: Phase::AwaitingStart,
            format: LiveFormat::Pcm24k,
            delegation: Delegation::Client,
            resource: Value::Null,
            input_us: 0,
            muted: false,
            vad: None,
            speech_start_ms: None,
            heard: VecDeque::new(),
            caller_speaking: false,
            user_turns: 0,
            replies_spoken: 0,
            calls_fired: vec![false; calls],
            conv: Conversation::default(),
            out_pos_ms: 0,
            utterances: VecDeque::new(),
            delegations: Vec::new(),
            usage_sent: 0,
            start_eid: None,
            out: Vec::new(),
            appends: 0,
            appended_bytes: 0,
            client_violations: Vec::new(),
            closed_reason: None,
            usage_seconds: 0.0,
            close_with: None,
        }
    }

    /// Whether `session.started` has been sent.
    pub(crate) fn started(&self) -> bool {
        matches!(self.phase, Phase::Started { .. })
    }

    /// The model `session.start` chose (empty before).
    pub(crate) fn model(&self) -> &str {
        self.resource["model"].as_str().unwrap_or_default()
    }

    fn emit(&mut self, v: Value) {
        self.out.push(LiveOut::Event(v));
    }

    /// An `error` event in G's shape: `{code, message, type, param, client_event_id}`, the
    /// client event id also at the top level.
    fn error(&mut self, e: ApiError, client_event_id: Option<&str>) {
        self.emit(json!({"type": "error", "client_event_id": client_event_id, "error": {
            "type": e.kind, "code": e.code.unwrap_or_else(|| "invalid_request_error".into()),
            "message": e.message, "param": e.param, "client_event_id": client_event_id}}));
    }

    fn input_ms(&self) -> u64 {
        self.input_us / 1000
    }

    /// When [`LiveSession::on_timer`] has work.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        match self.phase {
            Phase::Starting { due } => Some(due),
            Phase::Started { at, stream } => {
                let usage = at + USAGE_INTERVAL * (self.usage_sent + 1);
                let chunk = (self.out_pos_ms <= self.input_ms() + INPUT_LEAD_MS)
                    .then(|| stream + Duration::from_millis(self.out_pos_ms));
                Some(chunk.map_or(usage, |c| c.min(usage)))
            }
            Phase::AwaitingStart | Phase::Closed => None,
        }
    }

    /// Does what is due: `session.started`, `session.usage.updated`, the next output chunk.
    pub(crate) fn on_timer(&mut self, now: Instant) {
        match self.phase {
            Phase::Starting { due } if due <= now => {
                self.phase = Phase::Started { at: now, stream: now };
                let session = self.resource.clone();
                let eid = self.start_eid.take();
                self.emit(json!({"type": "session.started", "client_event_id": eid, "session": session}));
            }
            Phase::Started { at, stream } => {
                if at + USAGE_INTERVAL * (self.usage_sent + 1) <= now {
                    self.usage_sent += 1;
                    self.usage_seconds = (USAGE_INTERVAL * self.usage_sent).as_secs_f64();
                    self.emit(
                        json!({"type": "session.usage.updated", "usage": {"seconds": self.usage_seconds}}),
                    );
                }
                if self.out_pos_ms <= self.input_ms() + INPUT_LEAD_MS
                    && stream + Duration::from_millis(self.out_pos_ms) <= now
                {
                    self.step();
                }
            }
            _ => {}
        }
    }

    /// One chunk of output: what the caller did before its end first, then the agent's audio
    /// (or silence) with the transcript of the words it covers.
    fn step(&mut self) {
        let chunk_ms = u64::from(self.settings.chunk_ms.max(1));
        let end = self.out_pos_ms + chunk_ms;
        while let Some(&(at, h)) = self.heard.front()
            && at < end
        {
            self.heard.pop_front();
            self.apply(h);
        }
        let bpm = self.format.bytes_per_ms();
        let chunk_bytes = bpm * chunk_ms as usize;
        let pos_ms = self.out_pos_ms;
        let mut audio = Vec::with_capacity(chunk_bytes);
        let mut said = None;
        if !self.caller_speaking
            && let Some(u) = self.utterances.front_mut()
            && u.not_before_ms <= pos_ms
        {
            let take = (u.audio.len() - u.pos).min(chunk_bytes);
            audio.extend_from_slice(&u.audio[u.pos..u.pos + take]);
            u.pos += take;
            let target = if u.pos >= u.audio.len() {
                u.words.len()
            } else {
                (u.words.len() * u.pos).div_ceil(u.audio.len().max(1))
            };
            if target > u.words_sent {
                said = Some((u.words[u.words_sent..target].concat(), (take / bpm) as u64));
                u.words_sent = target;
            }
            if u.pos >= u.audio.len() {
                self.utterances.pop_front();
            }
        }
        let missing = chunk_bytes - audio.len();
        if missing > 0 {
            // Whole chunks always: a reply that ends mid-chunk is padded to the byte.
            audio.extend_from_slice(&self.format.silence(missing.div_ceil(bpm))[..missing]);
        }
        self.out.push(LiveOut::Audio(audio));
        if let Some((delta, ms)) = said {
            self.emit(json!({"type": "session.output_transcript.delta", "delta": delta,
                "start_ms": pos_ms, "end_ms": pos_ms + ms.max(1)}));
        }
        self.out_pos_ms = end;
    }

    fn apply(&mut self, h: Heard) {
        match h {
            Heard::Loud => {
                self.caller_speaking = true;
                // The model yields: what it was saying stops, and what it meant to say next.
                if self.utterances.front().is_some_and(|u| u.pos > 0) {
                    self.utterances.clear();
                }
            }
            Heard::TurnEnded { start_ms, end_ms } => {
                self.caller_speaking = false;
                self.user_turns += 1;
                let words = words_of(&self.settings.script.user_transcript(self.user_turns));
                let n = words.len().max(1) as u64;
                let span = end_ms.saturating_sub(start_ms).max(n);
                for (i, w) in words.into_iter().enumerate() {
                    let i = i as u64;
                    self.emit(json!({"type": "session.input_transcript.delta", "delta": w,
                        "start_ms": start_ms + span * i / n, "end_ms": start_ms + span * (i + 1) / n}));
                }
                self.answer_turn();
            }
        }
    }

    /// After a caller's turn: the scripted tool call of this turn (delegated), else a reply
    /// unless one is still waiting to be said.
    fn answer_turn(&mut self) {
        if let Some(i) = self.due_call() {
            self.calls_fired[i] = true;
            let call = self.settings.script.tool_calls[i].clone();
            if let Some(pre) = &call.preamble {
                self.say(&pre.audio.to_ulaw(), &pre.transcript);
            }
            let id = self.ids.next("del");
            match self.delegation.clone() {
                Delegation::Client => {
                    self.emit(json!({"type": "session.delegation.created", "offset_ms": self.out_pos_ms,
                        "delegation": {"type": "delegation", "id": id, "target": "client"}}));
                    self.delegations.push(DelegationState { id, call: None });
                }
                Delegation::Responses { model } => {
                    let response_id = self.ids.next("resp");
                    self.emit(json!({"type": "session.delegation.created", "offset_ms": self.out_pos_ms,
                        "delegation": {"type": "delegation", "id": id, "target": "responses", "response_id": response_id}}));
                    let call_id = self.call_item(&call.name, &call.arguments);
                    self.delegations
                        .push(DelegationState { id: id.clone(), call: Some((call_id.0.clone(), false)) });
                    self.responses(&response_id, &model, &id, &call_id.1);
                }
            }
        } else if self.utterances.is_empty() {
            self.reply();
        }
    }

    /// The index of the unfired tool call scripted for the current turn.
    fn due_call(&self) -> Option<usize> {
        self.settings
            .script
            .tool_calls
            .iter()
            .enumerate()
            .find(|(i, c)| c.on_user_turn == self.user_turns && !self.calls_fired[*i])
            .map(|(i, _)| i)
    }

    /// Records a function call in the conversation: (`call_id`, the Responses output).
    fn call_item(&mut self, name: &str, arguments: &str) -> (String, ResponsesOutput) {
        let item_id = self.ids.next("fc");
        let call_id = self.ids.call_id();
        let arguments = fill_from_output(arguments, self.conv.last_output().as_ref());
        self.conv.push(ConvItem::plain(
            item_id.clone(),
            json!({"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}),
        ));
        let out =
            ResponsesOutput::Call { item_id, call_id: call_id.clone(), name: name.to_owned(), arguments };
        (call_id, out)
    }

    /// Streams a Responses response, each event wrapped in `response.event`.
    fn responses(&mut self, response_id: &str, model: &str, delegation_id: &str, output: &ResponsesOutput) {
        let created_at = self.settings.unix_at_accept + self.out_pos_ms / 1000;
        for event in stream(response_id, model, created_at, output) {
            self.emit(json!({"type": "response.event", "delegation_id": delegation_id, "event": event}));
        }
    }

    /// Queues the next scripted reply; returns its transcript.
    fn reply(&mut self) -> String {
        let reply = self.settings.script.reply(self.replies_spoken);
        self.replies_spoken += 1;
        self.say(&reply.audio.to_ulaw(), &reply.transcript);
        reply.transcript
    }

    fn say(&mut self, ulaw: &[u8], transcript: &str) {
        let not_before_ms = self.out_pos_ms + self.settings.ttfb.as_millis() as u64;
        self.utterances.push_back(Utterance {
            audio: self.format.encode_ulaw(ulaw),
            pos: 0,
            words: words_of(transcript),
            words_sent: 0,
            not_before_ms,
        });
    }

    /// The session as `session.closed` reports it, with usage up to `now`; the driver closes
    /// the socket with `code` afterwards.
    fn close(&mut self, reason: &'static str, now: Instant, code: u16) {
        if let Phase::Started { at, .. } = self.phase {
            self.usage_seconds = (now - at).as_millis() as f64 / 1000.0;
            let session = self.resource.clone();
            self.emit(json!({"type": "session.closed", "reason": reason, "session": session,
                "usage": {"seconds": self.usage_seconds}}));
        }
        self.phase = Phase::Closed;
        self.closed_reason = Some(reason.to_owned());
        self.close_with = Some((code, if reason == "expired" { "session_expired" } else { "" }));
    }

    /// The session cap: `session.closed` `expired`, then close 1001.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.close("expired", now, 1001);
    }

    /// The connection went (dropped, closed by the client, shut down): nothing can be said any
    /// more; the record keeps `connection_lost` and the usage so far.
    pub(crate) fn lost(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Phase::Started { at, .. } = self.phase {
            self.usage_seconds = (now - at).as_millis() as f64 / 1000.0;
        }
        self.phase = Phase::Closed;
        self.closed_reason = Some("connection_lost".to_owned());
    }

    /// WebRTC: the media format is the negotiated one (Opus), not a session setting: the
    /// resolved session reports no `audio.format`.
    pub(crate) fn format_negotiated(&mut self) {
        if let Some(audio) = self.resource.get_mut("audio") {
            audio["format"] = Value::Null;
        }
    }

    /// Answers a client event the session may not take from this client (a WebRTC page
    /// outside its `client.data_channel.allowed_client_events`). Code and wording are the
    /// simulator's choice.
    pub(crate) fn refuse_not_allowed(&mut self, kind: &str, client_event_id: Option<&str>) {
        self.error(
            ApiError::invalid(
                "client_event_not_allowed",
                format!("'{kind}' is not allowed on this data channel (session.client.data_channel.allowed_client_events)."),
                Some("type".into()),
            ),
            client_event_id,
        );
    }

    /// The `ErrorAfter` fault: a transient `server_error`.
    pub(crate) fn server_error(&mut self) {
        self.error(
            ApiError {
                kind: "server_error",
                code: Some("server_error".into()),
                message: "The server had an error while processing your request. Sorry about that!".into(),
                param: None,
            },
            None,
        );
    }

    /// Handles a binary frame: the API speaks JSON text only (code is the simulator's choice).
    pub(crate) fn on_binary(&mut self) {
        self.error(binary_frame_error(), None);
    }

    /// Handles a text frame; returns the event type for the record (`"?"` if not an event).
    pub(crate) fn on_text(&mut self, text: &str, now: Instant) -> String {
        let (mut ev, kind, event_id) = match parse_frame(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.error(e, None);
                return "?".to_owned();
            }
        };
        let eid = event_id.as_deref();
        if self.phase == Phase::Closed {
            return kind;
        }
        if kind == "session.update"
            && let Some(e) = config::immutable_field(&ev["session"])
        {
            self.error(e, eid);
            return kind;
        }
        if let Err(e) = check_live_client_event(&ev) {
            self.client_violations.push(format!("{kind}: {}", e.message));
            self.error(e, eid);
            return kind;
        }
        match (kind.as_str(), self.phase) {
            ("session.start", Phase::AwaitingStart) => self.start(&ev["session"], eid, now),
            ("session.start", _) => self.error(
                // Code is the simulator's choice.
                ApiError::invalid("session_already_started", "The session has already been started.", None),
                eid,
            ),
            (_, Phase::AwaitingStart | Phase::Starting { .. }) => self.error(
                // Code is the simulator's choice; G: the first client event must be session.start,
                // and nothing but it is taken before session.started.
                ApiError::invalid(
                    "session_not_started",
                    format!("'{kind}' was sent before the session started: send session.start and wait for session.started."),
                    Some("type".into()),
                ),
                eid,
            ),
            ("session.input_audio.append", _) => {
                let audio = match ev.get_mut("audio").map(Value::take) {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                };
                self.append(&audio, eid, now);
            }
            ("session.input_audio.mute", _) => {
                self.muted = true;
                self.emit(json!({"type": "session.input_audio.muted", "client_event_id": eid}));
            }
            ("session.input_audio.unmute", _) => {
                self.muted = false;
                self.emit(json!({"type": "session.input_audio.unmuted", "client_event_id": eid}));
            }
            ("session.instructions.append" | "session.thinking.append" | "session.commentary.append", _) => {
                self.text_append(&kind, &ev, eid);
            }
            ("session.update", _) => match config::apply_update(&mut self.resource, &ev["session"]) {
                Ok(d) => {
                    self.delegation = d;
                    let session = self.resource.clone();
                    self.emit(json!({"type": "session.updated", "client_event_id": eid, "session": session}));
                }
                Err(e) => self.error(e, eid),
            },
            ("response.item.create", _) => self.item_create(&ev["item"], eid),
            ("response.create", _) => self.response_create(eid),
            ("session.close", _) => self.close("close_requested", now, 1000),
            (other, _) => self.error(
                // Decisions and audio fixtures are not simulated; code is the simulator's choice.
                ApiError::invalid(
                    "unsupported_by_simulator",
                    format!("'{other}' is not supported by the simulator."),
                    Some("type".into()),
                ),
                eid,
            ),
        }
        kind
    }

    /// Starts the session with `session` (a `session.start`'s, or a WebRTC creation request's,
    /// already schema-checked): `session.started` is due after the `SlowStart` delay. A
    /// refused configuration is an `error` event answering `eid`.
    pub(crate) fn start(&mut self, session: &Value, eid: Option<&str>, now: Instant) {
        let StartConfig { format, delegation, mut resource, .. } = match config::check_start(session) {
            Ok(c) => c,
            Err(e) => return self.error(e, eid),
        };
        resource["id"] = json!(self.id);
        resource["expires_at"] = json!(self.settings.expires_at);
        self.format = format;
        self.delegation = delegation;
        self.resource = resource;
        let params = VadParams { threshold: 0.5, prefix_padding_ms: 0, silence_duration_ms: TURN_SILENCE_MS };
        self.vad = Some(Vad::new(params, format.sample_rate(), 0));
        self.phase = Phase::Starting { due: now + self.settings.slow_start };
        self.start_eid = eid.map(str::to_owned);
    }

    fn append(&mut self, audio: &str, eid: Option<&str>, now: Instant) {
        if audio.len() > MAX_APPEND {
            // Code is the simulator's choice.
            return self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Invalid 'audio': string too long. Expected a string with maximum length {MAX_APPEND}, but got a string with length {} instead.", audio.len()),
                    Some("audio".into()),
                ),
                eid,
            );
        }
        let Ok(bytes) = B64.decode(audio.as_bytes()) else {
            // Code is the simulator's choice.
            return self.error(
                ApiError::invalid(
                    "invalid_value",
                    "Invalid 'audio'. Expected base64-encoded audio bytes.",
                    Some("audio".into()),
                ),
                eid,
            );
        };
        self.appends += 1;
        self.appended_bytes += bytes.len() as u64;
        let samples = self.format.decode(&bytes);
        self.hear(samples, now);
    }

    /// The caller's audio as samples at the format's rate (decoded from an append, or from
    /// the WebRTC audio track): the stream resumes if it was waiting for audio, and the energy
    /// detector hears it.
    pub(crate) fn hear(&mut self, mut samples: Vec<i16>, now: Instant) {
        if let Phase::Started { at, stream } = self.phase
            && self.out_pos_ms > self.input_ms() + INPUT_LEAD_MS
        {
            // The stream was waiting for audio: it resumes now, at real-time pace.
            let due = stream + Duration::from_millis(self.out_pos_ms);
            if now > due {
                self.phase = Phase::Started { at, stream: now - Duration::from_millis(self.out_pos_ms) };
            }
        }
        if self.muted {
            samples.fill(0);
        }
        self.input_us += samples.len() as u64 * 1_000_000 / u64::from(self.format.sample_rate());
        let Some(vad) = self.vad.as_mut() else { return };
        let mut events = Vec::new();
        vad.push(&samples, 0, &mut events);
        for e in events {
            match e {
                VadEvent::Started { audio_start_ms } => {
                    self.speech_start_ms = Some(audio_start_ms);
                    self.heard.push_back((audio_start_ms + FRAME_MS, Heard::Loud));
                }
                VadEvent::Stopped { audio_end_ms } => {
                    let start_ms = self.speech_start_ms.take().unwrap_or_default();
                    let end_ms = audio_end_ms.saturating_sub(TURN_SILENCE_MS).max(start_ms);
                    self.heard.push_back((audio_end_ms, Heard::TurnEnded { start_ms, end_ms }));
                }
            }
        }
    }

    fn text_append(&mut self, kind: &str, ev: &Value, eid: Option<&str>) {
        if ev.get("delegation_id").is_none() {
            // G: required, may be null (the schema has it optional; the stricter reading is
            // the one a client can satisfy for both).
            return self.error(ApiError::missing_parameter("delegation_id".into()), eid);
        }
        let content = ev["content"].as_str().unwrap_or_default();
        if tokens(content) > config::MAX_APPEND_TOKENS {
            return self.error(
                ApiError::invalid(
                    "string_above_max_length",
                    format!(
                        "Invalid 'content': string too long. Expected at most {} tokens, got {}.",
                        config::MAX_APPEND_TOKENS,
                        tokens(content)
                    ),
                    Some("content".into()),
                ),
                eid,
            );
        }
        if let Some(d) = ev["delegation_id"].as_str()
            && !self.delegations.iter().any(|s| s.id == d)
        {
            // Code is the simulator's choice.
            return self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Delegation '{d}' not found."),
                    Some("delegation_id".into()),
                ),
                eid,
            );
        }
        let ack = format!("{}ed", kind);
        let at = self.out_pos_ms;
        self.emit(json!({"type": ack, "client_event_id": eid, "start_ms": at, "end_ms": at}));
        if kind == "session.commentary.append" {
            self.reply();
        }
    }

    fn responses_model(&mut self, eid: Option<&str>) -> Option<String> {
        match &self.delegation {
            Delegation::Responses { model } => Some(model.clone()),
            Delegation::Client => {
                // Code is the simulator's choice.
                self.error(
                    ApiError::invalid(
                        "invalid_request",
                        "This session does not delegate to Responses: set session.delegation.type to 'responses'.",
                        Some("session.delegation".into()),
                    ),
                    eid,
                );
                None
            }
        }
    }

    fn item_create(&mut self, item: &Value, eid: Option<&str>) {
        if self.responses_model(eid).is_none() {
            return;
        }
        let id = item.get("id").and_then(Value::as_str).map_or_else(|| self.ids.next("item"), str::to_owned);
        if item["type"] == "function_call_output" {
            let call_id = item["call_id"].as_str().unwrap_or_default();
            if !self.conv.has_call(call_id) {
                // Code and wording are the simulator's choice: an output must answer a call.
                return self.error(
                    ApiError::invalid(
                        "invalid_value",
                        format!("No tool call found for function call output with call_id {call_id}."),
                        Some("item.call_id".into()),
                    ),
                    eid,
                );
            }
            for d in &mut self.delegations {
                if let Some((c, got)) = d.call.as_mut()
                    && c == call_id
                {
                    *got = true;
                }
            }
        }
        self.conv.push(ConvItem::plain(id, item.clone()));
    }

    fn response_create(&mut self, eid: Option<&str>) {
        let Some(model) = self.responses_model(eid) else { return };
        if let Some((call_id, _)) =
            self.delegations.iter().find_map(|d| d.call.as_ref().filter(|(_, got)| !got))
        {
            // The Responses API's wording; the code is the simulator's choice.
            let msg = format!("No tool output found for function call {call_id}.");
            return self.error(ApiError::invalid("missing_tool_output", msg, Some("input".into())), eid);
        }
        let delegation_id = match self.delegations.last() {
            Some(d) => d.id.clone(),
            None => {
                let id = self.ids.next("del");
                self.delegations.push(DelegationState { id: id.clone(), call: None });
                id
            }
        };
        let response_id = self.ids.next("resp");
        if let Some(i) = self.due_call() {
            // A further call scripted for this turn: the chain goes on.
            self.calls_fired[i] = true;
            let call = self.settings.script.tool_calls[i].clone();
            let (call_id, output) = self.call_item(&call.name, &call.arguments);
            if let Some(d) = self.delegations.last_mut() {
                d.call = Some((call_id, false));
            }
            return self.responses(&response_id, &model, &delegation_id, &output);
        }
        if let Some(d) = self.delegations.last_mut() {
            d.call = None;
        }
        let text = self.reply();
        let output = ResponsesOutput::Message { item_id: self.ids.next("msg"), text };
        self.responses(&response_id, &model, &delegation_id, &output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Reply;

    fn session(reply: Reply) -> LiveSession {
        LiveSession::new(LiveSettings {
            script: Script::replies([reply]),
            chunk_ms: 100,
            ttfb: Duration::ZERO,
            slow_start: Duration::ZERO,
            expires_at: 0,
            unix_at_accept: 0,
        })
    }

    /// Runs every step due up to `until`, returning the audio chunks sent.
    fn run(s: &mut LiveSession, from: Instant, until: Duration) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        while let Some(due) = s.next_due().filter(|d| *d <= from + until) {
            s.on_timer(due);
            for out in s.out.drain(..) {
                if let LiveOut::Audio(bytes) = out {
                    chunks.push(bytes);
                }
            }
        }
        chunks
    }

    #[test]
    fn a_reply_ending_mid_chunk_is_padded_to_whole_chunks() {
        let mut s = session(Reply::mulaw(vec![0x10; 4003], "odd"));
        let t0 = Instant::now();
        s.on_text(r#"{"type":"session.start","session":{"model":"gpt-live-1","audio":{"format":{"type":"audio/pcmu","rate":8000}}}}"#, t0);
        s.on_timer(t0);
        assert!(s.started());
        s.on_text(r#"{"type":"session.commentary.append","content":"Salue.","delegation_id":null}"#, t0);
        let silence = B64.encode(vec![0xFFu8; 8000]);
        s.on_text(&format!(r#"{{"type":"session.input_audio.append","audio":"{silence}"}}"#), t0);
        let chunks = run(&mut s, t0, Duration::from_secs(2));
        assert_eq!(chunks.len(), 13, "1000 ms of input and 200 ms ahead");
        assert!(chunks.iter().all(|c| c.len() == 800));
        let audio = chunks.concat();
        assert_eq!(audio[..4003], [0x10; 4003]);
        assert!(audio[4003..].iter().all(|&b| b == 0xFF));
    }
}
