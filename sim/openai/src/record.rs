//! What the simulator saw and did, kept for other crates' test assertions: every WebSocket
//! handshake, every session's received and sent events (with the time on the simulator's
//! clock), how each session ended, and every `client_secrets` request.
//!
//! Records are snapshots: [`crate::SimHandle::sessions`] clones them; to wait for something to
//! happen without sleeping use [`crate::SimHandle::wait_until`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// One event as it crossed the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Time since the session was accepted, on tokio's clock (virtual under a paused clock).
    pub at: Duration,
    /// The event `type` (`"?"` when the client sent something that is not an event).
    pub kind: String,
    /// The exact text of the frame.
    pub text: Arc<str>,
}

impl RecordedEvent {
    /// The frame parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client sent a close frame (its code, if any).
    ClientClosed(Option<u16>),
    /// The client's connection ended without a close frame, or failed.
    ClientGone(String),
    /// The simulator closed with this code and reason (faults, session cap, beta header).
    ServerClosed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The simulator dropped the TCP connection without a close frame (`DropAfter`,
    /// `DropMidMessage`).
    Dropped,
    /// The simulator shut down (close 1001 sent).
    Shutdown,
}

/// How a session authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The configured API key.
    ApiKey,
    /// An ephemeral key issued by `client_secrets`.
    Ephemeral(String),
}

/// One session (Realtime, or GPT-Live when [`SessionRecord::live`] is set).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Order of acceptance, from 0.
    pub index: usize,
    /// `sess_…`.
    pub id: String,
    /// The `model` query parameter (or the ephemeral key's model).
    pub model: String,
    /// How the client authenticated.
    pub auth: Auth,
    /// Whether the request carried `OpenAI-Beta: realtime=v1`.
    pub beta_header: bool,
    /// `/v1/realtime/calls` only: the call id its `Location` named (`rtc_…`); `None` for a
    /// WebSocket session.
    pub call_id: Option<String>,
    /// Client events in order (empty when recording is off).
    pub received: Vec<RecordedEvent>,
    /// Server events in order (empty when recording is off).
    pub sent: Vec<RecordedEvent>,
    /// `input_audio_buffer.append` events received (counted even when recording is off).
    pub appends: u64,
    /// Audio bytes appended (decoded).
    pub appended_bytes: u64,
    /// `response.output_audio.delta` events sent.
    pub audio_deltas_sent: u64,
    /// Whether a `StallAfter` fault has stalled the session.
    pub stalled: bool,
    /// Events not sent because the session was stalled.
    pub withheld: u64,
    /// Server events that failed the server-events schema (should stay empty).
    pub schema_violations: Vec<String>,
    /// WebRTC: Opus frames received on the audio track (0 over WebSocket).
    pub media_frames_in: u64,
    /// WebRTC: Opus frames sent on the audio track, silence included (0 over WebSocket).
    pub media_frames_out: u64,
    /// Set when the session is over.
    pub ended: Option<SessionEnd>,
    /// GPT-Live sessions (`/v1/live/sessions`) only: what is particular to them.
    pub live: Option<LiveRecord>,
}

/// What a GPT-Live session's record adds (in [`SessionRecord::live`]; the shared fields mean
/// the same, `appends` counting `session.input_audio.append` and `audio_deltas_sent`
/// `session.output_audio.delta`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveRecord {
    /// Whether `session.started` was sent.
    pub started: bool,
    /// The reason of `session.closed`, once the session is over: sent to the client on
    /// `close_requested` and `expired`, recorded only on `connection_lost` (the socket went
    /// before it could be said).
    pub closed_reason: Option<String>,
    /// Session seconds billed so far (what `session.usage.updated` and `session.closed` say).
    pub usage_seconds: f64,
    /// Client events that failed the Live client-events schema (each was answered with an
    /// `error` event): `"type: violation"`.
    pub client_schema_violations: Vec<String>,
}

impl SessionRecord {
    /// Received events of type `kind`, parsed.
    pub fn received_of(&self, kind: &str) -> Vec<Value> {
        self.received.iter().filter(|e| e.kind == kind).map(RecordedEvent::json).collect()
    }

    /// Sent events of type `kind`, parsed.
    pub fn sent_of(&self, kind: &str) -> Vec<Value> {
        self.sent.iter().filter(|e| e.kind == kind).map(RecordedEvent::json).collect()
    }

    /// The types of the sent events, in order.
    pub fn sent_kinds(&self) -> Vec<&str> {
        self.sent.iter().map(|e| e.kind.as_str()).collect()
    }
}

/// One WebSocket handshake attempt on `/v1/realtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRecord {
    /// Path and query as requested.
    pub uri: String,
    /// Request headers (names lowercase), in order.
    pub headers: Vec<(String, String)>,
    /// 101 when accepted, else the refusal status.
    pub status: u16,
}

impl HandshakeRecord {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One `POST /v1/realtime/client_secrets`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSecretRequest {
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The raw body.
    pub body: String,
    /// The status answered.
    pub status: u16,
    /// The JSON answered.
    pub response: Value,
}
