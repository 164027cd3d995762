//! Storage: the only place data is written. Three backends behind one [`Store`]:
//! - [`postgres`]: a direct Postgres connection (a Supabase connection string works);
//! - [`sqlite`]: the embedded default (a file next to the binary);
//! - [`supabase`]: Supabase's REST API (PostgREST) with the service role key.
//!
//! The Postgres and SQLite backends share their queries ([`sql`]): both accept `$n`
//! placeholders, `RETURNING` and `ON CONFLICT`, and every timestamp is passed in from Rust.
//! [`outbox`] wraps a store so that writes accepted while the database is down are kept on
//! disk and replayed in order ([`Storage`]).

pub mod outbox;
pub mod postgres;
pub mod sql;
pub mod sqlite;
pub mod supabase;
pub mod web_transcript;

use contract::internal_api::{CallEvent, TokenDetails, TranscriptLine};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use outbox::{Applied, Storage};

/// Call statuses that hold the lead's single "active call" slot.
pub const ACTIVE_STATUSES: &[&str] = &["created", "queued", "initiated", "ringing", "in-progress"];

/// Ordering of call statuses: callbacks may arrive out of order, the status only moves forward.
pub fn status_rank(status: &str) -> Option<i32> {
    Some(match status {
        "created" => 0,
        "queued" => 1,
        "initiated" => 2,
        "ringing" => 3,
        "in-progress" | "answered" => 4,
        "completed" | "busy" | "failed" | "no-answer" | "canceled" => 5,
        _ => return None,
    })
}

/// A lead to create or update (keyed by `id`, which is derived from the web session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLead {
    /// Lead id.
    pub id: Uuid,
    /// The web session that created it.
    pub session_id: Option<Uuid>,
    /// First name, trimmed.
    pub first_name: String,
    /// Last name, trimmed.
    pub last_name: String,
    /// E.164.
    pub phone_e164: String,
    /// `web`, `phone`…
    pub source: String,
    /// The consent wording the prospect agreed to (versioned text).
    pub consent_text: String,
    /// When (consent time and write time).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A correction made during the phone call (`save_lead` on the phone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCorrection {
    /// Lead id.
    pub lead_id: Uuid,
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New E.164 number.
    pub phone_e164: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// Lead id.
    pub id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// E.164.
    pub phone_e164: String,
}

/// A call about to be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// Call id (also in the stream token).
    pub id: Uuid,
    /// The lead called.
    pub lead_id: Uuid,
    /// The web session that asked for it.
    pub session_id: Option<Uuid>,
    /// Summary of the web conversation.
    pub summary: String,
    /// The stream token's nonce (hex): the unit of single-use redemption.
    pub stream_nonce: String,
    /// When the stream token expires.
    pub token_expires_at: OffsetDateTime,
    /// Which attempt to reach the lead this is: 1 for the call the prospect asked for, 2 for
    /// the first retry ([`crate::retry`]).
    pub attempt: u32,
    /// The web conversation the call was asked from ([`web_transcript`]), empty if none.
    pub web_transcript: Vec<TranscriptLine>,
    /// Creation time.
    pub at: OffsetDateTime,
}

/// A stored call (what the routes need of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// Call id.
    pub id: Uuid,
    /// Lead id.
    pub lead_id: Uuid,
    /// The web session that asked for it (`None` for calls placed otherwise).
    pub session_id: Option<Uuid>,
    /// Twilio `CallSid` once known.
    pub call_sid: Option<String>,
    /// Latest status.
    pub status: String,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Usage so far.
    pub input_tokens: i64,
    /// Usage so far.
    pub output_tokens: i64,
    /// Summary of the web conversation (a retry carries it to the next attempt).
    pub summary: String,
    /// The web conversation itself ([`web_transcript`]; a retry carries it too).
    pub web_transcript: Vec<TranscriptLine>,
}

/// One step of a call's status timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// Call id.
    pub call_id: Uuid,
    /// Twilio `CallSid`, recorded on the call if it has none yet.
    pub call_sid: Option<String>,
    /// `queued`, `ringing`, `completed`, `stream-started`…
    pub status: String,
    /// `twilio-call`, `twilio-stream`, `control-plane`.
    pub source: String,
    /// Extra detail (duration, error code, Twilio's `SequenceNumber`…).
    pub detail: Option<String>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A batch of call events from the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsWrite {
    /// Call id.
    pub call_id: Uuid,
    /// Position of the first event.
    pub seq: u64,
    /// The events.
    pub events: Vec<CallEvent>,
    /// Arrival time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What a call's cost is computed from, as summed on its row while its events are stored
/// ([`crate::cost`] prices it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallUsage {
    /// Realtime input tokens.
    pub input_tokens: u64,
    /// Realtime output tokens.
    pub output_tokens: u64,
    /// How those tokens split (sums over the events that reported a consistent split; an
    /// event without one adds nothing here, so its tokens count as text and uncached).
    pub details: TokenDetails,
    /// GPT-Live billed seconds: the largest cumulative `live_usage` reported (the last one).
    pub live_seconds: f64,
    /// `realtime` or `live`, from the call's `engine` event.
    pub engine_api: Option<String>,
    /// The model, from the call's `engine` event.
    pub engine_model: Option<String>,
}

impl CallUsage {
    /// Adds one newly stored event: a `usage` adds its tokens (its split only when each part is
    /// a subset of the totals it belongs to; an inconsistent split is left out and logged), a
    /// `live_usage` raises the billed seconds, the first `engine` names the engine and model.
    pub fn add(&mut self, e: &CallEvent) {
        match e {
            CallEvent::Usage { input_tokens, output_tokens, details, response_id } => {
                self.input_tokens = self.input_tokens.saturating_add(*input_tokens);
                self.output_tokens = self.output_tokens.saturating_add(*output_tokens);
                match details {
                    Some(d) if split_is_consistent(d, *input_tokens, *output_tokens) => {
                        let t = &mut self.details;
                        t.input_audio_tokens = t.input_audio_tokens.saturating_add(d.input_audio_tokens);
                        t.input_cached_tokens = t.input_cached_tokens.saturating_add(d.input_cached_tokens);
                        t.input_cached_audio_tokens =
                            t.input_cached_audio_tokens.saturating_add(d.input_cached_audio_tokens);
                        t.output_audio_tokens = t.output_audio_tokens.saturating_add(d.output_audio_tokens);
                    }
                    Some(d) => tracing::warn!(
                        %response_id, input_tokens, output_tokens, details = ?d,
                        "token split does not add up to the totals: priced as text and uncached"
                    ),
                    None => {}
                }
            }
            CallEvent::LiveUsage { seconds } if seconds.is_finite() && *seconds > self.live_seconds => {
                self.live_seconds = *seconds;
            }
            CallEvent::Engine { api, model } if self.engine_model.is_none() => {
                self.engine_api = Some(api.clone());
                self.engine_model = Some(model.clone());
            }
            _ => {}
        }
    }
}

/// Whether a reported split fits its totals: audio and cached input within the input, cached
/// audio within both, output audio within the output, and the uncached audio within the
/// uncached input.
pub fn split_is_consistent(d: &TokenDetails, input_tokens: u64, output_tokens: u64) -> bool {
    d.input_audio_tokens <= input_tokens
        && d.input_cached_tokens <= input_tokens
        && d.input_cached_audio_tokens <= d.input_audio_tokens.min(d.input_cached_tokens)
        && d.output_audio_tokens <= output_tokens
        && d.input_audio_tokens - d.input_cached_audio_tokens <= input_tokens - d.input_cached_tokens
}

/// A batch of call events applied ([`Write::AppendEvents`]): what it added. Reported by
/// [`Store::apply`] so that counters count what was stored, once.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The call.
    pub call_id: Uuid,
    /// Events newly stored (a batch sent again stores none).
    pub inserted: u64,
    /// The call's usage before the batch.
    pub before: CallUsage,
    /// And after it (equal to `before` when nothing new changed it).
    pub after: CallUsage,
}

/// What a redeemed stream token gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedCall {
    /// Call id.
    pub call_id: Uuid,
    /// Lead id.
    pub lead_id: Uuid,
    /// Prospect's first name.
    pub first_name: String,
    /// Web conversation summary.
    pub summary: String,
    /// Twilio `CallSid`: the one recorded when the call was placed, else the gateway's.
    pub call_sid: Option<String>,
    /// The web conversation the call was asked from ([`web_transcript`]).
    pub web_transcript: Vec<TranscriptLine>,
}

/// Outcome of a redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// First use: here is the context.
    Redeemed(RedeemedCall),
    /// The token was already used.
    AlreadyRedeemed,
    /// No call carries this token.
    Unknown,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    /// Lead rows.
    pub leads: u64,
    /// Call rows.
    pub calls: u64,
    /// Status timeline rows.
    pub call_status_events: u64,
    /// Call events (transcripts, usage, end).
    pub call_events: u64,
    /// Scheduled, placed or cancelled retries.
    #[serde(default)]
    pub retries: u64,
    /// Outbox entries (writes waiting for the database, dead letters) about the number.
    #[serde(default)]
    pub outbox: u64,
}

/// Where a retry is in its life.
pub mod retry_state {
    /// Waiting for its due time.
    pub const SCHEDULED: &str = "scheduled";
    /// Claimed by one control plane's worker, being placed.
    pub const PLACING: &str = "placing";
    /// Handed to Twilio (`call_id` is the new call).
    pub const PLACED: &str = "placed";
    /// Cancelled (the lead asked, a new call superseded it, the number is no longer allowed).
    pub const CANCELLED: &str = "cancelled";
    /// Could not be placed (Twilio refused the new call).
    pub const FAILED: &str = "failed";
}

/// A retry to schedule after a call that did not reach the prospect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRetry {
    /// Retry id.
    pub id: Uuid,
    /// The lead to call again.
    pub lead_id: Uuid,
    /// The call whose outcome asked for this retry (one retry per call at most).
    pub after_call_id: Uuid,
    /// Which attempt this will be (the first call is attempt 1).
    pub attempt: u32,
    /// `busy`, `no-answer`, `failed`, `voicemail`.
    pub reason: String,
    /// When the delay alone would place it.
    pub requested_at: OffsetDateTime,
    /// When it may be placed (moved into the calling hours).
    pub due_at: OffsetDateTime,
    /// Creation time.
    pub at: OffsetDateTime,
}

/// A stored retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRow {
    /// Retry id.
    pub id: Uuid,
    /// The lead.
    pub lead_id: Uuid,
    /// The call whose outcome asked for it.
    pub after_call_id: Uuid,
    /// Which attempt (2 = the first retry).
    pub attempt: u32,
    /// Why (`busy`, `no-answer`, `failed`, `voicemail`).
    pub reason: String,
    /// One of [`retry_state`].
    pub state: String,
    /// When it may be placed.
    pub due_at: OffsetDateTime,
    /// The call it placed.
    pub call_id: Option<Uuid>,
    /// Why it was cancelled or failed, or how it was placed.
    pub detail: Option<String>,
}

/// One line of a lead's timeline: a status of one of its calls, a retry step included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The call it belongs to (for a retry step: the call whose outcome asked for the retry).
    pub call_id: Uuid,
    /// `queued`, `busy`, `retry-scheduled`, `retry-placed`
    pub status: String,
    /// `twilio-call`, `twilio-stream`, `control-plane`, `retry`.
    pub source: String,
    /// Detail.
    pub detail: Option<String>,
    /// When.
    pub at: OffsetDateTime,
}

/// A write that may be queued in the outbox when the database is down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Write {
    /// Create or update a lead.
    UpsertLead(NewLead),
    /// Correct a lead.
    CorrectLead(LeadCorrection),
    /// Add to a call's status timeline.
    RecordStatus(StatusUpdate),
    /// Store call events.
    AppendEvents(EventsWrite),
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached now (connection refused, pool timeout, 5xx, class 08):
    /// worth queueing and retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write (e.g. the lead already has an active call).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The schema is missing or older than this build: run the migrations.
    #[error("database schema missing or outdated ({0}): run `callway-control migrate`")]
    Schema(String),
    /// Anything else (a bug or a refused value).
    #[error("database error: {0}")]
    Other(String),
}

/// One of the three backends.
pub enum Store {
    /// Postgres or SQLite.
    Sql(sql::SqlStore),
    /// Supabase REST.
    Supabase(supabase::SupabaseStore),
}

macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Store::Sql($s) => $body,
            Store::Supabase($s) => $body,
        }
    };
}

impl Store {
    /// Which backend, for logs and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sql(s) => s.kind(),
            Store::Supabase(_) => "supabase-rest",
        }
    }

    /// Applies the migrations (SQL backends) or checks the schema is there (REST).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        each!(self, s => s.migrate().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        each!(self, s => s.ping().await)
    }

    /// Applies one queueable write; for a batch of call events, what it stored.
    pub async fn apply(&self, w: &Write) -> Result<Option<Appended>, StoreError> {
        each!(self, s => match w {
            Write::UpsertLead(l) => s.upsert_lead(l).await.map(|()| None),
            Write::CorrectLead(c) => s.correct_lead(c).await.map(|()| None),
            Write::RecordStatus(u) => s.record_status(u).await.map(|()| None),
            Write::AppendEvents(e) => s.append_events(e).await.map(Some),
        })
    }

    /// What a call's cost is computed from, with its lead; `None` for an unknown call.
    pub async fn call_usage(&self, id: Uuid) -> Result<Option<(Uuid, CallUsage)>, StoreError> {
        each!(self, s => s.call_usage(id).await)
    }

    /// A lead by id.
    pub async fn get_lead(&self, id: Uuid) -> Result<Option<Lead>, StoreError> {
        each!(self, s => s.get_lead(id).await)
    }

    /// Inserts a call in state `created`; [`StoreError::Conflict`] if the lead has an active call.
    pub async fn create_call(&self, c: &NewCall) -> Result<(), StoreError> {
        each!(self, s => s.create_call(c).await)
    }

    /// A call by id.
    pub async fn get_call(&self, id: Uuid) -> Result<Option<CallRow>, StoreError> {
        each!(self, s => s.get_call(id).await)
    }

    /// The status timeline of a call, oldest first.
    pub async fn status_timeline(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.status_timeline(id).await)
    }

    /// Redeems a stream token exactly once (atomic in the database).
    pub async fn redeem(
        &self,
        call_id: Uuid,
        nonce: &str,
        call_sid: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<Redeem, StoreError> {
        each!(self, s => s.redeem(call_id, nonce, call_sid, at).await)
    }

    /// Calls that ended between `since` and `until` with a phone transcript but no end-of-call
    /// summary yet (oldest first, at most `limit`): what [`crate::summary::sweep`] catches up on.
    pub async fn calls_awaiting_summary(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        each!(self, s => s.calls_awaiting_summary(since, until, limit).await)
    }

    /// Stores the end-of-call summary on a call ([`crate::summary`]); an unknown call is
    /// [`StoreError::NotFound`].
    pub async fn set_outcome_summary(
        &self,
        call_id: Uuid,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        each!(self, s => s.set_outcome_summary(call_id, text, at).await)
    }

    /// Takes the call's transfer lease until `until` if it is free or expired at `now`
    /// (one conditional `UPDATE`: of several control planes asking at once, one gets it).
    /// `false`: another transfer of this call is under way. An unknown call is
    /// [`StoreError::NotFound`].
    pub async fn claim_transfer(
        &self,
        call_id: Uuid,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.claim_transfer(call_id, now, until).await)
    }

    /// Gives the call's transfer lease back.
    pub async fn release_transfer(&self, call_id: Uuid) -> Result<(), StoreError> {
        each!(self, s => s.release_transfer(call_id).await)
    }

    /// Deletes transcript lines older than `before`; returns how many.
    pub async fn purge_transcripts(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        each!(self, s => s.purge_transcripts(before).await)
    }

    /// The ids of the leads with `phone_e164` and of their calls (what an erasure looks for
    /// in the outbox, [`Storage::erase_phone`]).
    pub async fn ids_for_phone(&self, phone_e164: &str) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
        each!(self, s => s.ids_for_phone(phone_e164).await)
    }

    /// Deletes everything held about `phone_e164` in the database, its retries included; the
    /// outbox is [`Storage::erase_phone`]'s part.
    pub async fn erase_phone(&self, phone_e164: &str) -> Result<Erased, StoreError> {
        each!(self, s => s.erase_phone(phone_e164).await)
    }

    /// Stores a retry unless the call already has one; `true` if this one was stored.
    pub async fn schedule_retry(&self, r: &NewRetry) -> Result<bool, StoreError> {
        each!(self, s => s.schedule_retry(r).await)
    }

    /// Which attempt `call_id` was (1 = the call the prospect asked for); 1 for an unknown call.
    pub async fn attempt_of_call(&self, call_id: Uuid) -> Result<u32, StoreError> {
        each!(self, s => s.attempt_of_call(call_id).await)
    }

    /// Atomically moves up to `limit` retries due at `now` from `scheduled` to `placing` for
    /// `worker` and returns them: two control planes never get the same one.
    pub async fn claim_due_retries(
        &self,
        now: OffsetDateTime,
        worker: &str,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        each!(self, s => s.claim_due_retries(now, worker, limit).await)
    }

    /// Retries still `placing` that were claimed at or before `claimed_before`: their worker
    /// died between claiming and placing ([`crate::retry::sweep_stuck`]).
    pub async fn stuck_retries(
        &self,
        claimed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        each!(self, s => s.stuck_retries(claimed_before, limit).await)
    }

    /// The lead's call of attempt `attempt` that no retry points to (what a worker that died
    /// while placing that attempt may have stored), newest first.
    pub async fn unlinked_call_of_attempt(
        &self,
        lead_id: Uuid,
        attempt: u32,
    ) -> Result<Option<CallRow>, StoreError> {
        each!(self, s => s.unlinked_call_of_attempt(lead_id, attempt).await)
    }

    /// Puts a claimed retry back to `scheduled` at `due_at`; `false` if it was not `placing`.
    pub async fn reschedule_retry(
        &self,
        id: Uuid,
        due_at: OffsetDateTime,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.reschedule_retry(id, due_at, detail, at).await)
    }

    /// Ends a claimed retry in `state` ([`retry_state`]); `false` if it was not `placing`.
    pub async fn finish_retry(
        &self,
        id: Uuid,
        state: &str,
        call_id: Option<Uuid>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.finish_retry(id, state, call_id, detail, at).await)
    }

    /// Cancels the scheduled retries of `lead_id` (or, with `phone_e164`, of every lead with
    /// that number); returns those cancelled.
    pub async fn cancel_retries(
        &self,
        lead_id: Option<Uuid>,
        phone_e164: Option<&str>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<RetryRow>, StoreError> {
        each!(self, s => s.cancel_retries(lead_id, phone_e164, detail, at).await)
    }

    /// The retries of a lead, oldest first.
    pub async fn retries_for_lead(&self, lead_id: Uuid) -> Result<Vec<RetryRow>, StoreError> {
        each!(self, s => s.retries_for_lead(lead_id).await)
    }

    /// Every status of every call of a lead (retry steps included), in time order.
    pub async fn lead_timeline(&self, lead_id: Uuid) -> Result<Vec<TimelineEntry>, StoreError> {
        each!(self, s => s.lead_timeline(lead_id).await)
    }
}

/// Kind stored for an event (`transcript`, `usage`, `engine`, `live_usage`, `ended`).
pub(crate) fn event_kind(e: &CallEvent) -> &'static str {
    match e {
        CallEvent::Transcript { .. } => "transcript",
        CallEvent::Usage { .. } => "usage",
        CallEvent::Engine { .. } => "engine",
        CallEvent::LiveUsage { .. } => "live_usage",
        CallEvent::Ended { .. } => "ended",
        #[allow(unreachable_patterns, reason = "CallEvent may grow")]
        _ => "other",
    }
}
