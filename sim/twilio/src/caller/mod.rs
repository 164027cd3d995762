//! The caller's side of a bidirectional Media Stream: what Twilio does on `<Connect><Stream>`.
//!
//! [`run_call`] (or [`Caller`] for hang-up and event hooks) opens the WebSocket with a signed
//! upgrade ([`connect`]), sends `connected` and `start`, then one `media` frame every 20 ms of
//! stream time from its [`Segment`] script (silence once the script is over, as a live line
//! does), `dtmf` on schedule, and finally `stop` and a close handshake. What the server sends
//! back is played on the [`crate::playback`] queue; marks are echoed when their audio has played,
//! invalid messages become Twilio's warnings. The result is a [`CallerReport`].
//!
//! Pacing ([`Pacing`]): real time on tokio's clock (exact virtual time under
//! `tokio::time::pause`), accelerated by a factor, or unpaced (script audio sent back to back on
//! a virtual clock; waits for the agent and the time after the script run on tokio's clock).

pub mod clock;
pub mod connect;
pub mod messages;
pub mod report;
pub mod script;
mod session;

use std::sync::Arc;
use std::time::Duration;

pub use connect::HandshakeFailure;
pub use report::{
    CallEnd, CallerReport, ClearRecord, HangupCause, MarkRecord, TimelineEntry, TimelineEvent, Warning,
};
pub use script::{DtmfPress, Segment};
use tokio::sync::{Notify, mpsc};

use crate::sids;

/// How the caller's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// One 20 ms frame per 20 ms of tokio time (Twilio's pace).
    #[default]
    RealTime,
    /// `n` times faster than real time: frames every 20/n ms, playback `n` times faster too.
    Accelerated(u32),
    /// Script audio back to back, the clock stepping 20 ms per frame; waits for the agent and
    /// the time after the script run at real pace.
    Unpaced,
}

/// When the caller hangs up (the server closing the WebSocket always ends the call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPolicy {
    /// As soon as the script is over.
    ScriptEnd,
    /// Once the script is over and everything received has played and every mark is echoed,
    /// or `max_wait` after the script ended.
    ScriptEndAndPlayback {
        /// Longest wait after the script.
        max_wait: Duration,
    },
    /// Never by itself: wait for the server to close (or the maximum duration, or a hang-up).
    ServerCloses,
}

impl Default for EndPolicy {
    fn default() -> Self {
        EndPolicy::ScriptEndAndPlayback { max_wait: Duration::from_secs(30) }
    }
}

/// Everything about one simulated call's stream.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    /// The `<Stream url>` exactly as written in the TwiML (signed as is).
    pub url: String,
    /// The account's auth token (signs the upgrade).
    pub auth_token: String,
    /// `AC…` announced in `start`/`stop`.
    pub account_sid: String,
    /// `CA…` announced in `start`/`stop`.
    pub call_sid: String,
    /// `MZ…` of the stream.
    pub stream_sid: String,
    /// The `<Parameter>`s, sent as `start.customParameters` (in order).
    pub custom_parameters: Vec<(String, String)>,
    /// What the caller says.
    pub script: Vec<Segment>,
    /// Key presses.
    pub dtmf: Vec<DtmfPress>,
    /// Clock.
    pub pacing: Pacing,
    /// When to hang up.
    pub end: EndPolicy,
    /// Longest call (stream time from `start`); Twilio's trial accounts stop at 10 minutes.
    pub max_duration: Option<Duration>,
    /// PEM CA(s) to trust for `wss://` (the public web roots when `None`).
    pub ca_pem: Option<Vec<u8>>,
    /// Limit for each of TCP connect, TLS handshake and HTTP upgrade.
    pub connect_timeout: Duration,
    /// How long to wait for the server's close frame after ours.
    pub close_timeout: Duration,
    /// Accept `ws://` URLs (local tests). Twilio only dials `wss://` (31922 otherwise).
    pub allow_insecure_ws: bool,
    /// Stream time between `connected` and `start` (0 on Twilio; messages the server sends
    /// before `start` are 31951 warnings).
    pub start_delay: Duration,
    /// Most audio the playback queue holds (Twilio: ten minutes; excess dropped with 31931).
    pub playback_capacity: u64,
}

impl CallerConfig {
    /// A call to `url` signed with `auth_token`, fresh SIDs, saying a 440 Hz tone for one second
    /// then waiting for the agent's turn, real-time pacing, hanging up once everything played.
    pub fn new(url: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth_token: auth_token.into(),
            account_sid: sids::new_sid(sids::ACCOUNT),
            call_sid: sids::new_sid(sids::CALL),
            stream_sid: sids::new_sid(sids::STREAM),
            custom_parameters: Vec::new(),
            script: vec![
                Segment::Tone { hz: 440.0, ms: 1000 },
                Segment::AwaitAgent { settle_ms: 800, timeout_ms: 10_000 },
            ],
            dtmf: Vec::new(),
            pacing: Pacing::RealTime,
            end: EndPolicy::default(),
            max_duration: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            allow_insecure_ws: true,
            start_delay: Duration::ZERO,
            playback_capacity: crate::playback::MAX_BUFFERED,
        }
    }
}

/// Something the caller reports while the call runs (the REST simulator turns these into
/// stream status callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerEvent {
    /// The WebSocket is open and `start` was sent.
    Started {
        /// `MZ…`.
        stream_sid: String,
    },
}

/// Ends a running call from outside (like `Status=completed` on the REST API).
#[derive(Debug, Clone, Default)]
pub struct HangupHandle(Arc<Notify>);

impl HangupHandle {
    /// A handle not yet attached to a call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the call to hang up now (`stop`, then close). Harmless once the call is over.
    pub fn hang_up(&self) {
        self.0.notify_one();
    }
}

/// One simulated call with its hooks.
pub struct Caller {
    config: CallerConfig,
    events: Option<mpsc::UnboundedSender<CallerEvent>>,
    hangup: HangupHandle,
}

impl Caller {
    /// A call with `config`.
    pub fn new(config: CallerConfig) -> Self {
        Self { config, events: None, hangup: HangupHandle::new() }
    }

    /// Sends [`CallerEvent`]s to `tx` while running.
    pub fn with_events(mut self, tx: mpsc::UnboundedSender<CallerEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// Hangs up when `handle` says so.
    pub fn with_hangup(mut self, handle: HangupHandle) -> Self {
        self.hangup = handle;
        self
    }

    /// Places the call and returns its report once it is over.
    pub async fn run(self) -> CallerReport {
        session::run(self.config, self.events, self.hangup).await
    }
}

/// Runs one call with `config` and returns its report.
pub async fn run_call(config: CallerConfig) -> CallerReport {
    Caller::new(config).run().await
}
