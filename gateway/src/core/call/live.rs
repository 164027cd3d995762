//! The call on GPT-Live (`protocols.md` §G): what differs from Realtime behind the same call
//! core. The Twilio side, the hold ring, the gap fill, tools bookkeeping, timers, the end
//! report and the outboxes are shared; this file holds only what the Live protocol changes.
//!
//! - **Start**: the TLS + WebSocket connection opens at the upgrade (pre-warm);
//!   `session.start` (instructions, the conversation so far as text `input` on a resumed
//!   session, `audio/pcmu` 8000, the voice, Responses delegation with the phone tools) goes
//!   at Twilio's `start`, or with the socket ([`CallConfig::live_start_at_upgrade`]; measured
//!   slower barge-in and no sooner first audio: a session started before the caller's audio
//!   flows runs its output timeline ahead of it). Nothing else goes out before `session.started`:
//!   the caller's audio waits in the hold ring meanwhile. The greeting is a
//!   `session.commentary.append` once both the session and the stream have started.
//! - **Caller audio**: `session.input_audio.append`, Twilio's base64 unchanged (the same
//!   zero-allocation path as Realtime's append, the same gap fill).
//! - **Agent audio**: `session.output_audio.delta` is a continuous real-time stream, silence
//!   included. Each delta goes to Twilio unchanged with a mark (so the gateway knows what was
//!   heard, for the goodbye); a delta of pure silence is forwarded while voiced audio is still
//!   queued at Twilio (a short pause keeps its length) and held back once Twilio has played
//!   all of it (it would play silence anyway; a pause longer than what Twilio held is
//!   shortened by at most that). [`CallConfig::live_forward_silence`] forwards everything.
//! - **Barge-in** is the model's: it stops talking by itself. The gateway neither clears
//!   Twilio nor truncates; Twilio's buffer stays small because Live output comes at real-time
//!   pace.
//! - **Tools**: a delegated `function_call` goes to the shell like Realtime's; the result goes
//!   back as `response.item.create` (`function_call_output`) and one `response.create`. A slow
//!   tool gets a `session.thinking.append` (the model may tell the caller to hold on).
//!   `end_call` hangs up once the goodbye has been said and played: the agent's audio has
//!   gone quiet for [`CallConfig::live_goodbye_quiet`] and Twilio has played what it got.
//!   DTMF digits are `session.thinking.append`.
//! - **Transcripts**: input/output deltas grouped into turns by the silence between them
//!   ([`CallConfig::live_turn_gap_ms`]) or by the other side taking the turn; each turn is
//!   reported as Realtime's lines are. `session.usage.updated` seconds are reported.
//! - **End**: the call's end sends `session.close` and waits a bounded time
//!   ([`CallConfig::live_close_wait`]) for `session.closed` (its usage is the call's billed
//!   seconds) before closing the socket. `expired` and `connection_lost` reconnect with the
//!   conversation so far as history, the caller held meanwhile; `content` ends the call.

use super::*;
use crate::core::live::{self as proto, ClosedReason, HistoryRole, LiveEvent, LiveStart, TextKind};

/// One side's transcript fragments, until its turn ends.
#[derive(Debug, Default)]
pub(super) struct TurnText {
    text: String,
    /// End of the last fragment on the session timeline (ms).
    last_end_ms: u64,
}

/// The Live protocol's per-call state.
#[derive(Debug)]
pub(super) struct LiveState {
    /// The current session's id (the playback's "response" id: one timeline per session).
    pub(super) session_id: Id,
    /// Last time agent audio that was not silence arrived.
    pub(super) last_voiced: Instant,
    /// Where the last voiced chunk sent to Twilio ends on the playback timeline (ms): silence
    /// is forwarded while Twilio has not played up to here.
    voiced_end_ms: u32,
    /// The caller's and the agent's turn in progress.
    caller: TurnText,
    agent: TurnText,
    /// Billed seconds reported by the current session (cumulative), and by the sessions
    /// before it (a resumed call sums them).
    session_seconds: f64,
    previous_seconds: f64,
    /// The call is over on our side; waiting for `session.closed` until `.1`.
    pub(super) closing: Option<(CloseReason, Instant)>,
    /// The goodbye quiet time already checked (its timer is not armed again for it).
    pub(super) goodbye_checked: Option<Instant>,
}

impl LiveState {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            session_id: Id::new(),
            last_voiced: now,
            voiced_end_ms: 0,
            caller: TurnText::default(),
            agent: TurnText::default(),
            session_seconds: 0.0,
            previous_seconds: 0.0,
            closing: None,
            goodbye_checked: None,
        }
    }
}

/// Writes a caller append for `api` (Twilio's base64 unchanged): the frame path of both
/// engines.
#[inline]
pub(super) fn write_caller_append(
    api: VoiceApi,
    enc: &mut Encoder,
    out: &mut [u8],
    audio_b64: &[u8],
) -> Result<usize, BufferFull> {
    match api {
        VoiceApi::Realtime => relay::write_append(enc, out, audio_b64),
        VoiceApi::Live => enc.frame_parts(out, TEXT, true, &proto::append_parts(audio_b64)),
    }
}

impl Core {
    /// Whether this call runs on GPT-Live.
    #[inline]
    pub(super) fn is_live(&self) -> bool {
        self.cfg.api == VoiceApi::Live
    }

    /// The 101 came on a Live connection: start the session now, or at Twilio's `start`.
    pub(super) fn on_live_upgraded(&mut self, now: Instant) {
        self.last_upstream_rx = now;
        self.ping_outstanding = false;
        self.up = Upstream::Starting { since: now, sent: false };
        if self.cfg.live_start_at_upgrade || !self.stream_sid.is_empty() {
            self.send_live_start(now);
        }
    }

    /// Sends `session.start` (once per connection).
    pub(super) fn send_live_start(&mut self, now: Instant) {
        let Upstream::Starting { sent: false, .. } = self.up else { return };
        if self.amd_held() {
            // Answering-machine detection runs: the session (billed from its start) waits
            // for the release (`amd.rs`).
            return;
        }
        let resumed = self.sessions > 0;
        let mut instructions = self.ctx.instructions.clone();
        if resumed && !self.transcript.is_empty() {
            instructions.push_str("\n\n");
            instructions.push_str(&self.cfg.live_resume_note);
        }
        let role = |speaker: &Speaker| match speaker {
            Speaker::Caller => HistoryRole::User,
            Speaker::Agent => HistoryRole::Assistant,
        };
        // The web conversation the call continues, then (on a resumed session) the phone
        // conversation so far; `write_session_start` keeps the most recent lines.
        let web = self.ctx.web_transcript.iter().map(|l| (role(&l.speaker), l.text.as_str()));
        let phone =
            self.transcript.iter().filter(|_| resumed).map(|(speaker, line)| (role(speaker), line.as_str()));
        let history: Vec<(HistoryRole, &str)> = web.chain(phone).collect();
        let start = LiveStart {
            model: &self.cfg.model,
            instructions: &instructions,
            history: &history,
            voice: &self.ctx.voice,
            delegation_model: &self.cfg.delegation_model,
            delegation_instructions: &self.cfg.delegation_instructions,
            tools: self.phone_tools(),
        };
        let Core { openai_out, openai_enc, stats, .. } = self;
        if !openai_out.push(|out| openai_enc.frame_with(out, TEXT, |w| proto::write_session_start(w, &start)))
        {
            stats.send_overflows += 1;
        }
        self.up = Upstream::Starting { since: now, sent: true };
    }

    /// A Live server event.
    pub(super) fn on_live_text(&mut self, text: &mut [u8], now: Instant) {
        let event = match proto::parse_server_event(text) {
            Ok(event) => event,
            Err(_) => {
                self.stats.openai_bad_messages += 1;
                self.stats.ignored.add(ignored::openai::UNPARSABLE);
                return;
            }
        };
        if self.live.closing.is_some() {
            // Over on our side: only the end of the session matters now.
            match event {
                LiveEvent::Closed { seconds, .. } => {
                    self.report_live_usage(seconds);
                    self.finish_live_close(now);
                }
                LiveEvent::UsageUpdated { seconds } => self.live.session_seconds = seconds,
                _ => {}
            }
            return;
        }
        match event {
            LiveEvent::AudioDelta { delta } => self.on_live_audio(delta, now),
            LiveEvent::Started { session_id } => self.on_live_started(session_id, now),
            LiveEvent::InputTranscript { delta, start_ms, end_ms } => {
                self.on_live_transcript(Speaker::Caller, delta, start_ms, end_ms, now)
            }
            LiveEvent::OutputTranscript { delta, start_ms, end_ms } => {
                self.on_live_transcript(Speaker::Agent, delta, start_ms, end_ms, now)
            }
            LiveEvent::FunctionCall { call_id, name, arguments } => {
                self.on_function_call(call_id, name, arguments, now)
            }
            LiveEvent::Delegated { .. } => self.stats.ignored.add_openai("response.event"),
            LiveEvent::UsageUpdated { seconds } => {
                self.live.session_seconds = seconds;
                self.events.push_back(Event::Report(CallEvent::LiveUsage { seconds: self.live_seconds() }));
            }
            LiveEvent::Closed { reason, seconds } => {
                self.live.session_seconds = seconds;
                self.on_live_closed(reason, now);
            }
            LiveEvent::Error(e) => {
                self.events.push_back(Event::OpenAiError {
                    code: e.code.map(str::to_owned),
                    message: e.message.to_owned(),
                });
            }
            LiveEvent::Other { kind } => self.stats.ignored.add_openai(kind),
        }
    }

    fn on_live_started(&mut self, session_id: &str, now: Instant) {
        if !matches!(self.up, Upstream::Starting { sent: true, .. }) {
            self.stats.ignored.add_openai("session.started");
            return;
        }
        self.up = Upstream::Open;
        self.live.session_id = id_from(session_id.as_bytes());
        self.live.voiced_end_ms = 0;
        self.live.previous_seconds += self.live.session_seconds;
        self.live.session_seconds = 0.0;
        if self.sessions == 0 {
            self.events.push_back(Event::Report(CallEvent::Engine {
                api: VoiceApi::Live.as_str().to_owned(),
                model: self.cfg.model.clone(),
            }));
        }
        self.sessions += 1;
        self.last_upstream_rx = now;
        self.drain_hold();
        self.greet_if_ready();
        if matches!(self.state, CallState::Started) {
            self.state = CallState::Live;
        }
    }

    /// The greeting: a commentary the model says, once the stream and the session are up.
    pub(super) fn live_greet(&mut self) {
        let greeting = self.cfg.live_greeting.replace("{first_name}", &self.ctx.first_name);
        if self.send_openai_json(|w| proto::write_text(w, TextKind::Commentary, &greeting, None)) {
            self.greeted = true;
        }
    }

    /// Agent audio: to Twilio unchanged (with its mark), pure silence held back when Twilio
    /// has nothing left to play.
    #[inline]
    fn on_live_audio(&mut self, delta: &[u8], now: Instant) {
        let silent = proto::is_silence_b64(delta);
        if silent {
            let queued = self.play.unplayed() || !self.agent_hold.is_empty();
            if !self.cfg.live_forward_silence && !queued {
                self.stats.live_silence_held_back += 1;
                return;
            }
        } else {
            self.live.last_voiced = now;
        }
        let session = self.live.session_id.clone();
        self.on_agent_audio(AudioDelta {
            response_id: &session,
            item_id: b"",
            output_index: 0,
            content_index: 0,
            delta,
        });
    }

    fn on_live_transcript(
        &mut self,
        speaker: Speaker,
        delta: &str,
        start_ms: u64,
        end_ms: u64,
        now: Instant,
    ) {
        let gap = self.cfg.live_turn_gap_ms;
        let (mine, other) = match speaker {
            Speaker::Caller => (&self.live.caller, &self.live.agent),
            Speaker::Agent => (&self.live.agent, &self.live.caller),
        };
        let mine_over = !mine.text.is_empty() && start_ms.saturating_sub(mine.last_end_ms) > gap;
        let other_over = !other.text.is_empty() && start_ms >= other.last_end_ms;
        let other_speaker = match speaker {
            Speaker::Caller => Speaker::Agent,
            Speaker::Agent => Speaker::Caller,
        };
        if other_over {
            self.flush_turn(other_speaker, now);
        }
        if mine_over {
            self.flush_turn(speaker, now);
        }
        let turn = match speaker {
            Speaker::Caller => &mut self.live.caller,
            Speaker::Agent => &mut self.live.agent,
        };
        turn.text.push_str(delta);
        turn.last_end_ms = turn.last_end_ms.max(end_ms);
    }

    /// Reports `speaker`'s turn in progress as a transcript line.
    fn flush_turn(&mut self, speaker: Speaker, now: Instant) {
        let turn = match speaker {
            Speaker::Caller => &mut self.live.caller,
            Speaker::Agent => &mut self.live.agent,
        };
        let text = std::mem::take(&mut turn.text);
        let line = text.trim();
        if !line.is_empty() {
            self.record_transcript(speaker, line, now);
        }
    }

    /// Both turns in progress, reported (the session or the call ends).
    pub(super) fn flush_live_turns(&mut self, now: Instant) {
        self.flush_turn(Speaker::Caller, now);
        self.flush_turn(Speaker::Agent, now);
    }

    fn live_seconds(&self) -> f64 {
        self.live.previous_seconds + self.live.session_seconds
    }

    fn report_live_usage(&mut self, seconds: f64) {
        self.live.session_seconds = seconds;
        self.events.push_back(Event::Report(CallEvent::LiveUsage { seconds: self.live_seconds() }));
    }

    /// `session.closed` while the call goes on: a new session for `expired` or a lost
    /// transport, the end for `content`.
    fn on_live_closed(&mut self, reason: ClosedReason, now: Instant) {
        self.report_live_usage(self.live.session_seconds);
        self.flush_live_turns(now);
        if !self.openai_close_sent {
            self.send_openai(|enc, out| enc.close(out, close_code::NORMAL, ""));
            self.openai_close_sent = true;
        }
        match reason {
            ClosedReason::Content => self.close(CloseReason::OpenAiContent, now),
            _ => self.upstream_lost(CloseReason::OpenAiClosed { code: Some(close_code::NORMAL) }, now),
        }
    }

    /// The tool's output back to the Responses backend, and the response continued.
    pub(super) fn live_tool_output(&mut self, call_id: &str, ok: bool, output: &str) {
        if !ok {
            let note = self.cfg.tool_failed_instructions.clone();
            self.send_openai_json(|w| proto::write_text(w, TextKind::Thinking, &note, None));
        }
        if self.send_openai_json(|w| proto::write_function_output(w, call_id, output)) {
            self.send_openai_raw(proto::RESPONSE_CREATE);
        }
    }

    /// A tool is slow: tell the model, silently; it may ask the caller to hold on.
    pub(super) fn live_tool_slow(&mut self) {
        let note = self.cfg.tool_slow_instructions.clone();
        self.send_openai_json(|w| proto::write_text(w, TextKind::Thinking, &note, None));
    }

    /// A DTMF digit, as silent context.
    pub(super) fn live_dtmf(&mut self, text: &str) {
        self.send_openai_json(|w| proto::write_text(w, TextKind::Thinking, text, None));
    }

    /// When the goodbye counts as said and heard: quiet for
    /// [`CallConfig::live_goodbye_quiet`] since the agent's last voiced audio (or since the
    /// ending began, allowing [`CallConfig::live_goodbye_start`] for the goodbye to begin).
    pub(super) fn live_goodbye_at(&self, ending_began: Instant) -> Instant {
        if self.live.last_voiced > ending_began {
            self.live.last_voiced + self.cfg.live_goodbye_quiet
        } else {
            ending_began + self.cfg.live_goodbye_start
        }
    }

    /// The call ends on our side: `session.close`, then wait (bounded) for `session.closed`.
    /// Returns false when there is no session to close (close at once).
    pub(super) fn begin_live_close(&mut self, reason: CloseReason, now: Instant) -> bool {
        if !matches!(self.up, Upstream::Open | Upstream::Starting { sent: true, .. })
            || self.openai_close_sent
        {
            return false;
        }
        self.flush_live_turns(now);
        if !self.send_openai_raw_any(proto::SESSION_CLOSE) {
            return false;
        }
        self.live.closing = Some((reason, now + self.cfg.live_close_wait));
        self.hold.clear();
        self.agent_hold.clear();
        self.tools.clear();
        if !self.twilio_close_sent {
            let code = twilio_close_code(reason);
            self.send_twilio(|enc, out| enc.close(out, code, reason.code()));
            self.twilio_close_sent = true;
        }
        true
    }

    /// `session.closed` came (or the wait is over, or the socket went): close for good.
    pub(super) fn finish_live_close(&mut self, now: Instant) {
        if let Some((reason, _)) = self.live.closing.take() {
            self.close_now(reason, now);
        }
    }
}
