//! One response from creation to `response.done`: the GA event sequence, streamed step by step
//! so that a cancel (client `response.cancel` or VAD `interrupt_response`) can land between
//! any two chunks.
//!
//! Spoken item: `response.output_item.added`, `conversation.item.added`,
//! `response.content_part.added`, then `response.output_audio.delta` chunks interleaved with
//! `response.output_audio_transcript.delta`, then `response.output_audio.done`,
//! `response.output_audio_transcript.done`, `response.content_part.done`,
//! `response.output_item.done`, `conversation.item.done`. A text-only response uses
//! `response.output_text.delta/.done`. A tool call: `response.output_item.added`,
//! `conversation.item.added`, `response.function_call_arguments.delta`…, `.done`,
//! `response.output_item.done`, `conversation.item.done`. Then `response.done` with usage
//! (the session follows it with `rate_limits.updated`, as the service does).
//!
//! Timing: `response.created` at once; the first output item after the time-to-first-byte;
//! audio chunks paced at `speed` × real time (or back to back). All on tokio's clock.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::audio::AudioFormat;
use crate::conversation::{ConvItem, Conversation};

/// An output item to produce.
#[derive(Debug, Clone)]
pub(crate) enum Planned {
    /// An assistant message: audio (unless text-only) and its transcript.
    Message {
        /// `item_…`.
        item_id: String,
        /// Audio in the response's format (empty for text-only).
        audio: Vec<u8>,
        /// Transcript (or text).
        transcript: String,
    },
    /// A function call.
    Call {
        /// `item_…`.
        item_id: String,
        /// `call_…`.
        call_id: String,
        /// Function name.
        name: String,
        /// JSON arguments text.
        arguments: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The current item is not announced yet.
    Opening,
    /// Streaming the current item: bytes (or chars) and words sent so far.
    Streaming { pos: usize, words: usize },
    /// The current item is streamed; its done events are due.
    Closing,
}

/// Pacing of a response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// Delay before the first item.
    pub ttfb: Duration,
    /// Real-time multiple, `None` for back to back.
    pub speed: Option<f64>,
    /// Audio per delta.
    pub chunk_ms: u32,
}

/// The input tokens a response reads, as the simulator models them (`session.rs`): the
/// instructions and conversation as text, the caller's audio so far as audio, and what an
/// earlier response of the session already read as cached (a subset of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InputTokens {
    /// Text tokens, cached ones included.
    pub(crate) text: u64,
    /// Audio tokens, cached ones included.
    pub(crate) audio: u64,
    /// Of the text, served from the cache.
    pub(crate) cached_text: u64,
    /// Of the audio, served from the cache.
    pub(crate) cached_audio: u64,
}

impl InputTokens {
    /// Text only, nothing cached (tests).
    #[cfg(test)]
    pub(crate) fn text(text: u64) -> Self {
        Self { text, ..Self::default() }
    }
}

/// The response in progress.
#[derive(Debug)]
pub(crate) struct ActiveResponse {
    /// `resp_…`.
    pub id: String,
    base: Value,
    items: Vec<Planned>,
    idx: usize,
    stage: Stage,
    due: Instant,
    outputs: Vec<Value>,
    conversation: bool,
    format: AudioFormat,
    audio_out: bool,
    pacing: Pacing,
    input: InputTokens,
    audio_ms_out: u64,
    text_chars_out: u64,
}

/// Output sink: events without `event_id`.
pub(crate) type Events = Vec<Value>;

fn words_of(s: &str) -> Vec<&str> {
    s.split_inclusive(' ').collect()
}

impl ActiveResponse {
    /// Creates the response and emits `response.created`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        id: String,
        items: Vec<Planned>,
        conversation_id: Option<&str>,
        format: AudioFormat,
        voice: &str,
        audio_out: bool,
        metadata: Value,
        pacing: Pacing,
        input: InputTokens,
        now: Instant,
        out: &mut Events,
    ) -> Self {
        let base = json!({
            "object": "realtime.response",
            "id": id,
            "status": "in_progress",
            "status_details": null,
            "output": [],
            "conversation_id": conversation_id,
            "output_modalities": [if audio_out { "audio" } else { "text" }],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": format.to_json(), "voice": voice}},
            "usage": null,
            "metadata": metadata,
        });
        out.push(json!({"type": "response.created", "response": base}));
        Self {
            id,
            base,
            items,
            idx: 0,
            stage: Stage::Opening,
            due: now + pacing.ttfb,
            outputs: Vec::new(),
            conversation: conversation_id.is_some(),
            format,
            audio_out,
            pacing,
            input,
            audio_ms_out: 0,
            text_chars_out: 0,
        }
    }

    /// When the next step is due.
    pub(crate) fn due(&self) -> Instant {
        self.due
    }

    fn chunk_bytes(&self) -> usize {
        (self.format.bytes_per_ms() * self.pacing.chunk_ms.max(1) as usize).max(2)
    }

    fn pace(&self, now: Instant, ms: u64) -> Instant {
        match self.pacing.speed {
            Some(speed) if speed > 0.0 => now + Duration::from_secs_f64(ms as f64 / 1000.0 / speed),
            _ => now,
        }
    }

    /// Runs one step; true when the response is finished (`response.done` emitted).
    pub(crate) fn step(&mut self, now: Instant, conv: &mut Conversation, out: &mut Events) -> bool {
        let Some(item) = self.items.get(self.idx).cloned() else {
            self.finish("completed", Value::Null, out);
            return true;
        };
        let output_index = self.idx;
        match self.stage {
            Stage::Opening => {
                self.open(&item, output_index, conv, out);
                self.stage = Stage::Streaming { pos: 0, words: 0 };
                self.due = now;
            }
            Stage::Streaming { pos, words } => self.stream(&item, output_index, pos, words, now, conv, out),
            Stage::Closing => {
                self.close(&item, output_index, "completed", conv, out);
                self.idx += 1;
                self.stage = Stage::Opening;
                self.due = now;
                if self.idx == self.items.len() {
                    self.finish("completed", Value::Null, out);
                    return true;
                }
            }
        }
        false
    }

    fn in_progress_item(item: &Planned) -> Value {
        match item {
            Planned::Message { item_id, .. } => {
                json!({"id": item_id, "object": "realtime.item", "type": "message",
                "status": "in_progress", "role": "assistant", "content": []})
            }
            Planned::Call { item_id, call_id, name, .. } => json!({"id": item_id, "object": "realtime.item",
                "type": "function_call", "status": "in_progress", "name": name, "call_id": call_id, "arguments": ""}),
        }
    }

    fn open(&mut self, item: &Planned, output_index: usize, conv: &mut Conversation, out: &mut Events) {
        let v = Self::in_progress_item(item);
        out.push(json!({"type": "response.output_item.added", "response_id": self.id,
            "output_index": output_index, "item": v}));
        let item_id = match item {
            Planned::Message { item_id, .. } | Planned::Call { item_id, .. } => item_id.clone(),
        };
        if self.conversation {
            out.push(
                json!({"type": "conversation.item.added", "previous_item_id": conv.last_id(), "item": v}),
            );
            let audio = matches!(item, Planned::Message { .. }) && self.audio_out;
            conv.push(ConvItem {
                id: item_id.clone(),
                item: v,
                audio_bytes: 0,
                format: self.format,
                assistant_audio: audio,
            });
        }
        if let Planned::Message { .. } = item {
            let part = if self.audio_out {
                json!({"type": "audio", "transcript": ""})
            } else {
                json!({"type": "text", "text": ""})
            };
            out.push(
                json!({"type": "response.content_part.added", "response_id": self.id, "item_id": item_id,
                "output_index": output_index, "content_index": 0, "part": part}),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn stream(
        &mut self,
        item: &Planned,
        output_index: usize,
        pos: usize,
        words_sent: usize,
        now: Instant,
        conv: &mut Conversation,
        out: &mut Events,
    ) {
        match item {
            Planned::Message { item_id, audio, transcript } if self.audio_out => {
                let end = (pos + self.chunk_bytes()).min(audio.len());
                let chunk = &audio[pos..end];
                if !chunk.is_empty() {
                    out.push(json!({"type": "response.output_audio.delta", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "content_index": 0,
                        "delta": B64.encode(chunk)}));
                    if self.conversation
                        && let Some(c) = conv.get_mut(item_id)
                    {
                        c.audio_bytes = end;
                    }
                }
                let words = words_of(transcript);
                let target = if end >= audio.len() {
                    words.len()
                } else {
                    (words.len() * end).div_ceil(audio.len().max(1))
                };
                if target > words_sent {
                    out.push(
                        json!({"type": "response.output_audio_transcript.delta", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "content_index": 0,
                        "delta": words[words_sent..target].concat()}),
                    );
                }
                let ms = self.format.ms_of(chunk.len());
                self.audio_ms_out += ms;
                self.stage = if end >= audio.len() {
                    Stage::Closing
                } else {
                    Stage::Streaming { pos: end, words: target }
                };
                self.due = self.pace(now, ms);
            }
            Planned::Message { item_id, transcript, .. } => {
                let words = words_of(transcript);
                let target = (words_sent + 3).min(words.len());
                if target > words_sent {
                    out.push(json!({"type": "response.output_text.delta", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "content_index": 0,
                        "delta": words[words_sent..target].concat()}));
                }
                self.stage = if target >= words.len() {
                    Stage::Closing
                } else {
                    Stage::Streaming { pos, words: target }
                };
                self.due = now;
            }
            Planned::Call { item_id, call_id, arguments, .. } => {
                let mut end = (pos + 32).min(arguments.len());
                while !arguments.is_char_boundary(end) {
                    end += 1;
                }
                if end > pos {
                    out.push(
                        json!({"type": "response.function_call_arguments.delta", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "call_id": call_id,
                        "delta": &arguments[pos..end]}),
                    );
                }
                self.stage = if end >= arguments.len() {
                    Stage::Closing
                } else {
                    Stage::Streaming { pos: end, words: 0 }
                };
                self.due = now;
            }
        }
    }

    /// Emits the done events of the current item; `status` is `completed` or `incomplete`
    /// (then only what was streamed counts).
    fn close(
        &mut self,
        item: &Planned,
        output_index: usize,
        status: &str,
        conv: &mut Conversation,
        out: &mut Events,
    ) {
        let (words_sent, bytes_sent) = match self.stage {
            Stage::Streaming { pos, words } => (Some(words), pos),
            _ => (None, usize::MAX),
        };
        let done = match item {
            Planned::Message { item_id, transcript, .. } => {
                let said = match words_sent {
                    Some(n) => words_of(transcript)[..n].concat(),
                    None => transcript.clone(),
                };
                self.text_chars_out += said.len() as u64;
                let (part, content) = if self.audio_out {
                    out.push(json!({"type": "response.output_audio.done", "response_id": self.id, "item_id": item_id,
                        "output_index": output_index, "content_index": 0}));
                    out.push(json!({"type": "response.output_audio_transcript.done", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "content_index": 0, "transcript": said}));
                    (
                        json!({"type": "audio", "transcript": said}),
                        json!({"type": "output_audio", "transcript": said}),
                    )
                } else {
                    out.push(json!({"type": "response.output_text.done", "response_id": self.id, "item_id": item_id,
                        "output_index": output_index, "content_index": 0, "text": said}));
                    (json!({"type": "text", "text": said}), json!({"type": "output_text", "text": said}))
                };
                out.push(
                    json!({"type": "response.content_part.done", "response_id": self.id, "item_id": item_id,
                    "output_index": output_index, "content_index": 0, "part": part}),
                );
                json!({"id": item_id, "object": "realtime.item", "type": "message", "status": status,
                    "role": "assistant", "content": [content]})
            }
            Planned::Call { item_id, call_id, name, arguments } => {
                let args = &arguments[..bytes_sent.min(arguments.len())];
                if status == "completed" {
                    out.push(json!({"type": "response.function_call_arguments.done", "response_id": self.id,
                        "item_id": item_id, "output_index": output_index, "call_id": call_id, "name": name,
                        "arguments": args}));
                }
                self.text_chars_out += args.len() as u64;
                json!({"id": item_id, "object": "realtime.item", "type": "function_call", "status": status,
                    "name": name, "call_id": call_id, "arguments": args})
            }
        };
        out.push(json!({"type": "response.output_item.done", "response_id": self.id,
            "output_index": output_index, "item": done}));
        if self.conversation {
            let id = done["id"].as_str().unwrap_or_default().to_owned();
            if let Some(c) = conv.get_mut(&id) {
                c.item = done.clone();
            }
            out.push(json!({"type": "conversation.item.done", "item": done}));
        }
        self.outputs.push(done);
    }

    fn usage(&self) -> Value {
        let audio_out = self.audio_ms_out / 50;
        let text_out = self.text_chars_out / 4 + 1;
        let i = self.input;
        let input = i.text + i.audio;
        json!({
            "total_tokens": input + audio_out + text_out,
            "input_tokens": input,
            "output_tokens": audio_out + text_out,
            "input_token_details": {
                "text_tokens": i.text,
                "audio_tokens": i.audio,
                "image_tokens": 0,
                "cached_tokens": i.cached_text + i.cached_audio,
                "cached_tokens_details": {"text_tokens": i.cached_text, "audio_tokens": i.cached_audio, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        })
    }

    fn finish(&mut self, status: &str, status_details: Value, out: &mut Events) {
        let mut r = self.base.clone();
        r["status"] = json!(status);
        r["status_details"] = status_details;
        r["output"] = Value::Array(std::mem::take(&mut self.outputs));
        r["usage"] = self.usage();
        out.push(json!({"type": "response.done", "response": r}));
    }

    /// Cancels: closes the item being streamed as `incomplete`, then `response.done` with
    /// status `cancelled` and `reason` (`client_cancelled` or `turn_detected`).
    pub(crate) fn cancel(mut self, reason: &str, conv: &mut Conversation, out: &mut Events) {
        if let Some(item) = self.items.get(self.idx).cloned() {
            match self.stage {
                Stage::Opening => {}
                Stage::Streaming { .. } => self.close(&item, self.idx, "incomplete", conv, out),
                Stage::Closing => self.close(&item, self.idx, "completed", conv, out),
            }
        }
        self.finish("cancelled", json!({"type": "cancelled", "reason": reason}), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::validate_server_event;

    fn kinds(ev: &Events) -> Vec<&str> {
        ev.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    fn valid(ev: &Events) {
        for e in ev {
            let mut e = e.clone();
            e["event_id"] = json!("event_test");
            validate_server_event(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
        }
    }

    fn pacing() -> Pacing {
        Pacing { ttfb: Duration::from_millis(300), speed: Some(2.0), chunk_ms: 100 }
    }

    fn message(ms: usize) -> Planned {
        Planned::Message {
            item_id: "item_a".into(),
            audio: vec![0xff; 8 * ms],
            transcript: "un deux trois".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn full_sequence_with_pacing() {
        let now = Instant::now();
        let mut conv = Conversation::default();
        let mut out = Events::new();
        let mut r = ActiveResponse::start(
            "resp_1".into(),
            vec![message(250)],
            Some("conv_1"),
            AudioFormat::Pcmu,
            "marin",
            true,
            Value::Null,
            pacing(),
            InputTokens::text(10),
            now,
            &mut out,
        );
        assert_eq!(r.due(), now + Duration::from_millis(300));
        let mut t = r.due();
        let mut dues = Vec::new();
        while !r.step(t, &mut conv, &mut out) {
            dues.push(r.due() - now);
            t = r.due();
        }
        assert_eq!(
            kinds(&out),
            [
                "response.created",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added",
                "response.output_audio.delta",
                "response.output_audio_transcript.delta",
                "response.output_audio.delta",
                "response.output_audio_transcript.delta",
                "response.output_audio.delta",
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
        );
        // 100 ms chunks at 2× real time: 50 ms apart, the last (50 ms of audio) 25 ms.
        let ms: Vec<u128> = dues.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [300, 350, 400, 425]);
        let said: String = out
            .iter()
            .filter(|e| e["type"] == "response.output_audio_transcript.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(said, "un deux trois", "transcript deltas add up, ahead of the audio");
        let done = out.last().unwrap();
        assert_eq!(done["response"]["status"], "completed");
        assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "un deux trois");
        assert_eq!(conv.get("item_a").unwrap().audio_ms(), 250);
        valid(&out);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_mid_stream_reports_what_was_said() {
        let now = Instant::now();
        let mut conv = Conversation::default();
        let mut out = Events::new();
        let mut r = ActiveResponse::start(
            "resp_1".into(),
            vec![message(1000)],
            Some("conv_1"),
            AudioFormat::Pcmu,
            "marin",
            true,
            json!({"k": "v"}),
            pacing(),
            InputTokens::text(10),
            now,
            &mut out,
        );
        for _ in 0..3 {
            r.step(now, &mut conv, &mut out); // open, two chunks
        }
        out.clear();
        r.cancel("turn_detected", &mut conv, &mut out);
        let done = out.last().unwrap();
        assert_eq!(done["response"]["status"], "cancelled");
        assert_eq!(done["response"]["status_details"]["reason"], "turn_detected");
        assert_eq!(done["response"]["output"][0]["status"], "incomplete");
        assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "un ");
        assert_eq!(conv.get("item_a").unwrap().audio_ms(), 200);
        valid(&out);
    }

    #[tokio::test(start_paused = true)]
    async fn tool_call_and_text_only() {
        let now = Instant::now();
        let mut conv = Conversation::default();
        let mut out = Events::new();
        let args = r#"{"first_name":"Zoé","phone":"+33612345678","consent":true,"notes":"rappeler demain"}"#;
        let mut r = ActiveResponse::start(
            "resp_2".into(),
            vec![Planned::Call {
                item_id: "item_c".into(),
                call_id: "call_1".into(),
                name: "save_lead".into(),
                arguments: args.into(),
            }],
            Some("conv_1"),
            AudioFormat::Pcmu,
            "marin",
            true,
            Value::Null,
            pacing(),
            InputTokens::text(10),
            now,
            &mut out,
        );
        while !r.step(now, &mut conv, &mut out) {}
        let deltas: String = out
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, args);
        assert!(out.iter().filter(|e| e["type"] == "response.function_call_arguments.delta").count() > 1);
        assert!(conv.has_call("call_1"));
        valid(&out);

        out.clear();
        let mut r = ActiveResponse::start(
            "resp_3".into(),
            vec![message(0)],
            None,
            AudioFormat::Pcmu,
            "marin",
            false,
            Value::Null,
            pacing(),
            InputTokens::text(10),
            now,
            &mut out,
        );
        while !r.step(now, &mut conv, &mut out) {}
        assert!(kinds(&out).contains(&"response.output_text.done"));
        assert!(!kinds(&out).contains(&"conversation.item.added"), "out-of-band response");
        valid(&out);
    }
}
