//! OpenAI → gateway: what each server event does to the call. Audio deltas are the hot path
//! (to Twilio unchanged, split at 240 ms, each piece marked); `speech_started` is a barge-in;
//! function calls go to the shell; transcripts and usage are reported.

use super::*;

impl Core {
    pub(super) fn on_handshake_failed(&mut self, e: HandshakeError, now: Instant) {
        let status = match e {
            HandshakeError::Refused { status, .. } => status,
            _ => 0,
        };
        self.up = Upstream::Down;
        let reason = CloseReason::OpenAiHandshake { status };
        if matches!(status, 400..=404) {
            // Key, model or URL wrong: another attempt would fail the same way.
            self.close(reason, now);
        } else {
            self.upstream_lost(reason, now);
        }
    }

    pub(super) fn on_openai_protocol_error(&mut self, e: WsError, now: Instant) {
        let code = e.close_code();
        if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
            self.send_openai(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.upstream_lost(CloseReason::OpenAiProtocol { code }, now);
    }

    pub(super) fn on_openai_message(&mut self, message: Message<'_>, now: Instant) {
        match message {
            Message::Text(text) => self.on_openai_text(text, now),
            Message::Binary(_) => self.on_openai_protocol_error_code(close_code::UNSUPPORTED_DATA, now),
            Message::Ping(payload) => {
                self.send_openai(|enc, out| enc.pong(out, payload));
            }
            Message::Pong(_) => {}
            Message::Close(close) => {
                let code = close.map(|(code, _)| code);
                if !self.openai_close_sent {
                    let echo = code.unwrap_or(close_code::NORMAL);
                    self.send_openai(|enc, out| enc.close(out, echo, ""));
                    self.openai_close_sent = true;
                }
                self.upstream_lost(CloseReason::OpenAiClosed { code }, now);
            }
        }
    }

    pub(super) fn on_openai_protocol_error_code(&mut self, code: u16, now: Instant) {
        if !self.openai_close_sent {
            self.send_openai(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.upstream_lost(CloseReason::OpenAiProtocol { code }, now);
    }

    pub(super) fn on_openai_text(&mut self, text: &mut [u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.is_live() {
            self.on_live_text(text, now);
            return;
        }
        let event = match openai::parse_server_event(text) {
            Ok(event) => event,
            Err(_) => {
                self.stats.openai_bad_messages += 1;
                self.stats.ignored.add(ignored::openai::UNPARSABLE);
                return;
            }
        };
        match event {
            ServerEvent::AudioDelta(delta) => self.on_agent_audio(delta),
            ServerEvent::SpeechStarted { .. } => self.barge_in(),
            ServerEvent::ResponseCreated { response_id } => {
                // The first response is the greeting: from now on a new session must not greet.
                if !self.greeted {
                    self.greeting_id = id_from(response_id.as_bytes());
                }
                self.greeted = true;
                self.responses.active = true;
                self.responses.in_flight = true;
                self.responses.active_id = id_from(response_id.as_bytes());
                self.responses.cancelling = false;
            }
            ServerEvent::ResponseDone { response_id, usage, .. } => {
                self.responses.active = false;
                self.responses.in_flight = false;
                if let Some(u) = usage {
                    self.events.push_back(Event::Report(CallEvent::Usage {
                        response_id: response_id.to_owned(),
                        input_tokens: u.input_tokens,
                        output_tokens: u.output_tokens,
                        details: u.details,
                    }));
                }
                if let Some(reply) = self.responses.queued.take() {
                    self.request_response(reply);
                }
                if self.ending.is_some() {
                    self.check_goodbye(now);
                }
            }
            ServerEvent::AgentTranscript { transcript, .. } => {
                self.record_transcript(Speaker::Agent, transcript, now);
            }
            ServerEvent::CallerTranscript { transcript, .. } => {
                self.record_transcript(Speaker::Caller, transcript, now);
            }
            ServerEvent::FunctionCall { call_id, name, arguments } => {
                self.on_function_call(call_id, name, arguments, now);
            }
            ServerEvent::Error(e) => {
                self.events.push_back(Event::OpenAiError {
                    code: e.code.map(str::to_owned),
                    message: e.message.to_owned(),
                });
                let already_active = e.code == Some("conversation_already_has_active_response");
                if self.responses.in_flight && !self.responses.active && !already_active {
                    // Most likely our response.create was refused: do not wait for a response
                    // that will not come (later turns would queue forever).
                    self.responses.in_flight = false;
                    if let Some(reply) = self.responses.queued.take() {
                        self.request_response(reply);
                    }
                }
                if e.code == Some("session_expired") {
                    // OpenAI closes with 1001 next; start the new session now.
                    if !self.openai_close_sent {
                        self.send_openai(|enc, out| enc.close(out, close_code::NORMAL, ""));
                        self.openai_close_sent = true;
                    }
                    self.upstream_lost(CloseReason::OpenAiClosed { code: Some(close_code::GOING_AWAY) }, now);
                }
            }
            ServerEvent::SessionCreated => self.stats.ignored.add_openai("session.created"),
            ServerEvent::SessionUpdated => self.stats.ignored.add_openai("session.updated"),
            ServerEvent::SpeechStopped { .. } => {
                self.stats.ignored.add_openai("input_audio_buffer.speech_stopped")
            }
            ServerEvent::Committed { .. } => self.stats.ignored.add_openai("input_audio_buffer.committed"),
            ServerEvent::Cleared => self.stats.ignored.add_openai("input_audio_buffer.cleared"),
            ServerEvent::AudioDone { .. } => self.stats.ignored.add_openai("response.output_audio.done"),
            ServerEvent::Other { kind } => self.stats.ignored.add_openai(kind),
        }
    }

    /// The hot path, OpenAI → Twilio: the delta goes out unchanged (split at 240 ms), each
    /// piece followed by a mark.
    #[inline]
    pub(super) fn on_agent_audio(&mut self, delta: AudioDelta<'_>) {
        if self.play.accept(delta.response_id, delta.item_id) == Accept::Drop {
            self.stats.deltas_dropped += 1;
            return;
        }
        if self.stream_sid.is_empty() || !self.agent_hold.is_empty() {
            // Nothing may go to Twilio before `start`: keep it, decoded, until then (and keep
            // the order while the held audio is still going out).
            let (hold, stats) = (&mut self.agent_hold, &mut self.stats);
            let decoded = for_each_decoded(delta.delta, |ulaw| {
                stats.agent_hold_dropped_bytes += hold.push(ulaw) as u64;
            });
            if decoded.is_none() {
                self.stats.openai_bad_messages += 1;
            }
            self.flush_agent_hold();
            return;
        }
        let Core { play, twilio_out, twilio_enc, stream_sid, stats, .. } = self;
        for piece in delta.delta.chunks(SPLIT_CHARS) {
            let Some(bytes) = audio::base64_decoded_len(piece) else {
                stats.openai_bad_messages += 1;
                return;
            };
            let label = play.label_after(bytes);
            if twilio_out.push(|out| relay::write_media_with_mark(twilio_enc, out, stream_sid, piece, label))
            {
                play.sent(bytes);
                stats.agent_chunks_sent += 1;
            } else {
                stats.send_overflows += 1;
                return;
            }
        }
    }

    /// Sends the agent audio held before `start`, re-encoded, in 240 ms chunks with marks, as
    /// far as the Twilio send buffer allows (the rest goes after [`Call::transmitted`]).
    pub(super) fn flush_agent_hold(&mut self) {
        const CHUNK: usize = SPLIT_CHARS / 4 * 3;
        if self.stream_sid.is_empty() || self.agent_hold.is_empty() {
            return;
        }
        let Core { agent_hold, play, twilio_out, twilio_enc, stream_sid, stats, .. } = self;
        loop {
            let pending = agent_hold.as_slice();
            if pending.is_empty() {
                agent_hold.release();
                return;
            }
            let chunk = &pending[..pending.len().min(CHUNK)];
            let n = chunk.len();
            let mut b64 = [0u8; SPLIT_CHARS];
            let encoded = base64_simd::STANDARD.encode(chunk, base64_simd::Out::from_slice(&mut b64));
            let label = play.label_after(n);
            if !twilio_out
                .push(|out| relay::write_media_with_mark(twilio_enc, out, stream_sid, encoded, label))
            {
                return;
            }
            play.sent(n);
            stats.agent_chunks_sent += 1;
            agent_hold.consume(n);
        }
    }

    /// The caller started speaking. If agent audio is still unplayed: `clear` it on Twilio,
    /// truncate the item where the caller stopped hearing it, drop the rest of the response;
    /// cancel the response if one is active and OpenAI will not cancel it itself.
    pub(super) fn barge_in(&mut self) {
        if self.is_closed() {
            return;
        }
        let unplayed_sent = self.play.unplayed();
        let unplayed = unplayed_sent || !self.agent_hold.is_empty();
        // A response already being cancelled is as good as gone.
        let active = self.responses.active && !self.responses.cancelling;
        if !unplayed && !active {
            return;
        }
        if !self.cfg.greeting_interruptible && !self.greeting_id.is_empty() {
            let greeting_heard = self.play.response_id == self.greeting_id && unplayed;
            let greeting_active = active && self.responses.active_id == self.greeting_id;
            if greeting_heard || greeting_active {
                return;
            }
        }
        self.stats.barge_ins += 1;
        let same_response = self.play.response_id == self.responses.active_id;
        if unplayed_sent && !self.stream_sid.is_empty() {
            let Core { twilio_out, twilio_enc, stream_sid, stats, .. } = self;
            if !twilio_out.push(|out| relay::write_clear(twilio_enc, out, stream_sid)) {
                stats.send_overflows += 1;
            }
        }
        if unplayed || (active && same_response && self.play.sent_bytes > 0) {
            // One response may carry several audio items (a preamble, then the answer): each
            // is truncated on its own timeline, never past what it holds.
            for (item, at) in self.play.truncations() {
                if let Ok(item) = std::str::from_utf8(&item)
                    && !item.is_empty()
                {
                    self.send_openai_json(|w| openai::write_truncate(w, item, u64::from(at)));
                }
            }
            self.agent_hold.clear();
            self.play.flushed = true;
            self.play.dropped[0] = self.play.response_id.clone();
        }
        if active {
            self.play.dropped[1] = self.responses.active_id.clone();
            // With turn detection and `interrupt_response`, OpenAI has already cancelled it on
            // `speech_started`: a cancel of ours would only draw `response_cancel_not_active`.
            if !self.server_interrupts() && !self.responses.cancelling {
                self.send_openai_raw(openai::RESPONSE_CANCEL);
            }
            self.responses.cancelling = true;
        }
    }

    /// Whether OpenAI cancels the active response itself when the caller speaks: turn
    /// detection on, with `interrupt_response` (set from `greeting_interruptible`).
    fn server_interrupts(&self) -> bool {
        self.cfg.turn_detection.by_server() && self.cfg.greeting_interruptible
    }

    pub(super) fn on_function_call(&mut self, call_id: &str, name: &str, arguments: &str, now: Instant) {
        match name {
            END_CALL => {
                if self.is_live() {
                    // The delegated response waits for an output; answering lets the model
                    // say its goodbye, which the hang-up then waits for.
                    let output = self.cfg.live_end_call_output.clone();
                    self.live_tool_output(call_id, true, &output);
                }
                self.begin_ending(
                    CloseReason::AgentEndedCall,
                    Some((call_id.to_owned(), arguments.to_owned())),
                    now,
                )
            }
            TRANSFER if self.ctx.transfer => {
                if self.is_live() {
                    // As for end_call: answered at once, so the model announces the transfer
                    // (a refusal is told to it later, `on_transfer_result`).
                    let output = self.cfg.live_transfer_output.clone();
                    self.live_tool_output(call_id, true, &output);
                }
                self.begin_ending(
                    CloseReason::Transferred,
                    Some((call_id.to_owned(), arguments.to_owned())),
                    now,
                )
            }
            SAVE_LEAD => {
                self.tools.push(PendingTool {
                    call_id: call_id.to_owned(),
                    deadline: now + self.cfg.tool_timeout,
                    fallback_sent: false,
                });
                self.events.push_back(Event::ToolCall {
                    call_id: call_id.to_owned(),
                    name: name.to_owned(),
                    arguments: arguments.to_owned(),
                });
            }
            _ if self.is_live() => self.live_tool_output(call_id, false, r#"{"error":"unknown_tool"}"#),
            _ => {
                // Not a tool we offered: tell the model at once rather than leave it waiting.
                let output = r#"{"error":"unknown_tool"}"#;
                if self.send_openai_json(|w| openai::write_function_output(w, call_id, output)) {
                    self.request_response(Reply::Plain);
                }
            }
        }
    }

    pub(super) fn on_tool_result(&mut self, call_id: &str, ok: bool, output: &str, now: Instant) {
        if self.on_transfer_result(call_id, ok, output, now) {
            return;
        }
        let Some(i) = self.tools.iter().position(|t| t.call_id == call_id) else {
            let ends_call = self.ending.as_ref().is_some_and(|e| e.reason == CloseReason::AgentEndedCall);
            if ends_call && !ok {
                // The control plane could not hang up: closing the stream ends the call.
                self.close(CloseReason::AgentEndedCall, now);
            }
            return;
        };
        self.tools.swap_remove(i);
        if self.is_closed() {
            return;
        }
        if self.is_live() {
            self.live_tool_output(call_id, ok, output);
            return;
        }
        if self.send_openai_json(|w| openai::write_function_output(w, call_id, output)) {
            self.request_response(if ok { Reply::Plain } else { Reply::ToolFailed });
        }
    }

    pub(super) fn record_transcript(&mut self, speaker: Speaker, text: &str, now: Instant) {
        let at_ms = self.since_start_ms(now);
        self.events.push_back(Event::Report(CallEvent::Transcript { speaker, text: text.to_owned(), at_ms }));
        if self.transcript.len() == TRANSCRIPT_LINES {
            self.transcript.pop_front();
        }
        let kept: String = text.chars().take(TRANSCRIPT_LINE_CHARS).collect();
        self.transcript.push_back((speaker, kept));
    }
}
