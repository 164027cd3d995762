//! What a [`super::Call`] tells the shell: its state, why it ended (naming the side at fault),
//! the events the shell acts on, and counters in place of log lines (the core never logs).

pub use contract::internal_api::{CallEvent, Side, Speaker};

/// Which socket a transmit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The Twilio Media Streams WebSocket (we are the server).
    Twilio,
    /// The OpenAI WebSocket, Realtime or GPT-Live (we are the client).
    OpenAi,
}

/// Where the call is in its life (architecture.md "The call state machine").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// The Twilio upgrade was authorised; OpenAI is connecting (pre-warm), `start` not seen.
    Upgraded,
    /// Twilio `start` seen (streamSid known); the OpenAI session is not configured yet.
    Started,
    /// Audio flows both ways (an OpenAI reconnect keeps the call `Live`, caller audio held).
    Live,
    /// Ending: waiting for the goodbye to play and for Twilio to hang up.
    Draining,
    /// Over; close frames may still be waiting in [`super::Call::poll_transmit`].
    Closed(CloseReason),
}

/// Why a call ended. Each reason names the side at fault ([`CloseReason::side`]) and has a
/// stable machine code for the control plane ([`CloseReason::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Twilio sent `stop`: the caller hung up (or the call was ended elsewhere).
    CallerHungUp,
    /// Twilio closed the WebSocket without a `stop`.
    TwilioClosed {
        /// Close code Twilio sent, if any.
        code: Option<u16>,
    },
    /// Twilio's bytes broke the WebSocket protocol (closed with `code`).
    TwilioProtocol {
        /// The close code we sent.
        code: u16,
    },
    /// No `start` within [`super::CallConfig::start_timeout`].
    NoStart,
    /// No caller audio for [`super::CallConfig::media_timeout`].
    TwilioSilent,
    /// The agent called `end_call` (goodbye played, hang-up requested).
    AgentEndedCall,
    /// The agent transferred the call to a person (`transfer_to_human`; the control plane
    /// moved it with Twilio's `<Dial>`).
    Transferred,
    /// OpenAI closed the WebSocket and no reconnect was possible.
    OpenAiClosed {
        /// Close code OpenAI sent, if any.
        code: Option<u16>,
    },
    /// OpenAI refused the WebSocket upgrade.
    OpenAiHandshake {
        /// The HTTP status (0 when the answer was not HTTP or not a WebSocket accept).
        status: u16,
    },
    /// OpenAI's bytes broke the WebSocket protocol and no reconnect was possible.
    OpenAiProtocol {
        /// The close code we sent.
        code: u16,
    },
    /// Nothing from OpenAI for [`super::CallConfig::openai_silence_timeout`], no reconnect left.
    OpenAiSilent,
    /// GPT-Live closed the session for its content (`session.closed` reason `content`).
    OpenAiContent,
    /// The call reached [`super::CallConfig::max_call`].
    MaxDuration,
    /// The gateway is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The side at fault (or that decided).
    pub fn side(&self) -> Side {
        match self {
            CloseReason::CallerHungUp
            | CloseReason::TwilioClosed { .. }
            | CloseReason::TwilioProtocol { .. }
            | CloseReason::NoStart
            | CloseReason::TwilioSilent => Side::Twilio,
            CloseReason::OpenAiClosed { .. }
            | CloseReason::OpenAiHandshake { .. }
            | CloseReason::OpenAiProtocol { .. }
            | CloseReason::OpenAiSilent
            | CloseReason::OpenAiContent => Side::Openai,
            CloseReason::AgentEndedCall | CloseReason::Transferred => Side::ControlPlane,
            CloseReason::MaxDuration | CloseReason::Shutdown => Side::Gateway,
        }
    }

    /// Stable machine-readable code (`caller_hung_up`, `openai_closed`, `max_duration`, …).
    pub fn code(&self) -> &'static str {
        match self {
            CloseReason::CallerHungUp => "caller_hung_up",
            CloseReason::TwilioClosed { .. } => "twilio_closed",
            CloseReason::TwilioProtocol { .. } => "twilio_protocol_error",
            CloseReason::NoStart => "no_start",
            CloseReason::TwilioSilent => "no_media",
            CloseReason::AgentEndedCall => "agent_ended_call",
            CloseReason::Transferred => "transferred",
            CloseReason::OpenAiClosed { .. } => "openai_closed",
            CloseReason::OpenAiHandshake { .. } => "openai_handshake_refused",
            CloseReason::OpenAiProtocol { .. } => "openai_protocol_error",
            CloseReason::OpenAiSilent => "openai_silent",
            CloseReason::OpenAiContent => "openai_content",
            CloseReason::MaxDuration => "max_duration",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// Something the shell must act on, from [`super::Call::poll_event`]. Never produced by the
/// frame path's hot loop (media in, deltas in).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Open a (new) TCP+TLS connection to OpenAI, then call
    /// [`super::Call::upstream_connected`] (or [`super::Call::upstream_closed`] on failure).
    /// On a reconnect, flush what [`super::Call::poll_transmit`] still holds for the previous
    /// connection (its close frame), then drop that socket: its bytes are ignored from now on.
    OpenUpstream,
    /// Ask the control plane whether answering-machine detection runs on this call and what it
    /// found (`contract::internal_api::amd_path`, waiting at most `wait_ms` for a result), then
    /// answer with [`super::Call::amd_result`]. At most once per call, right after
    /// [`Event::OpenUpstream`].
    AskAmd {
        /// How long the control plane may hold the request.
        wait_ms: u32,
    },
    /// Run a tool at the control plane, then answer with [`super::Call::tool_result`].
    ToolCall {
        /// Realtime `call_id` (answer with it).
        call_id: String,
        /// Tool name (`save_lead`).
        name: String,
        /// The model's arguments, a JSON string.
        arguments: String,
    },
    /// End the phone call now (the goodbye has played): run `end_call` at the control plane
    /// with this tool call id, or hang up through Twilio when `None` (max duration). Twilio's
    /// `stop` then closes the call; if it does not come within
    /// [`super::CallConfig::drain_timeout`] the call closes itself.
    HangUp {
        /// The `end_call` tool call id, when the agent asked.
        tool_call_id: Option<String>,
        /// The `end_call` arguments, when the agent asked.
        arguments: Option<String>,
    },
    /// For the control plane's event batch: transcripts, usage, the end.
    Report(CallEvent),
    /// OpenAI reported an error (for the shell's log; the call goes on unless it says
    /// otherwise, e.g. `session_expired` leads to a reconnect).
    OpenAiError {
        /// `error.code`.
        code: Option<String>,
        /// `error.message`.
        message: String,
    },
    /// Twilio sent an event naming another stream than this call's (emitted for the first
    /// one only, for the log; [`CallStats::twilio_foreign_stream`] counts them all).
    ForeignStream {
        /// The stream the event named.
        stream_sid: String,
    },
    /// The call is over. Flush [`super::Call::poll_transmit`] (close frames), then close both
    /// sockets.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Counters the shell exports as metrics (instead of the core logging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Caller media frames forwarded to OpenAI as appends (directly).
    pub media_forwarded: u64,
    /// Caller media frames held while OpenAI was not ready.
    pub media_held: u64,
    /// Warm transfers the control plane made.
    pub transfers: u64,
    /// Warm transfers the control plane refused (the conversation went on).
    pub transfers_refused: u64,
    /// Caller media frames not sent because a machine answered (answering-machine detection).
    pub media_not_sent: u64,
    /// Agent audio chunks sent to Twilio (each followed by a mark).
    pub agent_chunks_sent: u64,
    /// Agent deltas dropped after a barge-in.
    pub deltas_dropped: u64,
    /// Agent audio bytes (μ-law) dropped because the pre-`start` hold was full.
    pub agent_hold_dropped_bytes: u64,
    /// Barge-ins handled.
    pub barge_ins: u64,
    /// Marks echoed after a `clear` (flushed, not played) or not ours.
    pub marks_ignored: u64,
    /// Frames not written because a send buffer was full (the shell is not draining).
    pub send_overflows: u64,
    /// Twilio messages that could not be parsed, or a second `start` (ignored).
    pub twilio_bad_messages: u64,
    /// Twilio events naming another stream, call or account than this call's `start`
    /// (ignored).
    pub twilio_foreign_stream: u64,
    /// Twilio events other than `connected` before `start` (ignored).
    pub twilio_before_start: u64,
    /// Gaps in the caller's audio (lost frames, from `media.timestamp`) filled with silence.
    pub gaps_filled: u64,
    /// Silence inserted for them (ms).
    pub gap_fill_ms: u64,
    /// Gaps longer than [`super::CallConfig::max_gap_fill`], left unfilled.
    pub gaps_unfillable: u64,
    /// Caller frames dropped as duplicates or arriving after a later one.
    pub media_dropped_late: u64,
    /// Events received and not acted on, by kind (a bounded label set).
    pub ignored: super::IgnoredCounts,
    /// OpenAI messages that could not be parsed (ignored).
    pub openai_bad_messages: u64,
    /// Commits sent (server VAD off).
    pub commits: u64,
    /// OpenAI reconnects asked for.
    pub reconnects: u64,
    /// Tool fallbacks spoken (slow tools).
    pub tool_fallbacks: u64,
    /// GPT-Live: silent output chunks not sent to Twilio (it had nothing left to play).
    pub live_silence_held_back: u64,
}
