//! One phone call's whole life, sans-IO: a plain struct driven by the shell, modelled on
//! quinn-proto's `Connection`. No socket, no clock, no runtime: bytes and [`Instant`]s go in,
//! bytes, a timer and [`Event`]s come out.
//!
//! # How the shell drives a call
//! ```text
//! let mut call = Call::new(config, context, now);          // after the Twilio 101; emits OpenUpstream
//! loop {
//!     // inputs, in any order, each with the current time:
//!     call.handle_downstream(&mut twilio_recv_buf, now);   // WebSocket bytes from Twilio (again
//!                                                          //   after a flush if SendBufferFull)
//!     call.upstream_connected(now);                        // TCP+TLS to OpenAI is up: the core
//!                                                          //   writes the HTTP upgrade itself
//!     call.handle_upstream(&mut openai_recv_buf, now);     // the 101, then WebSocket bytes (idem)
//!     call.upstream_closed(now);                           // the OpenAI socket failed or closed
//!     call.tool_result(call_id, ok, output_json, now);     // a ToolCall event was run
//!     call.handle_timeout(now);                            // poll_timeout() was reached
//!     // outputs, after every input:
//!     while let Some(bytes) = call.poll_transmit(Peer::Twilio) { n = write(bytes); call.transmitted(Peer::Twilio, n) }
//!     while let Some(bytes) = call.poll_transmit(Peer::OpenAi) { … }
//!     while let Some(event) = call.poll_event() { … }      // OpenUpstream, ToolCall, HangUp, Report, Closed
//!     timer = call.poll_timeout();
//! }
//! ```
//!
//! # The life of a call ([`CallState`])
//! `Upgraded` (Twilio authorised; OpenAI connecting in parallel: caller audio goes to the hold
//! ring) → `Started` (Twilio `start`: the streamSid is known, agent audio may flow) → `Live`
//! (the OpenAI session is configured: `session.update`, the held audio as appends, the
//! greeting's `response.create`) → `Draining` (`end_call`: the goodbye plays, then the shell
//! hangs up) → `Closed(reason)`, the reason naming the side.
//!
//! # The frame path
//! Twilio `media` → `input_audio_buffer.append` with the base64 unchanged; OpenAI
//! `response.output_audio.delta` → Twilio `media` + `mark` (split at 240 ms without decoding, so
//! barge-in stays precise). Neither allocates (`tests/call_zero_alloc.rs`).
//!
//! # Barge-in
//! On `speech_started` (or the caller's first loud chunk when server VAD is off) while agent
//! audio is unplayed: Twilio `clear` at once, later deltas of that response dropped,
//! `conversation.item.truncate` at what the echoed marks say was played, `response.cancel` only
//! if a response is active ([`playback`] keeps the accounts).
//!
//! # Upstream loss
//! An OpenAI close, protocol error, silence or `session_expired` asks the shell for a new
//! connection ([`Event::OpenUpstream`]) while the caller stays on the line and their audio is
//! held; the new session's instructions end with the last exchanges of the call.

mod commit;
mod config;
mod event;
mod outbox;
mod playback;

use std::collections::VecDeque;
use std::time::Instant;

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

pub use self::config::{CallConfig, END_CALL, PHONE_TOOLS, SAVE_LEAD};
pub use self::event::{CallEvent, CallState, CallStats, CloseReason, Event, Peer, Side, Speaker};
pub use contract::internal_api::CallContext;

use self::commit::{CommitAction, CommitPolicy};
use self::outbox::Outbox;
use self::playback::{Accept, AgentHold, Id, Playback, id_from};
use crate::core::audio::{self, DropPolicy, DropStats, HoldRing};
use crate::core::buf::{BufferFull, RecvBuf, SliceWriter};
use crate::core::openai::{self, AudioDelta, ServerEvent, SessionConfig, TurnDetection};
use crate::core::relay;
use crate::core::twilio::{self, MarkLabel, TwilioEvent};
use crate::core::ws::upgrade::{self, ClientHandshake, HandshakeError, Parse};
use crate::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, WsError, close_code};

/// Caller audio held while OpenAI is not ready: 150 slots of 20 ms (3 s, 24 KB).
pub const HOLD_SLOTS: usize = 150;
/// Agent audio held before Twilio's `start`: 8 s of μ-law.
const AGENT_HOLD_BYTES: usize = 8 * 8000;
/// Agent deltas are split into chunks of this many base64 characters (240 ms of μ-law, a
/// multiple of 4 characters, so each piece is valid base64 without decoding), each followed by
/// a mark: the played position is then known to 240 ms.
const SPLIT_CHARS: usize = 2560;
/// μ-law bytes per `append` when draining the hold ring (600 ms; a multiple of 3, so the
/// base64 has no padding inside).
const DRAIN_BATCH: usize = 4800;
/// Transcript lines kept for a resumed session's instructions.
const TRANSCRIPT_LINES: usize = 12;
/// Characters kept per transcript line for a resumed session.
const TRANSCRIPT_LINE_CHARS: usize = 240;
/// Payload of our keep-alive pings to OpenAI.
const PING_PAYLOAD: &[u8] = b"callway";

const TEXT: OpCode = OpCode::Data(Data::Text);

/// One call. See the module docs for the call order.
#[derive(Debug)]
pub struct Call {
    twilio_dec: Decoder,
    openai_dec: Decoder,
    core: Core,
}

/// What [`Call::handle_downstream`] / [`Call::handle_upstream`] did with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Handled {
    /// Every complete frame was handled (a partial one may remain for the next read).
    Done,
    /// Stopped early because the other side's send buffer is nearly full: write out
    /// [`Call::poll_transmit`] for that side, then call again with the same buffer, even if
    /// no new bytes arrived.
    SendBufferFull,
}

/// The OpenAI connection.
#[derive(Debug)]
enum Upstream {
    /// [`Event::OpenUpstream`] emitted; waiting for [`Call::upstream_connected`].
    Connecting { since: Instant },
    /// Upgrade request written; waiting for the 101.
    Handshaking { since: Instant, handshake: ClientHandshake },
    /// Session configured; events flow.
    Open,
    /// Lost; the next connection is asked for at `until` (backoff after repeated failures).
    Backoff { until: Instant },
    /// None (closed, and not reconnecting).
    Down,
}

/// What kind of `response.create` to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The session's instructions.
    Plain,
    /// "One moment": a tool is slow.
    ToolSlow,
    /// "That did not work": a tool failed.
    ToolFailed,
}

/// Responses: at most one active on OpenAI's side.
#[derive(Debug, Default)]
struct Responses {
    /// `response.created` seen, `response.done` not yet.
    active: bool,
    /// We sent `response.create` (or one is active): another now would be refused.
    in_flight: bool,
    /// The active response's id.
    active_id: Id,
    /// A `response.create` to send once the current one is done.
    queued: Option<Reply>,
}

/// A tool call the shell is running.
#[derive(Debug)]
struct PendingTool {
    call_id: String,
    deadline: Instant,
    fallback_sent: bool,
}

/// The call is ending (Draining).
#[derive(Debug)]
struct Ending {
    reason: CloseReason,
    /// The `end_call` tool call (handed to the shell with the hang-up request).
    tool_call_id: Option<String>,
    arguments: Option<String>,
    /// Hang up anyway at this time if the goodbye has not finished playing.
    goodbye_deadline: Instant,
    /// Set once [`Event::HangUp`] is out: close ourselves at this time if Twilio's `stop`
    /// has not come.
    drain_deadline: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    NoStart,
    NoMedia,
    MaxCall,
    OpenAiPing,
    OpenAiSilent,
    Tool(usize),
    Reconnect,
    Goodbye,
    Drain,
}

/// Everything but the two decoders (which lend their messages while the core reacts).
#[derive(Debug)]
struct Core {
    cfg: CallConfig,
    ctx: CallContext,
    auth_header: String,
    state: CallState,
    created: Instant,
    started_at: Option<Instant>,
    stream_sid: Id,
    rng: ChaCha12Rng,

    twilio_enc: Encoder,
    twilio_out: Outbox,
    twilio_close_sent: bool,
    last_media: Instant,

    up: Upstream,
    openai_enc: Encoder,
    openai_out: Outbox,
    openai_close_sent: bool,
    last_upstream_rx: Instant,
    ping_outstanding: bool,
    sessions: u32,
    reconnects: u32,

    hold: Box<HoldRing<HOLD_SLOTS>>,
    agent_hold: AgentHold,
    play: Playback,
    commit: CommitPolicy,
    responses: Responses,
    /// The greeting response was created (a resumed session must not greet again).
    greeted: bool,
    tools: Vec<PendingTool>,
    ending: Option<Ending>,
    transcript: VecDeque<(Speaker, String)>,
    events: VecDeque<Event>,
    stats: CallStats,
}

impl Call {
    /// A call whose Twilio upgrade was just authorised and whose stream token was redeemed
    /// for `context`. Emits [`Event::OpenUpstream`] at once (pre-warm).
    pub fn new(config: CallConfig, context: CallContext, now: Instant) -> Self {
        let mut rng = ChaCha12Rng::from_seed(config.seed);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let commit =
            CommitPolicy::new(config.min_commit_ms(), config.max_commit_ms(), config.silence_mean_square());
        let mut events = VecDeque::with_capacity(16);
        events.push_back(Event::OpenUpstream);
        let core = Core {
            auth_header: format!("Bearer {}", config.openai_api_key),
            state: CallState::Upgraded,
            created: now,
            started_at: None,
            stream_sid: Id::new(),
            rng,
            twilio_enc: Encoder::server(),
            twilio_out: Outbox::with_capacity(config.twilio_send_capacity),
            twilio_close_sent: false,
            last_media: now,
            up: Upstream::Connecting { since: now },
            openai_enc: Encoder::client_with_seed(seed),
            openai_out: Outbox::with_capacity(config.openai_send_capacity),
            openai_close_sent: false,
            last_upstream_rx: now,
            ping_outstanding: false,
            sessions: 0,
            reconnects: 0,
            hold: Box::new(HoldRing::new(DropPolicy::Oldest)),
            agent_hold: AgentHold::with_capacity(AGENT_HOLD_BYTES),
            play: Playback::default(),
            commit,
            responses: Responses::default(),
            greeted: false,
            tools: Vec::with_capacity(4),
            ending: None,
            transcript: VecDeque::with_capacity(TRANSCRIPT_LINES),
            events,
            stats: CallStats::default(),
            cfg: config,
            ctx: context,
        };
        Self {
            twilio_dec: Decoder::new(Role::Server, Limits::TWILIO),
            openai_dec: Decoder::new(Role::Client, Limits::OPENAI),
            core,
        }
    }

    /// Where the call is.
    pub fn state(&self) -> &CallState {
        &self.core.state
    }

    /// The Twilio stream id, once `start` has arrived.
    pub fn stream_sid(&self) -> Option<&str> {
        std::str::from_utf8(&self.core.stream_sid).ok().filter(|s| !s.is_empty())
    }

    /// Whether `peer`'s close frame has arrived (after ours was flushed, the socket may go).
    pub fn peer_closed(&self, peer: Peer) -> bool {
        match peer {
            Peer::Twilio => self.twilio_dec.peer_closed(),
            Peer::OpenAi => self.openai_dec.peer_closed(),
        }
    }

    /// Whether the OpenAI session is configured (appends go straight through).
    pub fn upstream_ready(&self) -> bool {
        matches!(self.core.up, Upstream::Open)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> CallStats {
        self.core.stats
    }

    /// Caller audio the hold ring had to drop (ring full during a long connect or reconnect).
    pub fn hold_dropped(&self) -> DropStats {
        self.core.hold.dropped()
    }

    /// Milliseconds of caller audio held for OpenAI.
    pub fn held_ms(&self) -> usize {
        self.core.hold.held_ms()
    }

    /// WebSocket bytes from Twilio (after the 101, TLS removed). Decodes every complete
    /// frame in `buf` and consumes it; a partial frame stays for the next read. Stops early,
    /// leaving frames in `buf`, when the OpenAI send buffer is nearly full
    /// ([`Handled::SendBufferFull`]): backpressure, not loss.
    pub fn handle_downstream(&mut self, buf: &mut RecvBuf, now: Instant) -> Handled {
        loop {
            if self.twilio_dec.peer_closed() {
                // Nothing may follow a close frame; whatever does is ignored.
                buf.consume(buf.len());
                return Handled::Done;
            }
            if buf.is_empty() {
                return Handled::Done;
            }
            if matches!(self.core.up, Upstream::Open) && !self.core.openai_out.has_room_for(buf.len()) {
                return Handled::SendBufferFull;
            }
            let consumed = match self.twilio_dec.decode(buf) {
                Ok(Decoded::Incomplete { .. }) => return Handled::Done,
                Ok(Decoded::Frame { consumed, message }) => {
                    if let Some(message) = message {
                        self.core.on_twilio_message(message, now);
                    }
                    consumed
                }
                Err(e) => {
                    buf.consume(buf.len());
                    self.core.on_twilio_protocol_error(e, now);
                    return Handled::Done;
                }
            };
            buf.consume(consumed);
        }
    }

    /// Bytes from the OpenAI socket: the HTTP 101 answering our upgrade, then WebSocket frames.
    /// Stops early, leaving frames in `buf`, when the Twilio send buffer is nearly full
    /// ([`Handled::SendBufferFull`]): agent audio waits in the receive buffer, none is lost.
    pub fn handle_upstream(&mut self, buf: &mut RecvBuf, now: Instant) -> Handled {
        if buf.is_empty() {
            return Handled::Done;
        }
        self.core.last_upstream_rx = now;
        self.core.ping_outstanding = false;
        if let Upstream::Handshaking { handshake, .. } = &self.core.up {
            match handshake.read_response(buf.data()) {
                Ok(Parse::Partial) => return Handled::Done,
                Ok(Parse::Complete(head_len)) => {
                    buf.consume(head_len);
                    self.core.on_upstream_open(now);
                }
                Err(e) => {
                    buf.consume(buf.len());
                    self.core.on_handshake_failed(e, now);
                    return Handled::Done;
                }
            }
        }
        loop {
            if !matches!(self.core.up, Upstream::Open) || self.openai_dec.peer_closed() {
                // Bytes of a connection we gave up on, or after its close frame.
                buf.consume(buf.len());
                return Handled::Done;
            }
            if buf.is_empty() {
                return Handled::Done;
            }
            if !self.core.twilio_out.has_room_for(buf.len()) {
                return Handled::SendBufferFull;
            }
            let consumed = match self.openai_dec.decode(buf) {
                Ok(Decoded::Incomplete { .. }) => return Handled::Done,
                Ok(Decoded::Frame { consumed, message }) => {
                    if let Some(message) = message {
                        self.core.on_openai_message(message, now);
                    }
                    consumed
                }
                Err(e) => {
                    buf.consume(buf.len());
                    self.core.on_openai_protocol_error(e, now);
                    return Handled::Done;
                }
            };
            buf.consume(consumed);
        }
    }

    /// The TCP+TLS connection asked for by [`Event::OpenUpstream`] is up: the upgrade request
    /// is written to [`Peer::OpenAi`] (anything still pending there was for the previous
    /// connection and is dropped).
    pub fn upstream_connected(&mut self, now: Instant) {
        if matches!(self.core.up, Upstream::Connecting { .. }) {
            self.openai_dec = Decoder::new(Role::Client, Limits::OPENAI);
            self.core.on_upstream_connected(now);
        }
    }

    /// The OpenAI socket failed to connect, or closed.
    pub fn upstream_closed(&mut self, now: Instant) {
        if matches!(self.core.up, Upstream::Connecting { .. } | Upstream::Handshaking { .. } | Upstream::Open)
        {
            self.core.upstream_lost(CloseReason::OpenAiClosed { code: None }, now);
        }
    }

    /// The shell ran tool call `call_id` at the control plane: `output_json` goes to the model
    /// as the function call's output, followed by `response.create` (a failed tool gets
    /// instructions to say so).
    pub fn tool_result(&mut self, call_id: &str, ok: bool, output_json: &str, now: Instant) {
        self.core.on_tool_result(call_id, ok, output_json, now);
    }

    /// The gateway is shutting down: close both sides with 1001.
    pub fn shutdown(&mut self, now: Instant) {
        self.core.close(CloseReason::Shutdown, now);
    }

    /// The time [`Call::poll_timeout`] gave has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each firing moves its own deadline (or ends the call); the cap only guards a bug.
        for _ in 0..64 {
            match self.core.next_timer() {
                Some((at, timer)) if at <= now => self.core.fire(timer, now),
                _ => return,
            }
        }
    }

    /// Bytes to write to `peer`'s socket, if any; report what was written with
    /// [`Call::transmitted`].
    #[must_use]
    pub fn poll_transmit(&self, peer: Peer) -> Option<&[u8]> {
        let pending = match peer {
            Peer::Twilio => self.core.twilio_out.pending(),
            Peer::OpenAi => self.core.openai_out.pending(),
        };
        (!pending.is_empty()).then_some(pending)
    }

    /// `n` bytes of [`Call::poll_transmit`] were written to `peer`'s socket.
    pub fn transmitted(&mut self, peer: Peer, n: usize) {
        match peer {
            Peer::Twilio => {
                self.core.twilio_out.advance(n);
                self.core.flush_agent_hold();
            }
            Peer::OpenAi => {
                self.core.openai_out.advance(n);
                self.core.drain_hold();
            }
        }
    }

    /// When to call [`Call::handle_timeout`] next (`None`: no timer, the call is closed).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.next_timer().map(|(at, _)| at)
    }

    /// The next thing the shell must act on.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }
}

impl Core {
    fn is_closed(&self) -> bool {
        matches!(self.state, CallState::Closed(_))
    }

    fn since_start_ms(&self, now: Instant) -> u64 {
        let from = self.started_at.unwrap_or(self.created);
        u64::try_from(now.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
    }

    // ---- Twilio → gateway ------------------------------------------------------------------

    fn on_twilio_message(&mut self, message: Message<'_>, now: Instant) {
        match message {
            Message::Text(text) => {
                if !self.is_closed() {
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

    fn on_twilio_protocol_error(&mut self, e: WsError, now: Instant) {
        self.close(CloseReason::TwilioProtocol { code: e.close_code() }, now);
    }

    fn on_twilio_text(&mut self, text: &mut [u8], now: Instant) {
        match twilio::parse_event(text) {
            Ok(TwilioEvent::Media(media)) => self.on_caller_audio(media.payload, now),
            Ok(TwilioEvent::Mark { name, .. }) => self.on_mark(name, now),
            Ok(TwilioEvent::Start(start)) => self.on_start(start.stream_sid, now),
            Ok(TwilioEvent::Dtmf { digit, .. }) => self.on_dtmf(digit),
            Ok(TwilioEvent::Stop { .. }) => {
                let reason = self.ending.as_ref().map_or(CloseReason::CallerHungUp, |e| e.reason);
                self.close(reason, now);
            }
            Ok(TwilioEvent::Connected { .. }) => {}
            Err(_) => self.stats.twilio_bad_messages += 1,
        }
    }

    fn on_start(&mut self, stream_sid: &str, now: Instant) {
        if !self.stream_sid.is_empty() {
            self.stats.twilio_bad_messages += 1;
            return;
        }
        self.stream_sid = id_from(stream_sid.as_bytes());
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
    }

    /// The hot path, Twilio → OpenAI: the base64 goes out unchanged, or into the hold ring
    /// (decoded) while OpenAI is not ready.
    #[inline]
    fn on_caller_audio(&mut self, payload: &[u8], now: Instant) {
        self.last_media = now;
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
        let enc = &mut self.openai_enc;
        if !self.openai_out.push(|out| relay::write_append(enc, out, payload)) {
            self.stats.send_overflows += 1;
            return;
        }
        self.stats.media_forwarded += 1;
        if !self.cfg.server_vad {
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
    fn after_append(&mut self, ms: u32, mean_square: u64) {
        let (action, speech_began) = self.commit.on_append(ms, mean_square);
        if speech_began {
            self.barge_in();
        }
        match action {
            CommitAction::None => {}
            CommitAction::Commit => self.send_commit(),
            CommitAction::CommitAndRespond => {
                self.send_commit();
                self.request_response(Reply::Plain);
            }
            CommitAction::Clear => {
                self.send_openai_raw(openai::CLEAR);
            }
        }
    }

    fn send_commit(&mut self) {
        if self.send_openai_raw(openai::COMMIT) {
            self.stats.commits += 1;
        }
    }

    #[inline]
    fn on_mark(&mut self, name: &[u8], now: Instant) {
        match MarkLabel::parse(name) {
            Some(label) if self.play.on_mark(label) => {}
            _ => self.stats.marks_ignored += 1,
        }
        if self.ending.is_some() {
            self.check_goodbye(now);
        }
    }

    fn on_dtmf(&mut self, digit: &str) {
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
        if self.send_openai_json(|w| openai::write_user_text(w, text)) {
            self.request_response(Reply::Plain);
        }
    }

    // ---- OpenAI → gateway ------------------------------------------------------------------

    fn on_handshake_failed(&mut self, e: HandshakeError, now: Instant) {
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

    fn on_openai_protocol_error(&mut self, e: WsError, now: Instant) {
        let code = e.close_code();
        if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
            self.send_openai(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.upstream_lost(CloseReason::OpenAiProtocol { code }, now);
    }

    fn on_openai_message(&mut self, message: Message<'_>, now: Instant) {
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

    fn on_openai_protocol_error_code(&mut self, code: u16, now: Instant) {
        if !self.openai_close_sent {
            self.send_openai(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.upstream_lost(CloseReason::OpenAiProtocol { code }, now);
    }

    fn on_openai_text(&mut self, text: &mut [u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        let event = match openai::parse_server_event(text) {
            Ok(event) => event,
            Err(_) => {
                self.stats.openai_bad_messages += 1;
                return;
            }
        };
        match event {
            ServerEvent::AudioDelta(delta) => self.on_agent_audio(delta),
            ServerEvent::SpeechStarted { .. } => self.barge_in(),
            ServerEvent::ResponseCreated { response_id } => {
                // The first response is the greeting: from now on a new session must not greet.
                self.greeted = true;
                self.responses.active = true;
                self.responses.in_flight = true;
                self.responses.active_id = id_from(response_id.as_bytes());
            }
            ServerEvent::ResponseDone { response_id, usage, .. } => {
                self.responses.active = false;
                self.responses.in_flight = false;
                if let Some(u) = usage {
                    self.events.push_back(Event::Report(CallEvent::Usage {
                        response_id: response_id.to_owned(),
                        input_tokens: u.input_tokens,
                        output_tokens: u.output_tokens,
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
                if e.code == Some("session_expired") {
                    // OpenAI closes with 1001 next; start the new session now.
                    if !self.openai_close_sent {
                        self.send_openai(|enc, out| enc.close(out, close_code::NORMAL, ""));
                        self.openai_close_sent = true;
                    }
                    self.upstream_lost(CloseReason::OpenAiClosed { code: Some(close_code::GOING_AWAY) }, now);
                }
            }
            _ => {}
        }
    }

    /// The hot path, OpenAI → Twilio: the delta goes out unchanged (split at 240 ms), each
    /// piece followed by a mark.
    #[inline]
    fn on_agent_audio(&mut self, delta: AudioDelta<'_>) {
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
    fn flush_agent_hold(&mut self) {
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
    /// cancel the response if one is active.
    fn barge_in(&mut self) {
        if self.is_closed() {
            return;
        }
        let unplayed_sent = self.play.unplayed();
        let unplayed = unplayed_sent || !self.agent_hold.is_empty();
        let active = self.responses.active;
        if !unplayed && !active {
            return;
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
            let at = u64::from(self.play.truncate_at_ms());
            let item = self.play.item_id.clone();
            if let Ok(item) = std::str::from_utf8(&item)
                && !item.is_empty()
            {
                self.send_openai_json(|w| openai::write_truncate(w, item, at));
            }
            self.agent_hold.clear();
            self.play.flushed = true;
            self.play.dropped_response = self.play.response_id.clone();
        }
        if active {
            self.play.dropped_response = self.responses.active_id.clone();
            self.send_openai_raw(openai::RESPONSE_CANCEL);
        }
    }

    fn on_function_call(&mut self, call_id: &str, name: &str, arguments: &str, now: Instant) {
        match name {
            END_CALL => self.begin_ending(
                CloseReason::AgentEndedCall,
                Some((call_id.to_owned(), arguments.to_owned())),
                now,
            ),
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
            _ => {
                // Not a tool we offered: tell the model at once rather than leave it waiting.
                let output = r#"{"error":"unknown_tool"}"#;
                if self.send_openai_json(|w| openai::write_function_output(w, call_id, output)) {
                    self.request_response(Reply::Plain);
                }
            }
        }
    }

    fn on_tool_result(&mut self, call_id: &str, ok: bool, output: &str, now: Instant) {
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
        if self.send_openai_json(|w| openai::write_function_output(w, call_id, output)) {
            self.request_response(if ok { Reply::Plain } else { Reply::ToolFailed });
        }
    }

    fn record_transcript(&mut self, speaker: Speaker, text: &str, now: Instant) {
        let at_ms = self.since_start_ms(now);
        self.events.push_back(Event::Report(CallEvent::Transcript { speaker, text: text.to_owned(), at_ms }));
        if self.transcript.len() == TRANSCRIPT_LINES {
            self.transcript.pop_front();
        }
        let kept: String = text.chars().take(TRANSCRIPT_LINE_CHARS).collect();
        self.transcript.push_back((speaker, kept));
    }

    // ---- the OpenAI session ----------------------------------------------------------------

    fn on_upstream_connected(&mut self, now: Instant) {
        self.openai_out.reset();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        self.openai_enc = Encoder::client_with_seed(seed);
        self.openai_close_sent = false;
        let mut key = [0u8; 16];
        self.rng.fill_bytes(&mut key);
        let mut handshake = None;
        let Core { cfg, auth_header, openai_out, .. } = self;
        let headers = [("Authorization", auth_header.as_str())];
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
    fn on_upstream_open(&mut self, now: Instant) {
        self.up = Upstream::Open;
        self.last_upstream_rx = now;
        self.ping_outstanding = false;
        let instructions = self.session_instructions();
        let Core { cfg, ctx, openai_out, openai_enc, stats, .. } = self;
        let session = SessionConfig {
            model: &cfg.model,
            instructions: &instructions,
            voice: &ctx.voice,
            turn_detection: if cfg.server_vad {
                TurnDetection::ServerVad {
                    threshold: 0.5,
                    prefix_padding_ms: 300,
                    silence_duration_ms: 500,
                    create_response: true,
                    interrupt_response: true,
                }
            } else {
                TurnDetection::Disabled
            },
            transcription: cfg.transcription_model.as_deref().map(|m| (m, ctx.language.as_str())),
            tools: &PHONE_TOOLS,
        };
        if !openai_out
            .push(|out| openai_enc.frame_with(out, TEXT, |w| openai::write_session_update(w, &session)))
        {
            stats.send_overflows += 1;
        }
        self.sessions += 1;
        self.commit.reset();
        self.drain_hold();
        if !self.greeted {
            // Also after a drop that came before the greeting started.
            self.request_response(Reply::Plain);
        }
        if matches!(self.state, CallState::Started) {
            self.state = CallState::Live;
        }
    }

    /// The context's instructions; a resumed session also gets the last exchanges.
    fn session_instructions(&self) -> String {
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
    fn drain_hold(&mut self) {
        const B64: usize = DRAIN_BATCH / 3 * 4;
        let mut ulaw = [0u8; DRAIN_BATCH];
        let mut b64 = [0u8; B64];
        while matches!(self.up, Upstream::Open) && !self.hold.is_empty() {
            if self.openai_out.room() < B64 + 64 {
                return;
            }
            let n = self.hold.pop_into(&mut ulaw);
            let encoded = base64_simd::STANDARD.encode(&ulaw[..n], base64_simd::Out::from_slice(&mut b64));
            let enc = &mut self.openai_enc;
            if !self.openai_out.push(|out| relay::write_append(enc, out, encoded)) {
                self.stats.send_overflows += 1;
                continue;
            }
            if !self.cfg.server_vad {
                let ms = (n / audio::BYTES_PER_MS) as u32;
                self.after_append(ms, audio::mean_square(&ulaw[..n]));
            }
        }
    }

    /// Asks for a response now, or once the active one is done (only one may be active).
    fn request_response(&mut self, reply: Reply) {
        if !matches!(self.up, Upstream::Open) {
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
    fn upstream_lost(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.up = Upstream::Down;
        self.responses = Responses::default();
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

    // ---- ending ----------------------------------------------------------------------------

    fn begin_ending(&mut self, reason: CloseReason, tool: Option<(String, String)>, now: Instant) {
        if self.ending.is_some() || self.is_closed() {
            return;
        }
        self.state = CallState::Draining;
        let (tool_call_id, arguments) = tool.unzip();
        self.ending = Some(Ending {
            reason,
            tool_call_id,
            arguments,
            goodbye_deadline: now + self.cfg.goodbye_timeout,
            drain_deadline: None,
        });
        if reason == CloseReason::AgentEndedCall {
            self.check_goodbye(now);
        } else {
            self.emit_hang_up(now);
        }
    }

    /// Hangs up once the goodbye has been fully generated and played.
    fn check_goodbye(&mut self, now: Instant) {
        let waiting = self.ending.as_ref().is_some_and(|e| e.drain_deadline.is_none());
        if waiting && !self.responses.active && !self.play.unplayed() && self.agent_hold.is_empty() {
            self.emit_hang_up(now);
        }
    }

    fn emit_hang_up(&mut self, now: Instant) {
        let drain = now + self.cfg.drain_timeout;
        if let Some(e) = self.ending.as_mut()
            && e.drain_deadline.is_none()
        {
            e.drain_deadline = Some(drain);
            self.events.push_back(Event::HangUp {
                tool_call_id: e.tool_call_id.take(),
                arguments: e.arguments.take(),
            });
        }
    }

    /// Ends the call: close frames to both sides, the end reported, [`Event::Closed`].
    fn close(&mut self, reason: CloseReason, now: Instant) {
        if self.is_closed() {
            return;
        }
        let code = match reason {
            CloseReason::TwilioProtocol { code } => code,
            CloseReason::Shutdown => close_code::GOING_AWAY,
            _ => close_code::NORMAL,
        };
        if !self.twilio_close_sent {
            self.send_twilio(|enc, out| enc.close(out, code, reason.code()));
            self.twilio_close_sent = true;
        }
        if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
            let code =
                if reason == CloseReason::Shutdown { close_code::GOING_AWAY } else { close_code::NORMAL };
            self.send_openai(|enc, out| enc.close(out, code, ""));
            self.openai_close_sent = true;
        }
        self.up = Upstream::Down;
        self.hold.clear();
        self.agent_hold.clear();
        self.tools.clear();
        self.state = CallState::Closed(reason);
        self.events.push_back(Event::Report(CallEvent::Ended {
            side: reason.side(),
            reason: reason.code().to_owned(),
            duration_ms: self.since_start_ms(now),
        }));
        self.events.push_back(Event::Closed { reason });
    }

    // ---- timers ----------------------------------------------------------------------------

    fn next_timer(&self) -> Option<(Instant, Timer)> {
        if self.is_closed() {
            return None;
        }
        let mut best: Option<(Instant, Timer)> = None;
        let mut consider = |at: Instant, timer: Timer| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, timer));
            }
        };
        if self.stream_sid.is_empty() {
            consider(self.created + self.cfg.start_timeout, Timer::NoStart);
        } else {
            consider(self.last_media + self.cfg.media_timeout, Timer::NoMedia);
        }
        if self.ending.is_none() {
            consider(self.created + self.cfg.max_call, Timer::MaxCall);
        }
        let silence = self.cfg.openai_silence_timeout;
        match &self.up {
            Upstream::Connecting { since } | Upstream::Handshaking { since, .. } => {
                consider(*since + silence, Timer::OpenAiSilent);
            }
            Upstream::Open => {
                if !self.ping_outstanding {
                    consider(self.last_upstream_rx + self.cfg.openai_ping_after, Timer::OpenAiPing);
                }
                consider(self.last_upstream_rx + silence, Timer::OpenAiSilent);
            }
            Upstream::Backoff { until } => consider(*until, Timer::Reconnect),
            Upstream::Down => {}
        }
        for (i, tool) in self.tools.iter().enumerate() {
            if !tool.fallback_sent {
                consider(tool.deadline, Timer::Tool(i));
            }
        }
        if let Some(e) = &self.ending {
            match e.drain_deadline {
                None => consider(e.goodbye_deadline, Timer::Goodbye),
                Some(at) => consider(at, Timer::Drain),
            }
        }
        best
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::NoStart => self.close(CloseReason::NoStart, now),
            Timer::NoMedia => self.close(CloseReason::TwilioSilent, now),
            Timer::MaxCall => self.begin_ending(CloseReason::MaxDuration, None, now),
            Timer::OpenAiPing => {
                self.ping_outstanding = true;
                self.send_openai(|enc, out| enc.ping(out, PING_PAYLOAD));
            }
            Timer::OpenAiSilent => {
                if matches!(self.up, Upstream::Open) && !self.openai_close_sent {
                    self.send_openai(|enc, out| enc.close(out, close_code::GOING_AWAY, ""));
                    self.openai_close_sent = true;
                }
                self.upstream_lost(CloseReason::OpenAiSilent, now);
            }
            Timer::Tool(i) => {
                self.tools[i].fallback_sent = true;
                self.stats.tool_fallbacks += 1;
                self.request_response(Reply::ToolSlow);
            }
            Timer::Reconnect => {
                self.up = Upstream::Connecting { since: now };
                self.events.push_back(Event::OpenUpstream);
            }
            Timer::Goodbye => self.emit_hang_up(now),
            Timer::Drain => {
                let reason = self.ending.as_ref().map_or(CloseReason::Shutdown, |e| e.reason);
                self.close(reason, now);
            }
        }
    }

    // ---- writing frames --------------------------------------------------------------------

    /// Writes a frame for Twilio (not after our close frame). Counts a full buffer.
    fn send_twilio(
        &mut self,
        write: impl FnOnce(&mut Encoder, &mut [u8]) -> Result<usize, BufferFull>,
    ) -> bool {
        if self.twilio_close_sent {
            return false;
        }
        let enc = &mut self.twilio_enc;
        let ok = self.twilio_out.push(|out| write(enc, out));
        if !ok {
            self.stats.send_overflows += 1;
        }
        ok
    }

    /// Writes a frame for OpenAI, only on an open session (not after our close frame).
    fn send_openai(
        &mut self,
        write: impl FnOnce(&mut Encoder, &mut [u8]) -> Result<usize, BufferFull>,
    ) -> bool {
        if !matches!(self.up, Upstream::Open) || self.openai_close_sent {
            return false;
        }
        let enc = &mut self.openai_enc;
        let ok = self.openai_out.push(|out| write(enc, out));
        if !ok {
            self.stats.send_overflows += 1;
        }
        ok
    }

    fn send_openai_raw(&mut self, json: &[u8]) -> bool {
        self.send_openai(|enc, out| enc.frame_parts(out, TEXT, true, &[json]))
    }

    fn send_openai_json(
        &mut self,
        write: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>,
    ) -> bool {
        self.send_openai(|enc, out| enc.frame_with(out, TEXT, write))
    }
}

/// Decodes base64 μ-law in pieces on the stack (no allocation, any length) and hands each
/// piece to `f`. `None` if the base64 is malformed.
#[inline]
fn for_each_decoded(b64: &[u8], mut f: impl FnMut(&[u8])) -> Option<()> {
    const PIECE: usize = 1024;
    let mut out = [0u8; PIECE / 4 * 3];
    for piece in b64.chunks(PIECE) {
        let len = audio::base64_decoded_len(piece)?;
        if len > out.len() {
            return None;
        }
        let decoded =
            base64_simd::STANDARD.decode(piece, base64_simd::Out::from_slice(&mut out[..len])).ok()?;
        f(decoded);
    }
    Some(())
}
