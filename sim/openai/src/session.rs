//! One Realtime session's behaviour, free of I/O: client event in, server events out.
//!
//! [`Session::on_text`] takes a client frame, checks it against the client-events schema and
//! the service's rules, and queues the answers; [`Session::on_timer`] advances the response in
//! progress. The WebSocket driver (`ws.rs`) does the I/O, the clock and the faults.
//!
//! Error wording comes from the real service where public reports show it:
//! `input_audio_buffer_commit_empty` ("Error committing input audio buffer: buffer too small.
//! Expected at least 100ms of audio, but buffer only has 0.00ms of audio."),
//! `conversation_already_has_active_response` ("Conversation already has an active response
//! in progress: resp_…. Wait until the response is finished before creating a new one."),
//! `response_cancel_not_active` ("Cancellation failed: no active response found"),
//! `unsupported_content_type` ("Only model output audio messages can be truncated"), the
//! truncate length message ("Audio content of 9250ms is already shorter than 57340ms"),
//! `cannot_update_voice`, and the transcription-session message. Codes the public record does
//! not show are the simulator's choice and say so in a comment where they are built.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api_error::ApiError;
use crate::audio::AudioFormat;
use crate::conversation::{ConvItem, Conversation};
use crate::ids::IdGen;
use crate::playout::{Playout, PlayoutEvent};
use crate::response::{ActiveResponse, Events, InputTokens, Pacing, Planned};
use crate::schema;
use crate::script::Script;
use crate::session_config::{self, Derived};
use crate::vad::{Vad, VadEvent};

/// Largest `input_audio_buffer.append` (15 MiB of base64).
const MAX_APPEND: usize = 15 * 1024 * 1024;

/// Settings fixed when the session is accepted.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// What the model says.
    pub script: Script,
    /// Response pacing.
    pub pacing: Pacing,
    /// Echo mode.
    pub echo: bool,
    /// How the client is connected.
    pub transport: Transport,
}

/// How a session reaches its client: one behaviour, two transports. The differences are the
/// audio's path, nothing else: over WebSocket audio travels in events
/// (`input_audio_buffer.append`, `response.output_audio.delta`); over WebRTC it travels on the
/// media track ([`Session::on_input_samples`], [`Session::pull_output_frame`]) and the server
/// keeps an output audio buffer it reports with `output_audio_buffer.*` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `GET /v1/realtime` upgraded to a WebSocket.
    WebSocket,
    /// `POST /v1/realtime/calls`: the `oai-events` data channel and an Opus track.
    WebRtc,
}

/// What the driver should do besides sending events.
#[derive(Debug)]
pub(crate) enum Out {
    /// A server event without `event_id`.
    Event(Value),
    /// An echo-mode audio delta: base64 audio to send back in the GA layout.
    Echo(String),
}

/// One session.
pub(crate) struct Session {
    /// `sess_…`.
    pub id: String,
    pub(crate) ids: IdGen,
    settings: Settings,
    session: Value,
    derived: Derived,
    conversation_id: String,
    conv: Conversation,
    input_us: u64,
    buffer_start_us: u64,
    buffer_bytes: usize,
    vad: Option<Vad>,
    speech_item: Option<String>,
    user_turns: u32,
    replies_spoken: usize,
    calls_fired: Vec<bool>,
    active: Option<ActiveResponse>,
    /// Queued output.
    pub out: Vec<Out>,
    /// Echo mode: `resp_`/`item_` ids of the echo stream.
    echo_ids: (String, String),
    responses_done: u64,
    /// WebRTC: the output audio buffer.
    playout: Option<Playout>,
    /// WebRTC: a response whose audio was cleared while it was still generating; the rest of
    /// its audio is dropped.
    muted_response: Option<String>,
    /// `input_audio_buffer.append` events accepted.
    pub appends: u64,
    /// Audio bytes they carried.
    pub appended_bytes: u64,
    /// Text and audio input tokens the last response read (the next one finds them cached).
    read_before: (u64, u64),
}

impl Session {
    /// A session for `model`, starting from `initial` (an ephemeral key's session) if any.
    pub(crate) fn new(model: &str, initial: Option<&Value>, settings: Settings) -> Self {
        let mut ids = IdGen::new();
        let mut session = session_config::default_session(model);
        if let Some(init) = initial.filter(|i| i["type"] == "realtime") {
            session_config::merge_update(&mut session, init);
            session["model"] = json!(model);
        }
        let derived = session_config::derive(&session);
        let calls = settings.script.tool_calls.len();
        let settings_transport = settings.transport;
        let echo_ids = (ids.next("resp"), ids.next("item"));
        let mut s = Self {
            id: ids.next("sess"),
            conversation_id: ids.next("conv"),
            ids,
            settings,
            session,
            derived,
            conv: Conversation::default(),
            input_us: 0,
            buffer_start_us: 0,
            buffer_bytes: 0,
            vad: None,
            speech_item: None,
            user_turns: 0,
            replies_spoken: 0,
            calls_fired: vec![false; calls],
            active: None,
            out: Vec::new(),
            echo_ids,
            playout: (settings_transport == Transport::WebRtc).then(Playout::default),
            muted_response: None,
            responses_done: 0,
            appends: 0,
            appended_bytes: 0,
            read_before: (0, 0),
        };
        s.rebuild_vad();
        s
    }

    /// Queues `session.created`.
    pub(crate) fn on_connect(&mut self) {
        self.emit(json!({"type": "session.created", "session": self.session}));
    }

    fn emit(&mut self, v: Value) {
        self.out.push(Out::Event(v));
    }

    /// Queues a response's events. Over WebRTC its audio deltas go to the output audio buffer
    /// instead of the data channel, and `response.done` tells the buffer no more is coming.
    fn response_events(&mut self, ev: Events) {
        let Some(playout) = self.playout.as_mut() else {
            self.out.extend(ev.into_iter().map(Out::Event));
            return;
        };
        let mut reported = Vec::new();
        for e in ev {
            match e["type"].as_str() {
                Some("response.output_audio.delta") => {
                    let response_id = e["response_id"].as_str().unwrap_or_default();
                    if self.muted_response.as_deref() == Some(response_id) {
                        continue;
                    }
                    let bytes = B64.decode(e["delta"].as_str().unwrap_or_default()).unwrap_or_default();
                    let samples = to_playout_rate(self.derived.output_format, &bytes);
                    playout.push(response_id, e["item_id"].as_str().unwrap_or_default(), &samples);
                }
                Some("response.done") => {
                    let id = e["response"]["id"].as_str().unwrap_or_default().to_owned();
                    self.out.push(Out::Event(e));
                    playout.finish(&id, &mut reported);
                }
                _ => self.out.push(Out::Event(e)),
            }
        }
        self.playout_events(reported);
    }

    fn playout_events(&mut self, reported: Vec<PlayoutEvent>) {
        for r in reported {
            let (kind, id) = match r {
                PlayoutEvent::Started(id) => ("output_audio_buffer.started", id),
                PlayoutEvent::Stopped(id) => ("output_audio_buffer.stopped", id),
            };
            self.emit(json!({"type": kind, "response_id": id}));
        }
    }

    /// WebRTC: the next 20 ms of assistant audio (mono, [`crate::playout::RATE`] Hz), `None`
    /// when nothing is playing. The shell calls it once per 20 ms tick.
    pub(crate) fn pull_output_frame(&mut self) -> Option<Vec<i16>> {
        let playout = self.playout.as_mut()?;
        let mut reported = Vec::new();
        let frame = playout.pull(&mut reported);
        self.playout_events(reported);
        frame
    }

    /// WebRTC: empties the output audio buffer (client `output_audio_buffer.clear`, or the
    /// caller interrupting). The items cut are truncated at what was played, as the service
    /// does itself on WebRTC, and the rest of a response still generating is dropped. False
    /// if nothing was queued.
    fn clear_output(&mut self) -> bool {
        let Some(cleared) = self.playout.as_mut().and_then(Playout::clear) else { return false };
        if let Some(active) = &self.active {
            self.muted_response = Some(active.id.clone());
        }
        for (item_id, played_ms) in cleared.items {
            if let Some(item) = self.conv.get_mut(&item_id)
                && item.assistant_audio
                && item.audio_ms() > played_ms
            {
                item.audio_bytes = item.format.bytes_per_ms() * played_ms as usize;
                if let Some(c) = item.item.pointer_mut("/content/0/transcript") {
                    *c = Value::Null;
                }
                self.emit(json!({"type": "conversation.item.truncated", "item_id": item_id,
                    "content_index": 0, "audio_end_ms": played_ms}));
            }
        }
        self.emit(json!({"type": "output_audio_buffer.cleared", "response_id": cleared.response_id}));
        true
    }

    /// The sample rate [`Session::on_input_samples`] expects (the input format's).
    pub(crate) fn input_rate(&self) -> u32 {
        self.derived.input_format.sample_rate()
    }

    fn error(&mut self, e: ApiError, client_event_id: Option<&str>) {
        self.emit(e.to_event(client_event_id));
    }

    fn input_ms(&self) -> u64 {
        self.input_us / 1000
    }

    fn rebuild_vad(&mut self) {
        if self.settings.echo {
            self.vad = None;
            return;
        }
        self.vad = self
            .derived
            .turn
            .map(|t| Vad::new(t.params, self.derived.input_format.sample_rate(), self.input_ms()));
        self.speech_item = None;
    }

    /// When [`Session::on_timer`] has work.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.active.as_ref().map(ActiveResponse::due)
    }

    /// Advances the response in progress by one step if due.
    pub(crate) fn on_timer(&mut self, now: Instant) {
        let Some(r) = self.active.as_mut() else { return };
        if r.due() > now {
            return;
        }
        let mut ev = Events::new();
        let finished = r.step(now, &mut self.conv, &mut ev);
        self.response_events(ev);
        if finished {
            self.active = None;
            self.rate_limits();
        }
    }

    /// `rate_limits.updated`, as the service sends after each `response.done`.
    fn rate_limits(&mut self) {
        self.responses_done += 1;
        let used = 1_000 * self.responses_done;
        self.emit(json!({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 5_000, "remaining": 4_999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 800_000, "remaining": 800_000u64.saturating_sub(used), "reset_seconds": 0.45},
        ]}));
    }

    /// Handles a binary frame: the API speaks JSON text only.
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
        if let Err(e) = schema::check_client_event(&ev) {
            self.error(e, event_id.as_deref());
            return kind;
        }
        let eid = event_id.as_deref();
        match kind.as_str() {
            "input_audio_buffer.append" => {
                let audio = match ev.get_mut("audio").map(Value::take) {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                };
                self.append(audio, eid, now);
            }
            "input_audio_buffer.commit" => self.commit_manual(eid),
            "input_audio_buffer.clear" => {
                self.clear_buffer();
                self.emit(json!({"type": "input_audio_buffer.cleared"}));
            }
            "session.update" => self.session_update(&ev["session"], eid),
            "response.create" => self.response_create(ev.get("response"), eid, now),
            "response.cancel" => self.response_cancel(ev.get("response_id").and_then(Value::as_str), eid),
            "conversation.item.create" => self.item_create(&ev, eid),
            "conversation.item.truncate" => self.item_truncate(&ev, eid),
            "conversation.item.delete" => self.item_delete(ev["item_id"].as_str().unwrap_or_default(), eid),
            "conversation.item.retrieve" => {
                self.item_retrieve(ev["item_id"].as_str().unwrap_or_default(), eid)
            }
            "output_audio_buffer.clear" if self.playout.is_some() => {
                // An empty buffer has nothing to report (`cleared` names a response): the
                // simulator's choice, the public record does not show the service's answer.
                self.clear_output();
            }
            "output_audio_buffer.clear" => {
                // The output buffer exists on WebRTC and SIP connections only; code is the
                // simulator's choice.
                self.error(
                    ApiError::invalid(
                        "invalid_value",
                        "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
                        Some("type".into()),
                    ),
                    eid,
                );
            }
            _ => {}
        }
        kind
    }

    fn append(&mut self, audio: String, eid: Option<&str>, now: Instant) {
        if audio.len() > MAX_APPEND {
            // Code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Invalid 'audio': string too long. Expected a string with maximum length {MAX_APPEND}, but got a string with length {} instead.", audio.len()),
                    Some("audio".into()),
                ),
                eid,
            );
            return;
        }
        let bytes = match B64.decode(audio.as_bytes()) {
            Ok(b) => b,
            Err(_) => {
                // Code is the simulator's choice.
                self.error(
                    ApiError::invalid(
                        "invalid_value",
                        "Invalid 'audio'. Expected base64-encoded audio bytes.",
                        Some("audio".into()),
                    ),
                    eid,
                );
                return;
            }
        };
        self.appends += 1;
        self.appended_bytes += bytes.len() as u64;
        if self.settings.echo {
            self.out.push(Out::Echo(audio));
            return;
        }
        let samples = self.derived.input_format.decode(&bytes);
        self.on_input_samples(&samples, now);
    }

    /// Caller audio as linear samples at [`Session::input_rate`]: appended to the input buffer
    /// and run through turn detection. Over WebSocket `input_audio_buffer.append` lands here
    /// once decoded; over WebRTC the decoded Opus track does.
    pub(crate) fn on_input_samples(&mut self, samples: &[i16], now: Instant) {
        let fmt = self.derived.input_format;
        let bytes_per_sample = fmt.bytes_per_ms() / (fmt.sample_rate() as usize / 1000);
        self.buffer_bytes += samples.len() * bytes_per_sample;
        self.input_us += samples.len() as u64 * 1_000_000 / u64::from(fmt.sample_rate());
        let Some(vad) = self.vad.as_mut() else { return };
        let mut events = Vec::new();
        vad.push(samples, self.buffer_start_us / 1000, &mut events);
        for e in events {
            match e {
                VadEvent::Started { audio_start_ms } => self.speech_started(audio_start_ms),
                VadEvent::Stopped { audio_end_ms } => self.speech_stopped(audio_end_ms, now),
            }
        }
    }

    fn speech_started(&mut self, audio_start_ms: u64) {
        let item_id = self.ids.next("item");
        self.speech_item = Some(item_id.clone());
        self.emit(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms, "item_id": item_id}));
        if self.derived.turn.is_some_and(|t| t.interrupt_response) {
            // The caller hears silence at once; the response's cancellation follows.
            self.clear_output();
            self.cancel_active("turn_detected");
        }
    }

    fn speech_stopped(&mut self, audio_end_ms: u64, now: Instant) {
        let item_id = self.speech_item.take().unwrap_or_else(|| self.ids.next("item"));
        self.emit(json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": audio_end_ms, "item_id": item_id}));
        // The buffer up to the end of speech becomes the item; audio after it (same append)
        // stays, and the detector, already back in silence, keeps its state.
        let end_us = (audio_end_ms * 1000).clamp(self.buffer_start_us, self.input_us);
        self.commit(item_id, end_us);
        if self.derived.turn.is_some_and(|t| t.create_response) && self.active.is_none() {
            self.start_response(None, now);
        }
    }

    fn clear_buffer(&mut self) {
        self.buffer_bytes = 0;
        self.buffer_start_us = self.input_us;
        self.speech_item = None;
        let pos = self.input_ms();
        if let Some(v) = self.vad.as_mut() {
            v.reset(pos);
        }
    }

    fn commit_manual(&mut self, eid: Option<&str>) {
        let ms = (self.input_us - self.buffer_start_us) as f64 / 1000.0;
        if self.buffer_bytes == 0 || ms < 100.0 {
            self.error(
                ApiError::invalid(
                    "input_audio_buffer_commit_empty",
                    format!("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms:.2}ms of audio."),
                    None,
                ),
                eid,
            );
            return;
        }
        let item_id = self.speech_item.take().unwrap_or_else(|| self.ids.next("item"));
        self.clear_buffer();
        self.commit_range(item_id, ms as u64);
    }

    /// Commits the buffer up to `end_us` on the input timeline (VAD): what follows stays
    /// buffered.
    fn commit(&mut self, item_id: String, end_us: u64) {
        let ms = (end_us - self.buffer_start_us) / 1000;
        let rest_us = self.input_us - end_us;
        self.buffer_start_us = end_us;
        self.buffer_bytes = (rest_us as usize * self.derived.input_format.bytes_per_ms()) / 1000;
        self.commit_range(item_id, ms);
    }

    /// Emits a committed user item of `ms` milliseconds: committed, item added/done,
    /// transcription.
    fn commit_range(&mut self, item_id: String, ms: u64) {
        let previous = self.conv.last_id();
        self.user_turns += 1;
        self.emit(
            json!({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id}),
        );
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "user", "content": [{"type": "input_audio", "transcript": null}]});
        self.conv.push(ConvItem::plain(item_id.clone(), item.clone()));
        self.emit(json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}));
        self.emit(json!({"type": "conversation.item.done", "previous_item_id": previous, "item": item}));
        if self.derived.transcription {
            let transcript = self.settings.script.user_transcript(self.user_turns);
            self.emit(
                json!({"type": "conversation.item.input_audio_transcription.delta", "item_id": item_id,
                "content_index": 0, "delta": transcript}),
            );
            let words = transcript.split_whitespace().count() as u64;
            let audio_tokens = ms / 100 + 1;
            self.emit(
                json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                "content_index": 0, "transcript": transcript,
                "usage": {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": words + 1,
                          "total_tokens": audio_tokens + words + 1,
                          "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0}}}),
            );
            if let Some(c) = self.conv.get_mut(&item_id) {
                c.item["content"][0]["transcript"] = json!(transcript);
            }
        }
    }

    fn session_update(&mut self, update: &Value, eid: Option<&str>) {
        if update["type"] == "transcription" {
            // Wording from the service; code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    "Passing a transcription session update event to a realtime session is not allowed.",
                    Some("session.type".into()),
                ),
                eid,
            );
            return;
        }
        if let Some(model) = update.get("model").and_then(Value::as_str)
            && model != self.session["model"]
        {
            // Code is the simulator's choice: the model is fixed at connection.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    "Cannot update a session's model.",
                    Some("session.model".into()),
                ),
                eid,
            );
            return;
        }
        if let Some(voice) = update.pointer("/audio/output/voice")
            && *voice != self.session["audio"]["output"]["voice"]
            && self.conv.has_assistant_audio()
        {
            self.error(
                ApiError::invalid(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    Some("session.audio.output.voice".into()),
                ),
                eid,
            );
            return;
        }
        let before = self.derived.clone();
        session_config::merge_update(&mut self.session, update);
        self.derived = session_config::derive(&self.session);
        if before.turn != self.derived.turn || before.input_format != self.derived.input_format {
            self.rebuild_vad();
        }
        self.emit(json!({"type": "session.updated", "session": self.session}));
    }

    fn plan(&mut self, format: AudioFormat, audio_out: bool) -> Vec<Planned> {
        let script = &self.settings.script;
        let trigger = script
            .tool_calls
            .iter()
            .enumerate()
            .find(|(i, c)| c.on_user_turn == self.user_turns && !self.calls_fired[*i])
            .map(|(i, c)| (i, c.clone()));
        let mut items = Vec::new();
        let say = |ids: &mut IdGen, reply: crate::script::Reply| Planned::Message {
            item_id: ids.next("item"),
            audio: if audio_out { reply.audio.encode(format) } else { Vec::new() },
            transcript: reply.transcript,
        };
        match trigger {
            Some((i, call)) => {
                self.calls_fired[i] = true;
                if let Some(pre) = call.preamble {
                    items.push(say(&mut self.ids, pre));
                }
                items.push(Planned::Call {
                    item_id: self.ids.next("item"),
                    call_id: self.ids.call_id(),
                    name: call.name,
                    arguments: crate::script::fill_from_output(
                        &call.arguments,
                        self.conv.last_output().as_ref(),
                    ),
                });
            }
            None => {
                let reply = script.reply(self.replies_spoken);
                self.replies_spoken += 1;
                items.push(say(&mut self.ids, reply));
            }
        }
        items
    }

    fn start_response(&mut self, params: Option<&Value>, now: Instant) {
        let p = params.filter(|p| !p.is_null());
        let audio_out = match p.and_then(|p| p.get("output_modalities")).and_then(Value::as_array) {
            Some(m) => m.iter().any(|x| x == "audio"),
            None => self.derived.audio_out,
        };
        let format = p
            .and_then(|p| p.pointer("/audio/output/format"))
            .and_then(AudioFormat::from_json)
            .unwrap_or(self.derived.output_format);
        let voice = p
            .and_then(|p| p.pointer("/audio/output/voice"))
            .and_then(Value::as_str)
            .unwrap_or(&self.derived.voice)
            .to_owned();
        let in_conversation = p.and_then(|p| p.get("conversation")).and_then(Value::as_str) != Some("none");
        let metadata = p.and_then(|p| p.get("metadata")).cloned().unwrap_or(Value::Null);
        let items = self.plan(format, audio_out);
        let instructions = p
            .and_then(|p| p.get("instructions"))
            .or_else(|| self.session.get("instructions"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The simulator's token model: a quarter token per character of instructions and ten
        // per conversation item as text, ten per second of the caller's audio so far as audio;
        // what the previous response read is served from the cache.
        let text = instructions.len() as u64 / 4 + 10 * self.conv.len() as u64 + 1;
        let audio = self.input_us / 100_000;
        let (read_text, read_audio) = self.read_before;
        let input_tokens = InputTokens {
            text,
            audio,
            cached_text: read_text.min(text),
            cached_audio: read_audio.min(audio),
        };
        self.read_before = (text, audio);
        let id = self.ids.next("resp");
        let mut ev = Events::new();
        let conv_id = in_conversation.then_some(self.conversation_id.as_str());
        self.active = Some(ActiveResponse::start(
            id,
            items,
            conv_id,
            format,
            &voice,
            audio_out,
            metadata,
            self.settings.pacing,
            input_tokens,
            now,
            &mut ev,
        ));
        self.response_events(ev);
    }

    fn response_create(&mut self, params: Option<&Value>, eid: Option<&str>, now: Instant) {
        if let Some(active) = &self.active {
            let msg = format!(
                "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                active.id
            );
            self.error(ApiError::invalid("conversation_already_has_active_response", msg, None), eid);
            return;
        }
        self.start_response(params, now);
    }

    fn cancel_active(&mut self, reason: &str) -> bool {
        let Some(r) = self.active.take() else { return false };
        let mut ev = Events::new();
        r.cancel(reason, &mut self.conv, &mut ev);
        self.response_events(ev);
        self.rate_limits();
        true
    }

    fn response_cancel(&mut self, response_id: Option<&str>, eid: Option<&str>) {
        let matches = match (&self.active, response_id) {
            (Some(_), None) => true,
            (Some(a), Some(id)) => a.id == id,
            (None, _) => false,
        };
        if !matches || !self.cancel_active("client_cancelled") {
            self.error(
                ApiError::invalid(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found",
                    None,
                ),
                eid,
            );
        }
    }

    fn item_create(&mut self, ev: &Value, eid: Option<&str>) {
        let mut item = ev["item"].clone();
        let previous = ev.get("previous_item_id").and_then(Value::as_str).map(str::to_owned);
        if let Some(p) = &previous
            && self.conv.get(p).is_none()
        {
            // Code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Invalid 'previous_item_id': item with id '{p}' not found."),
                    Some("previous_item_id".into()),
                ),
                eid,
            );
            return;
        }
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) if self.conv.get(id).is_some() => {
                // Code is the simulator's choice.
                self.error(
                    ApiError::invalid(
                        "invalid_value",
                        format!("Item with id '{id}' already exists."),
                        Some("item.id".into()),
                    ),
                    eid,
                );
                return;
            }
            Some(id) => id.to_owned(),
            None => self.ids.next("item"),
        };
        if item["type"] == "function_call_output" {
            let call_id = item["call_id"].as_str().unwrap_or_default();
            if !self.conv.has_call(call_id) {
                // Code and wording are the simulator's choice: an output must answer a call.
                self.error(
                    ApiError::invalid(
                        "invalid_value",
                        format!("No tool call found for function call output with call_id {call_id}."),
                        Some("item.call_id".into()),
                    ),
                    eid,
                );
                return;
            }
        }
        item["id"] = json!(id);
        item["object"] = json!("realtime.item");
        if item.get("status").is_none_or(Value::is_null) {
            item["status"] = json!("completed");
        }
        let prev_out = match &previous {
            Some(p) => {
                self.conv.insert_after(p, ConvItem::plain(id.clone(), item.clone()));
                Some(p.clone())
            }
            None => {
                let last = self.conv.last_id();
                self.conv.push(ConvItem::plain(id.clone(), item.clone()));
                last
            }
        };
        self.emit(json!({"type": "conversation.item.added", "previous_item_id": prev_out, "item": item}));
        self.emit(json!({"type": "conversation.item.done", "previous_item_id": prev_out, "item": item}));
    }

    fn item_truncate(&mut self, ev: &Value, eid: Option<&str>) {
        let item_id = ev["item_id"].as_str().unwrap_or_default();
        let content_index = ev["content_index"].as_i64().unwrap_or(-1);
        let audio_end_ms = ev["audio_end_ms"].as_i64().unwrap_or(-1);
        let Some(item) = self.conv.get(item_id) else {
            // Code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "item_truncate_invalid_item_id",
                    format!("Item with item_id not found: {item_id}"),
                    Some("item_id".into()),
                ),
                eid,
            );
            return;
        };
        if !item.assistant_audio || item.audio_bytes == 0 {
            self.error(
                ApiError::invalid(
                    "unsupported_content_type",
                    "Only model output audio messages can be truncated",
                    None,
                ),
                eid,
            );
            return;
        }
        if content_index != 0 {
            // Code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Invalid 'content_index': no audio content at index {content_index}."),
                    Some("content_index".into()),
                ),
                eid,
            );
            return;
        }
        let have = item.audio_ms();
        if audio_end_ms < 0 || audio_end_ms as u64 > have {
            // Wording from the service; code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "invalid_value",
                    format!("Audio content of {have}ms is already shorter than {audio_end_ms}ms"),
                    Some("audio_end_ms".into()),
                ),
                eid,
            );
            return;
        }
        if let Some(item) = self.conv.get_mut(item_id) {
            item.audio_bytes = item.format.bytes_per_ms() * audio_end_ms as usize;
            // Truncation deletes the server-side transcript.
            if let Some(c) = item.item.pointer_mut("/content/0/transcript") {
                *c = Value::Null;
            }
        }
        self.emit(json!({"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0,
            "audio_end_ms": audio_end_ms}));
    }

    fn item_delete(&mut self, item_id: &str, eid: Option<&str>) {
        if self.conv.remove(item_id) {
            self.emit(json!({"type": "conversation.item.deleted", "item_id": item_id}));
        } else {
            // Code is the simulator's choice.
            self.error(
                ApiError::invalid(
                    "item_delete_invalid_item_id",
                    format!("Item with item_id not found: {item_id}"),
                    Some("item_id".into()),
                ),
                eid,
            );
        }
    }

    fn item_retrieve(&mut self, item_id: &str, eid: Option<&str>) {
        match self.conv.get(item_id).map(|i| i.item.clone()) {
            Some(item) => self.emit(json!({"type": "conversation.item.retrieved", "item": item})),
            None => {
                // Code is the simulator's choice.
                self.error(
                    ApiError::invalid(
                        "item_retrieve_invalid_item_id",
                        format!("Item with item_id not found: {item_id}"),
                        Some("item_id".into()),
                    ),
                    eid,
                );
            }
        }
    }

    /// The echo stream's response and item ids.
    pub(crate) fn echo_ids(&self) -> (&str, &str) {
        (&self.echo_ids.0, &self.echo_ids.1)
    }

    /// The `session_expired` error (the driver closes with 1001 after it).
    pub(crate) fn expire(&mut self, cap: std::time::Duration) {
        let secs = cap.as_secs();
        let limit = if secs.is_multiple_of(60) {
            format!("{} minutes", secs / 60)
        } else {
            format!("{secs} seconds")
        };
        self.error(
            ApiError::invalid(
                "session_expired",
                format!("Your session hit the maximum duration of {limit}."),
                None,
            ),
            None,
        );
    }

    /// The `beta_api_shape_disabled` error (the driver closes with 4000 after it).
    pub(crate) fn beta_refused(&mut self) {
        self.error(
            ApiError::invalid(
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
                None,
            ),
            None,
        );
    }
}

/// A client text frame read as an event: the JSON, its `type` (`"?"` without one) and its
/// `event_id`; `Err` is the `invalid_json` error (code the simulator's choice). Both front
/// ends (Realtime, GPT-Live) read frames this way.
pub(crate) fn parse_frame(text: &str) -> Result<(Value, String, Option<String>), ApiError> {
    let ev: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid("invalid_json", format!("Invalid JSON: {e}"), None))?;
    let kind = ev.get("type").and_then(Value::as_str).unwrap_or("?").to_owned();
    let event_id = ev.get("event_id").and_then(Value::as_str).map(str::to_owned);
    Ok((ev, kind, event_id))
}

/// The error a binary frame gets: the API speaks JSON text only (code the simulator's choice).
pub(crate) fn binary_frame_error() -> ApiError {
    ApiError::invalid(
        "invalid_json",
        "Binary frames are not supported: send client events as JSON text.",
        None,
    )
}

/// Output audio of `format` as samples at the output buffer's rate (G.711's 8 kHz tripled by
/// linear interpolation).
fn to_playout_rate(format: AudioFormat, bytes: &[u8]) -> Vec<i16> {
    match format {
        AudioFormat::Pcm24k => format.decode(bytes),
        AudioFormat::Pcmu | AudioFormat::Pcma => {
            let pcm = AudioFormat::Pcm24k.from_ulaw(&match format {
                AudioFormat::Pcmu => bytes.to_vec(),
                _ => AudioFormat::Pcmu.encode(&format.decode(bytes)),
            });
            AudioFormat::Pcm24k.decode(&pcm)
        }
    }
}
