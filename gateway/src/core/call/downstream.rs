//! Twilio → gateway: what each Twilio message does to the call. `media` is the hot path
//! (forwarded to OpenAI unchanged, or held while OpenAI is not ready); `start` makes the stream
//! addressable; marks tell what the caller has heard; the commit policy runs here when server
//! VAD is off.

use super::*;

impl Core {
    pub(super) fn on_twilio_message(&mut self, message: Message<'_>, now: Instant) {
        match message {
            Message::Text(text) => {
                if !self.is_closed() && self.live.closing.is_none() {
                    self.on_twilio_text(text, now);
                }
            }
            Message::Binary(_) => {
                self.close(CloseReason::TwilioProtocol { code: close_code::UNSUPPORTED_DATA }, now)
            }
            Message::Ping(payload) => {
                self.send_twilio(|enc, out| enc.pong(out, payload));
            }
            Message::Pong(_) => {}
            Message::Close(close) => {
                let code = close.map(|(code, _)| code);
                if !self.twilio_close_sent {
                    // Echo the peer's code, as RFC 6455 §5.5.1 suggests.
                    let echo = code.unwrap_or(close_code::NORMAL);
                    self.send_twilio(|enc, out| enc.close(out, echo, ""));
                    self.twilio_close_sent = true;
                }
                let reason = match &self.ending {
                    Some(e) => e.reason,
                    None => CloseReason::TwilioClosed { code },
                };
                self.close(reason, now);
            }
        }
    }

    pub(super) fn on_twilio_protocol_error(&mut self, e: WsError, now: Instant) {
        self.close(CloseReason::TwilioProtocol { code: e.close_code() }, now);
    }

    pub(super) fn on_twilio_text(&mut self, text: &mut [u8], now: Instant) {
        let event = match twilio::parse_event(text) {
            Ok(event) => event,
            Err(e) => {
                self.stats.twilio_bad_messages += 1;
                self.stats.ignored.add(if e == twilio::TwilioError::UnknownEvent {
                    ignored::twilio::UNKNOWN_EVENT
                } else {
                    ignored::twilio::UNPARSABLE
                });
                return;
            }
        };
        // The call belongs to the stream of its `start`: anything naming another stream is
        // not ours (a foreign `stop` must not end this call), and nothing but `connected`
        // means anything before `start`.
        let (stream_sid, call_sid): (&[u8], &[u8]) = match &event {
            TwilioEvent::Connected { .. } => return,
            TwilioEvent::Start(s) => (s.stream_sid.as_bytes(), s.call_sid.as_bytes()),
            TwilioEvent::Media(m) => (m.stream_sid, b""),
            TwilioEvent::Mark { stream_sid, .. } => (stream_sid, b""),
            TwilioEvent::Dtmf { stream_sid, .. } => (stream_sid.as_bytes(), b""),
            TwilioEvent::Stop { stream_sid, call_sid, .. } => (stream_sid.as_bytes(), call_sid.as_bytes()),
        };
        if self.stream_sid.is_empty() {
            if !matches!(event, TwilioEvent::Start(_)) {
                self.stats.twilio_before_start += 1;
                self.stats.ignored.add(ignored::twilio::BEFORE_START);
                return;
            }
        } else if stream_sid != self.stream_sid.as_slice()
            || (!call_sid.is_empty() && call_sid != self.call_sid.as_slice())
        {
            self.stats.twilio_foreign_stream += 1;
            self.stats.ignored.add(ignored::twilio::FOREIGN_STREAM);
            if self.stats.twilio_foreign_stream == 1 {
                self.events.push_back(Event::ForeignStream {
                    stream_sid: String::from_utf8_lossy(stream_sid).into_owned(),
                });
            }
            return;
        }
        match event {
            TwilioEvent::Media(media) => {
                self.on_caller_media(media.sequence_number, media.timestamp, media.payload, now)
            }
            TwilioEvent::Mark { name, .. } => self.on_mark(name, now),
            TwilioEvent::Start(start) => {
                self.on_start(start.stream_sid, start.call_sid, start.account_sid, now)
            }
            TwilioEvent::Dtmf { digit, .. } => self.on_dtmf(digit),
            TwilioEvent::Stop { account_sid, .. } => {
                if !self.account_sid.is_empty() && account_sid.as_bytes() != self.account_sid.as_slice() {
                    self.stats.twilio_foreign_stream += 1;
                    self.stats.ignored.add(ignored::twilio::FOREIGN_STREAM);
                    return;
                }
                let reason = match &self.ending {
                    // Hung up during the announcement, before the transfer was asked for. Once it
                    // is (the tool request out), Twilio's `stop` is the control plane's update
                    // taking the call, which usually comes before the tool's answer does.
                    Some(e) if e.reason == CloseReason::Transferred && e.drain_deadline.is_none() => {
                        CloseReason::CallerHungUp
                    }
                    Some(e) => e.reason,
                    None => CloseReason::CallerHungUp,
                };
                self.close(reason, now);
            }
            TwilioEvent::Connected { .. } => {}
        }
    }

    pub(super) fn on_start(&mut self, stream_sid: &str, call_sid: &str, account_sid: &str, now: Instant) {
        if !self.stream_sid.is_empty() {
            // The same stream started twice.
            self.stats.twilio_bad_messages += 1;
            self.stats.ignored.add(ignored::twilio::DUPLICATE_START);
            return;
        }
        self.stream_sid = id_from(stream_sid.as_bytes());
        self.call_sid = id_from(call_sid.as_bytes());
        self.account_sid = id_from(account_sid.as_bytes());
        if self.stream_sid.is_empty() {
            self.close(CloseReason::TwilioProtocol { code: close_code::POLICY_VIOLATION }, now);
            return;
        }
        self.started_at = Some(now);
        self.last_media = now;
        if matches!(self.state, CallState::Upgraded) {
            self.state = if matches!(self.up, Upstream::Open) { CallState::Live } else { CallState::Started };
        }
        self.flush_agent_hold();
        if self.is_live() && !self.cfg.live_start_at_upgrade {
            self.send_live_start(now);
        }
        self.greet_if_ready();
    }

    /// Places a caller frame on the call's timeline first: silence for the frames lost before
    /// it, nothing for a duplicate or a late one.
    #[inline]
    pub(super) fn on_caller_media(&mut self, seq: u64, timestamp_ms: u64, payload: &[u8], now: Instant) {
        let max_fill = u32::try_from(self.cfg.max_gap_fill.as_millis()).unwrap_or(u32::MAX);
        match self.media_clock.place(seq, timestamp_ms, relay::audio_ms(payload), max_fill) {
            Placement::Drop => self.last_media = now,
            Placement::Append { fill_ms } => {
                if fill_ms > 0 {
                    self.fill_silence(fill_ms);
                }
                self.on_caller_audio(payload, now);
            }
        }
    }

    /// `ms` of μ-law silence where caller frames were lost, as appends (or into the hold ring
    /// while OpenAI is not ready), in 60 ms pieces: no allocation.
    fn fill_silence(&mut self, ms: u32) {
        const PIECE: usize = 480;
        let mut left = ms as usize * audio::BYTES_PER_MS;
        while left > 0 {
            let n = left.min(PIECE);
            left -= n;
            if !matches!(self.up, Upstream::Open) || !self.hold.is_empty() {
                self.hold.push(&[0xFF; PIECE][..n]);
                continue;
            }
            let mut b64 = [0u8; PIECE / 3 * 4 + 4];
            let len = media_clock::silence_base64(n, &mut b64);
            let (api, enc) = (self.cfg.api, &mut self.openai_enc);
            if !self.openai_out.push(|out| write_caller_append(api, enc, out, &b64[..len])) {
                self.stats.send_overflows += 1;
                return;
            }
            if self.gateway_commits() {
                self.after_append((n / audio::BYTES_PER_MS) as u32, 0);
            }
        }
    }

    /// The hot path, Twilio → OpenAI: the base64 goes out unchanged, or into the hold ring
    /// (decoded) while OpenAI is not ready.
    #[inline]
    pub(super) fn on_caller_audio(&mut self, payload: &[u8], now: Instant) {
        self.last_media = now;
        if self.amd == AmdGate::Machine {
            // A recording answered: nothing for the model to hear (and no tokens to pay).
            self.stats.media_not_sent += 1;
            return;
        }
        if !matches!(self.up, Upstream::Open) || !self.hold.is_empty() {
            // OpenAI not ready (or the held audio still going out, ahead of this).
            let hold = &mut self.hold;
            if for_each_decoded(payload, |ulaw| hold.push(ulaw)).is_none() {
                self.stats.twilio_bad_messages += 1;
            }
            self.stats.media_held += 1;
            self.drain_hold();
            return;
        }
        let (api, enc) = (self.cfg.api, &mut self.openai_enc);
        if !self.openai_out.push(|out| write_caller_append(api, enc, out, payload)) {
            self.stats.send_overflows += 1;
            return;
        }
        self.stats.media_forwarded += 1;
        if self.gateway_commits() {
            let (mut sum, mut len) = (0u64, 0u64);
            let decoded = for_each_decoded(payload, |ulaw| {
                sum += audio::mean_square(ulaw) * ulaw.len() as u64;
                len += ulaw.len() as u64;
            });
            if decoded.is_some() && len > 0 {
                self.after_append(relay::audio_ms(payload), sum / len);
            }
        }
    }

    /// Gateway turn taking (server VAD off).
    pub(super) fn after_append(&mut self, ms: u32, mean_square: u64) {
        let (action, speech_began) = self.commit.on_append(ms, mean_square);
        if speech_began {
            self.barge_in();
        }
        match action {
            CommitAction::None => {}
            CommitAction::Commit => self.send_commit(),
            CommitAction::CommitAndRespond => {
                self.send_commit();
                if !self.amd_held() {
                    self.request_response(Reply::Plain);
                }
            }
            CommitAction::Clear => {
                self.send_openai_raw(openai::CLEAR);
            }
        }
    }

    pub(super) fn send_commit(&mut self) {
        if self.send_openai_raw(openai::COMMIT) {
            self.stats.commits += 1;
        }
    }

    #[inline]
    pub(super) fn on_mark(&mut self, name: &[u8], now: Instant) {
        match MarkLabel::parse(name) {
            Some(label) if self.play.on_mark(label) => {}
            _ => self.stats.marks_ignored += 1,
        }
        if self.ending.is_some() {
            self.check_goodbye(now);
        }
    }

    pub(super) fn on_dtmf(&mut self, digit: &str) {
        let valid = digit.len() == 1 && matches!(digit.as_bytes()[0], b'0'..=b'9' | b'*' | b'#');
        if !valid {
            self.stats.twilio_bad_messages += 1;
            return;
        }
        let mut buf = [0u8; 32];
        let mut w = SliceWriter::new(&mut buf);
        // Cannot fail: 20 bytes of prefix and one digit.
        let _ = w.put("L'appelant a tapé ".as_bytes()).and_then(|_| w.put(digit.as_bytes()));
        let n = w.written();
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        if self.is_live() {
            self.live_dtmf(text);
            return;
        }
        if self.send_openai_json(|w| openai::write_user_text(w, text)) {
            self.request_response(Reply::Plain);
        }
    }
}
