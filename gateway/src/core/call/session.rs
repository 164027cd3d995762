//! The OpenAI connection and session: the client upgrade, `session.update` from the call
//! context (plus the last exchanges when resuming; GPT-Live's `session.start` is in `live.rs`),
//! the hold ring's drain, one response at a time, and what happens when the connection is lost
//! (reconnect with backoff, or the end).

use super::*;

impl Core {
    pub(super) fn on_upstream_connected(&mut self, now: Instant) {
        self.openai_out.reset();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        self.openai_enc = Encoder::client_with_seed(seed);
        self.openai_close_sent = false;
        let mut key = [0u8; 16];
        self.rng.fill_bytes(&mut key);
        let mut handshake = None;
        let Core { cfg, auth_header, openai_out, .. } = self;
        let headers = [("Authorization", auth_header.0.as_str())];
        let written = openai_out.push(|out| {
            let (n, hs) =
                upgrade::write_client_request(out, &cfg.openai_host, &cfg.openai_target, &headers, key)?;
            handshake = Some(hs);
            Ok(n)
        });
        self.last_upstream_rx = now;
        match handshake {
            Some(handshake) if written => self.up = Upstream::Handshaking { since: now, handshake },
            _ => {
                self.stats.send_overflows += 1;
                self.close(CloseReason::OpenAiHandshake { status: 0 }, now);
            }
        }
    }

    /// The 101 came: configure the session, send what the caller said meanwhile, greet.
    pub(super) fn on_upstream_open(&mut self, now: Instant) {
        if self.is_live() {
            self.on_live_upgraded(now);
            return;
        }
        if self.sessions == 0 {
            self.events.push_back(Event::Report(CallEvent::Engine {
                api: VoiceApi::Realtime.as_str().to_owned(),
                model: self.cfg.model.clone(),
            }));
        }
        self.up = Upstream::Open;
        self.last_upstream_rx = now;
        self.ping_outstanding = false;
        self.write_realtime_session();
        self.sessions += 1;
        self.commit.reset();
        self.drain_hold();
        self.greet_if_ready();
        if matches!(self.state, CallState::Started) {
            self.state = CallState::Live;
        }
    }

    /// Realtime's `session.update`: the context's instructions, the voice, turn detection
    /// (creating responses unless the greeting is held for answering-machine detection),
    /// transcription and the phone tools.
    pub(super) fn write_realtime_session(&mut self) {
        let instructions = self.session_instructions();
        let create_response = !self.amd_held();
        let tools = self.phone_tools();
        let Core { cfg, ctx, openai_out, openai_enc, stats, .. } = self;
        let session = SessionConfig {
            model: &cfg.model,
            instructions: &instructions,
            voice: &ctx.voice,
            // A greeting that must play through: OpenAI must not cancel it either (the gateway
            // cancels every other interrupted response itself).
            turn_detection: match cfg.turn_detection {
                TurnTaking::ServerVad => TurnDetection::ServerVad {
                    threshold: 0.5,
                    prefix_padding_ms: 300,
                    silence_duration_ms: 500,
                    create_response,
                    interrupt_response: cfg.greeting_interruptible,
                },
                TurnTaking::SemanticVad { eagerness } => TurnDetection::SemanticVad {
                    eagerness: eagerness.as_str(),
                    create_response,
                    interrupt_response: cfg.greeting_interruptible,
                },
                TurnTaking::Off => TurnDetection::Disabled,
            },
            transcription: cfg.transcription_model.as_deref().map(|m| (m, ctx.language.as_str())),
            tools,
        };
        if !openai_out
            .push(|out| openai_enc.frame_with(out, TEXT, |w| openai::write_session_update(w, &session)))
        {
            stats.send_overflows += 1;
        }
    }

    /// The agent speaks first, but only once Twilio's `start` has come and the session is
    /// configured: a stream that never starts must not cost a model response. Also after a
    /// drop that came before the greeting started.
    pub(super) fn greet_if_ready(&mut self) {
        if !self.greeted
            && !self.amd_held()
            && !self.responses.in_flight
            && !self.stream_sid.is_empty()
            && matches!(self.up, Upstream::Open)
        {
            if self.is_live() {
                self.live_greet();
            } else {
                self.request_response(Reply::Plain);
            }
        }
    }

    /// The context's instructions; a resumed session also gets the last exchanges.
    pub(super) fn session_instructions(&self) -> String {
        let mut s = self.ctx.instructions.clone();
        if self.sessions > 0 && !self.transcript.is_empty() {
            s.push_str("\n\n");
            s.push_str(&self.cfg.resume_preamble);
            for (speaker, line) in &self.transcript {
                s.push_str(match speaker {
                    Speaker::Caller => "\n- Prospect : ",
                    Speaker::Agent => "\n- Agent : ",
                });
                s.push_str(line);
            }
        }
        s
    }

    /// Sends the held caller audio as batched appends (decoded audio re-encoded).
    /// As far as the send buffer allows; the rest after [`Call::transmitted`] (caller audio
    /// keeps going into the ring meanwhile, so the order holds).
    pub(super) fn drain_hold(&mut self) {
        const B64: usize = DRAIN_BATCH / 3 * 4;
        if self.hold.is_empty() {
            // The usual case, after every write to OpenAI: return before the 11 KB of stack
            // buffers below are zeroed (that memset was 62 % of the instructions of a whole
            // conversation step, `benches/README.md`).
            return;
        }
        let mut ulaw = [0u8; DRAIN_BATCH];
        let mut b64 = [0u8; B64];
        while matches!(self.up, Upstream::Open) && !self.hold.is_empty() {
            // Room the buffer has or may grow to (it starts smaller than a batch): checking
            // only the room it has now would hold the audio until something else grew it.
            if !self.openai_out.has_room_for(B64 + 64) {
                return;
            }
            let n = self.hold.pop_into(&mut ulaw);
            let encoded = base64_simd::STANDARD.encode(&ulaw[..n], base64_simd::Out::from_slice(&mut b64));
            let (api, enc) = (self.cfg.api, &mut self.openai_enc);
            if !self.openai_out.push(|out| write_caller_append(api, enc, out, encoded)) {
                self.stats.send_overflows += 1;
                continue;
            }
            if self.gateway_commits() {
                let ms = (n / audio::BYTES_PER_MS) as u32;
                self.after_append(ms, audio::mean_square(&ulaw[..n]));
            }
        }
    }

    /// Asks for a response now, or once the active one is done (only one may be active).
    pub(super) fn request_response(&mut self, reply: Reply) {
        if !matches!(self.up, Upstream::Open) {
            return;
        }
        if self.is_live() {
            // GPT-Live takes the turn itself; only a slow tool is worth a word to it (a failed
            // one is said with its output, `live.rs`).
            if reply == Reply::ToolSlow {
                self.live_tool_slow();
            }
            return;
        }
        if self.responses.in_flight {
            // A specific request (tool fallback or failure) wins over a plain one.
            if self.responses.queued.is_none_or(|q| q == Reply::Plain) {
                self.responses.queued = Some(reply);
            }
            return;
        }
        let Core { cfg, openai_out, openai_enc, stats, responses, .. } = self;
        let instructions = match reply {
            Reply::Plain => None,
            Reply::ToolSlow => Some(cfg.tool_slow_instructions.as_str()),
            Reply::ToolFailed => Some(cfg.tool_failed_instructions.as_str()),
        };
        if openai_out
            .push(|out| openai_enc.frame_with(out, TEXT, |w| openai::write_response_create(w, instructions)))
        {
            responses.in_flight = true;
        } else {
            stats.send_overflows += 1;
        }
    }

    /// The OpenAI connection is gone: reconnect (the caller stays, their audio is held) or,
    /// with no attempt left, end the call.
    pub(super) fn upstream_lost(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.live.closing.is_some() {
            // The session's socket went while we waited for `session.closed`: done.
            self.finish_live_close(now);
            return;
        }
        if self.is_live() {
            // The next session's timeline starts at 0: the turns in progress end here.
            self.flush_live_turns(now);
        }
        self.up = Upstream::Down;
        self.responses = Responses::default();
        // The old session's items do not exist in the next one: never truncate them there
        // (Twilio's copy of their audio can still be cleared).
        self.play.forget_items();
        // Answers to these cannot reach the new session; the summary carries the context.
        self.tools.clear();
        if self.ending.as_ref().is_some_and(|e| e.drain_deadline.is_none()) {
            // Ending anyway: no need for a new session, hang up now.
            self.emit_hang_up(now);
            return;
        }
        if self.ending.is_some() {
            return;
        }
        if self.reconnects < self.cfg.max_reconnects {
            // The first reconnect is immediate (the caller is waiting); later ones back off.
            let backoff = self.cfg.reconnect_backoff * self.reconnects;
            self.reconnects += 1;
            self.stats.reconnects += 1;
            if backoff.is_zero() {
                self.up = Upstream::Connecting { since: now };
                self.events.push_back(Event::OpenUpstream);
            } else {
                self.up = Upstream::Backoff { until: now + backoff };
            }
        } else {
            self.close(reason, now);
        }
    }
}
