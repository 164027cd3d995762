//! The REST simulator's state: calls, requests, callbacks, and the clock they are stamped with.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::sync::watch;

use super::validate::CreateCall;
use super::{ApiConfig, Fault, Outcome};
use crate::callbacks::{CallbackRecord, CallbackSender};
use crate::caller::{CallerReport, HangupHandle};

/// The simulator's clock: tokio's clock (virtual under `tokio::time::pause`) for durations,
/// mapped onto the wall clock at start for the dates in resources and callbacks.
#[derive(Debug, Clone)]
pub struct SimClock {
    wall0: OffsetDateTime,
    t0: tokio::time::Instant,
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SimClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self { wall0: OffsetDateTime::now_utc(), t0: tokio::time::Instant::now() }
    }

    /// Time since the simulator started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Wall-clock time of `elapsed`.
    pub fn wall(&self, elapsed: Duration) -> OffsetDateTime {
        self.wall0 + elapsed
    }

    /// RFC 2822 date of `elapsed` (`Tue, 24 Nov 2026 10:00:00 +0000`), as in Twilio resources.
    pub fn rfc2822(&self, elapsed: Duration) -> String {
        self.wall(elapsed).format(&Rfc2822).unwrap_or_default()
    }

    /// ISO 8601 date with milliseconds (`2026-11-24T10:00:00.000Z`), as in stream callbacks.
    pub fn iso8601(&self, elapsed: Duration) -> String {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.wall(elapsed).format(&fmt).unwrap_or_default()
    }
}

/// A call's status, as in the Call resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// Accepted, not yet dialled.
    Queued,
    /// Ringing at the callee.
    Ringing,
    /// Answered.
    InProgress,
    /// Ended after being answered.
    Completed,
    /// The callee was busy.
    Busy,
    /// The call could not be placed.
    Failed,
    /// Nobody answered within `Timeout`.
    NoAnswer,
    /// Hung up through the API before it was answered.
    Canceled,
}

impl CallStatus {
    /// Twilio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        !matches!(self, CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress)
    }
}

/// A status the call went through, and when (simulator clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status.
    pub status: CallStatus,
    /// When.
    #[serde(with = "crate::caller::report::ms")]
    pub at: Duration,
}

/// An error or warning Twilio would have logged for a call (its debugger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallError {
    /// Twilio code.
    pub code: u32,
    /// What happened.
    pub message: String,
}

/// A call as the simulator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CallSnapshot {
    /// `CA…`.
    pub sid: String,
    /// `AC…`.
    pub account_sid: String,
    /// Callee.
    pub to: String,
    /// Caller ID.
    pub from: String,
    /// Current status.
    pub status: CallStatus,
    /// Every status, in order.
    pub timeline: Vec<StatusChange>,
    /// The validated request.
    pub request: CreateCall,
    /// When created (simulator clock).
    #[serde(with = "crate::caller::report::ms")]
    pub created_at: Duration,
    /// When answered.
    #[serde(with = "crate::caller::report::ms::option")]
    pub answered_at: Option<Duration>,
    /// When it ended.
    #[serde(with = "crate::caller::report::ms::option")]
    pub ended_at: Option<Duration>,
    /// Billable seconds (answered time, rounded up), once ended.
    pub duration_secs: Option<u64>,
    /// Reports of the Media Streams the call ran.
    pub caller_reports: Vec<CallerReport>,
    /// Errors and warnings (TwiML, stream handshake, trial limit …).
    pub errors: Vec<CallError>,
    /// Answering-machine detection's result, once decided.
    pub answered_by: Option<super::amd::AnsweredBy>,
    /// What `<Say>` spoke to the callee, in order.
    pub said: Vec<Said>,
    /// TwiML documents that replaced the running one through a call update, in order.
    pub updates: Vec<String>,
    /// The `<Dial>`s the call ran, in order, with their outcome.
    pub dials: Vec<super::dial::DialRecord>,
    /// Final status reached and every callback delivered.
    pub finished: bool,
}

/// One `<Say>` the call ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Said {
    /// The text.
    pub text: String,
    /// Its `language` attribute.
    pub language: Option<String>,
    /// When it started (simulator clock).
    #[serde(with = "crate::caller::report::ms")]
    pub at: Duration,
}

/// A request the REST API received, and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// `POST`/`GET`.
    pub method: String,
    /// Path.
    pub path: String,
    /// Form (or query) parameters, in order.
    pub params: Vec<(String, String)>,
    /// Basic-auth user name, if any.
    pub auth_user: Option<String>,
    /// The `Host` header, as sent (`api.dublin.ie1.twilio.com`, `127.0.0.1:4010`).
    pub host: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// JSON answered.
    pub response: serde_json::Value,
}

pub(crate) struct CallEntry {
    pub snap: CallSnapshot,
    pub hangup: watch::Sender<bool>,
    pub caller_hangup: HangupHandle,
    /// New TwiML from a call update (`Twiml=`): the running document stops, this one runs.
    pub redirect: watch::Sender<Option<String>>,
}

pub(crate) struct Inner {
    pub requests: Vec<RecordedRequest>,
    pub calls: Vec<CallEntry>,
    pub callbacks: Vec<CallbackRecord>,
    pub faults: VecDeque<Fault>,
    pub outcomes: HashMap<String, Outcome>,
    pub amd: HashMap<String, super::amd::AmdScript>,
    pub dial: HashMap<String, super::dial::DialScript>,
    /// Verified caller IDs: number, `PN…` sid, when added.
    pub verified: Vec<(String, String, Duration)>,
    /// `PN…` sids of the owned numbers.
    pub owned_sids: HashMap<String, String>,
}

pub(crate) struct Shared {
    pub cfg: ApiConfig,
    pub clock: SimClock,
    pub inner: Mutex<Inner>,
    pub changed: watch::Sender<u64>,
    pub sender: CallbackSender,
}

impl Shared {
    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&inner)
    }

    /// Changes the state and wakes whoever waits on it.
    pub fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut inner)
        };
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// Changes one call.
    pub fn update_call<R>(&self, sid: &str, f: impl FnOnce(&mut CallEntry) -> R) -> Option<R> {
        self.update(|i| i.calls.iter_mut().find(|c| c.snap.sid == sid).map(f))
    }

    /// A copy of one call.
    pub fn call(&self, sid: &str) -> Option<CallSnapshot> {
        self.read(|i| i.calls.iter().find(|c| c.snap.sid == sid).map(|c| c.snap.clone()))
    }

    /// Moves a call to `status` (no-op once final). Returns the status the call is in after.
    pub fn set_status(&self, sid: &str, status: CallStatus) -> Option<CallStatus> {
        let now = self.clock.elapsed();
        self.update_call(sid, |c| set_status_at(&mut c.snap, status, now))
    }
}

/// Moves `snap` to `status` at `now` (no-op once final).
pub(crate) fn set_status_at(snap: &mut CallSnapshot, status: CallStatus, now: Duration) -> CallStatus {
    if snap.status.is_final() || snap.status == status {
        return snap.status;
    }
    snap.status = status;
    snap.timeline.push(StatusChange { status, at: now });
    if status == CallStatus::InProgress {
        snap.answered_at = Some(now);
    }
    if status.is_final() {
        snap.ended_at = Some(now);
        snap.duration_secs =
            Some(snap.answered_at.map_or(0, |a| (now.saturating_sub(a)).as_millis().div_ceil(1000) as u64));
    }
    status
}
