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
//!     call.amd_result(outcome, now);                       // an AskAmd event was answered
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
//! if a response is active (`playback.rs` keeps the accounts).
//!
//! # Upstream loss
//! An OpenAI close, protocol error, silence or `session_expired` asks the shell for a new
//! connection ([`Event::OpenUpstream`]) while the caller stays on the line and their audio is
//! held; the new session's instructions end with the last exchanges of the call.
//!
//! # Where things are
//! This file: the public API and the call's state. Then, one concern per file:
//! `downstream.rs` (Twilio → gateway), `upstream.rs` (OpenAI → gateway, barge-in, tools),
//! `session.rs` (the OpenAI connection and session, reconnects), `amd.rs` (the greeting held
//! while answering-machine detection runs), `ending.rs` (draining and
//! closing), `timers.rs` (every deadline), `playback.rs` (what the caller has heard),
//! `commit.rs` (turn taking without server VAD), `outbox.rs` (send buffers), `config.rs`,
//! `event.rs` (what the shell is told).

mod amd;
mod commit;
mod config;
mod downstream;
mod ending;
mod event;
mod held_audio;
mod ignored;
mod live;
mod media_clock;
mod outbox;
mod playback;
mod session;
mod timers;
mod upstream;

use std::collections::VecDeque;
use std::time::Instant;

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

pub use self::amd::AmdOutcome;
pub use self::config::{
    CallConfig, DEFAULT_DELEGATION_MODEL, DEFAULT_MODEL, END_CALL, Eagerness, PHONE_TOOLS,
    PHONE_TOOLS_WITH_TRANSFER, SAVE_LEAD, TRANSFER, TurnDetection as TurnTaking,
};
pub use self::event::{CallEvent, CallState, CallStats, CloseReason, Event, Peer, Side, Speaker};
pub use self::ignored::{IGNORED_LABELS, IgnoredCounts};
pub use contract::internal_api::{CallContext, TranscriptLine};
pub use contract::voice_api::VoiceApi;

use self::amd::AmdGate;
use self::commit::{CommitAction, CommitPolicy};
use self::ending::twilio_close_code;
use self::held_audio::HeldAudio;
pub use self::held_audio::{HOLD_MS, HOLD_SLOTS};
use self::live::{LiveState, write_caller_append};
use self::media_clock::{MediaClock, Placement};
use self::outbox::Outbox;
use self::playback::{Accept, AgentHold, Id, Playback, id_from};
use crate::core::audio::{self, DropStats};
use crate::core::buf::{BufferFull, RecvBuf, SliceWriter};
use crate::core::openai::{self, AudioDelta, ServerEvent, SessionConfig, TurnDetection};
use crate::core::relay;
use crate::core::twilio::{self, MarkLabel, TwilioEvent};
use crate::core::ws::upgrade::{self, ClientHandshake, HandshakeError, Parse};
use crate::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, WsError, close_code};

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
pub struct Call {
    twilio_dec: Decoder,
    openai_dec: Decoder,
    core: Core,
}

impl std::fmt::Debug for Call {
    /// A summary for logs: state, stream, upstream, what is pending, counters (never buffers
    /// or secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.core;
        f.debug_struct("Call")
            .field("call_id", &c.ctx.call_id)
            .field("state", &c.state)
            .field("stream_sid", &self.stream_sid())
            .field("upstream", &c.up)
            .field("held_ms", &c.hold.held_ms())
            .field("pending_twilio", &c.twilio_out.pending().len())
            .field("pending_openai", &c.openai_out.pending().len())
            .field("auth", &c.auth_header)
            .field("stats", &c.stats)
            .finish_non_exhaustive()
    }
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
    /// GPT-Live: the 101 came; `session.start` is `sent` (or waits for Twilio's `start`),
    /// `session.started` not yet. Nothing but `session.start`/`session.close` goes out.
    Starting { since: Instant, sent: bool },
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
    /// The active response is being cancelled (by our `response.cancel`, or by OpenAI itself
    /// on `speech_started`): its `response.done` is on the way, another cancel would be refused.
    cancelling: bool,
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
    /// When the ending began.
    began: Instant,
    /// The `end_call` tool call (handed to the shell with the hang-up request), or the
    /// `transfer_to_human` one (run by the shell once the announcement has played).
    tool_call_id: Option<String>,
    arguments: Option<String>,
    /// A transfer: the control plane said the call was handed over (Twilio's `stop` follows).
    handed_over: bool,
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
    /// GPT-Live: the agent may have finished its goodbye (quiet long enough).
    LiveQuiet,
    /// GPT-Live: `session.closed` did not come in time.
    LiveCloseWait,
    /// Answering-machine detection took longer than the gateway waits: greet.
    AmdHold,
}

/// A secret that `Debug` does not print.
struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything but the two decoders (which lend their messages while the core reacts).
struct Core {
    cfg: CallConfig,
    ctx: CallContext,
    auth_header: Redacted,
    state: CallState,
    created: Instant,
    started_at: Option<Instant>,
    stream_sid: Id,
    call_sid: Id,
    /// The `accountSid` of `start` (a `stop` must name it too).
    account_sid: Id,
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

    hold: HeldAudio,
    /// The caller stream's timeline: lost frames filled with silence, late ones dropped.
    media_clock: MediaClock,
    agent_hold: AgentHold,
    play: Playback,
    commit: CommitPolicy,
    responses: Responses,
    /// The greeting response was created (a resumed session must not greet again).
    greeted: bool,
    /// The greeting's response id.
    greeting_id: Id,
    tools: Vec<PendingTool>,
    ending: Option<Ending>,
    transcript: VecDeque<(Speaker, String)>,
    /// GPT-Live's own state (unused on Realtime).
    live: LiveState,
    /// The greeting held while answering-machine detection runs (`amd.rs`).
    amd: AmdGate,
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
        let amd = AmdGate::new(&config, now);
        if !config.amd_hold.is_zero() {
            let wait_ms = u32::try_from(config.amd_hold.as_millis()).unwrap_or(u32::MAX);
            events.push_back(Event::AskAmd { wait_ms });
        }
        let core = Core {
            auth_header: Redacted(format!("Bearer {}", config.openai_api_key)),
            state: CallState::Upgraded,
            created: now,
            started_at: None,
            stream_sid: Id::new(),
            call_sid: Id::new(),
            account_sid: Id::new(),
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
            hold: HeldAudio::default(),
            media_clock: MediaClock::default(),
            agent_hold: AgentHold::with_capacity(AGENT_HOLD_BYTES),
            play: Playback::default(),
            commit,
            responses: Responses::default(),
            greeted: false,
            greeting_id: Id::new(),
            tools: Vec::with_capacity(4),
            ending: None,
            transcript: VecDeque::with_capacity(TRANSCRIPT_LINES),
            live: LiveState::new(now),
            amd,
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

    /// The Twilio call id (`CA…`) from `start`, once it has arrived (for the shell's logs).
    pub fn call_sid(&self) -> Option<&str> {
        std::str::from_utf8(&self.core.call_sid).ok().filter(|s| !s.is_empty())
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
        let c = &self.core.media_clock;
        CallStats {
            gaps_filled: c.gaps_filled,
            gap_fill_ms: c.filled_ms,
            gaps_unfillable: c.gaps_unfillable,
            media_dropped_late: c.dropped_late,
            ..self.core.stats
        }
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
            if !matches!(self.core.up, Upstream::Open | Upstream::Starting { .. })
                || self.openai_dec.peer_closed()
            {
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
        if matches!(
            self.core.up,
            Upstream::Connecting { .. }
                | Upstream::Handshaking { .. }
                | Upstream::Starting { .. }
                | Upstream::Open
        ) {
            self.core.upstream_lost(CloseReason::OpenAiClosed { code: None }, now);
        }
    }

    /// The shell ran tool call `call_id` at the control plane: `output_json` goes to the model
    /// as the function call's output, followed by `response.create` (a failed tool gets
    /// instructions to say so).
    pub fn tool_result(&mut self, call_id: &str, ok: bool, output_json: &str, now: Instant) {
        self.core.on_tool_result(call_id, ok, output_json, now);
    }

    /// The control plane answered [`Event::AskAmd`] (or could not be asked:
    /// [`AmdOutcome::Undecided`]): the greeting is released, or held for good on a machine.
    pub fn amd_result(&mut self, outcome: AmdOutcome, now: Instant) {
        self.core.on_amd_outcome(outcome, now);
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

    /// The tools offered to the model: the transfer only when the context allows it.
    fn phone_tools(&self) -> &'static [openai::ToolDef<'static>] {
        if self.ctx.transfer { &PHONE_TOOLS_WITH_TRANSFER } else { &PHONE_TOOLS }
    }

    // ---- writing frames --------------------------------------------------------------------

    /// Writes a frame for Twilio (not after our close frame). Counts a full buffer.
    fn send_twilio(
        &mut self,
        mut write: impl FnMut(&mut Encoder, &mut [u8]) -> Result<usize, BufferFull>,
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
        mut write: impl FnMut(&mut Encoder, &mut [u8]) -> Result<usize, BufferFull>,
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

    /// Writes a frame for OpenAI on any connection past the 101 (`session.start` and
    /// `session.close` go out before `session.started`).
    fn send_openai_any(
        &mut self,
        mut write: impl FnMut(&mut Encoder, &mut [u8]) -> Result<usize, BufferFull>,
    ) -> bool {
        if !matches!(self.up, Upstream::Open | Upstream::Starting { .. }) || self.openai_close_sent {
            return false;
        }
        let enc = &mut self.openai_enc;
        let ok = self.openai_out.push(|out| write(enc, out));
        if !ok {
            self.stats.send_overflows += 1;
        }
        ok
    }

    fn send_openai_raw_any(&mut self, json: &[u8]) -> bool {
        self.send_openai_any(|enc, out| enc.frame_parts(out, TEXT, true, &[json]))
    }

    /// Whether the gateway decides turns itself (Realtime with turn detection off).
    #[inline]
    fn gateway_commits(&self) -> bool {
        self.cfg.api == VoiceApi::Realtime && !self.cfg.turn_detection.by_server()
    }

    fn send_openai_raw(&mut self, json: &[u8]) -> bool {
        self.send_openai(|enc, out| enc.frame_parts(out, TEXT, true, &[json]))
    }

    fn send_openai_json(
        &mut self,
        mut write: impl FnMut(&mut SliceWriter<'_>) -> Result<(), BufferFull>,
    ) -> bool {
        self.send_openai(|enc, out| enc.frame_with(out, TEXT, &mut write))
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
