//! Call retries: a call that did not reach the prospect (Twilio's `busy`, `no-answer`,
//! `failed`, and a voicemail once answering-machine detection reports one) schedules another
//! attempt after the next delay of `CALL_RETRY_DELAYS`, moved into the calling hours of the
//! prospect's country ([`crate::calling_hours`]), stored in `call_retries` so it survives
//! restarts, and placed by a worker in `serve` ([`run_due`], every `CALL_RETRY_WORKER_SECS`).
//!
//! - Scheduling ([`on_call_outcome`]) is idempotent: one retry per call (Twilio may repeat a
//!   callback). The first call, the one the prospect just asked for, is attempt 1 and is placed
//!   at once, at any hour; only retries obey the calling hours.
//! - Claiming is atomic in the database (`UPDATE … WHERE state = 'scheduled' AND due_at <= now
//!   … RETURNING`, `FOR UPDATE SKIP LOCKED` on Postgres): two control planes never place one
//!   attempt twice. A retry is placed at most once: a worker that dies between claiming and
//!   placing leaves it `placing` (never re-placed blindly, since Twilio may have the call);
//!   [`sweep_stuck`] settles it once it has been `placing` for [`STUCK_AFTER`]: put back in
//!   the queue when no call was stored for it (Twilio was never asked), adopted as placed when
//!   Twilio's call sid is known, failed with the reason when Twilio was asked and its answer
//!   was lost (a second ring is worse than a missing one).
//! - Cancelled when the lead asks ([`cancel_for_phone`]: `/admin/opt-out`,
//!   `callway-control opt-out`), when the prospect asks for a new call from the page
//!   ([`cancel_for_lead`]), and deleted with the lead on erasure.
//! - Every step is a line of the originating call's status timeline (source `retry`:
//!   `retry-scheduled`, `retry-moved`, `retry-placed`, `retry-cancelled`, `retry-failed`,
//!   `retry-not-scheduled`), and the placed call has its own timeline, so
//!   [`crate::store::Store::lead_timeline`] shows every attempt and its outcome.
//!
//! The French decree that sets the calling hours also allows at most four calls to a consumer
//! in 30 days (article D. 223-9 of the Code de la consommation): `CALL_RETRY_DELAYS` holds at
//! most [`MAX_RETRIES`] delays, the first call making the fourth.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::calling_hours::{CallingHoursTable, zones_for};
use crate::metrics::Metrics;
use crate::phone::{self, Phone};
use crate::placing::{PlaceCall, PlaceError, place_call};
use crate::routes::App;
use crate::store::{NewRetry, RetryRow, StatusUpdate, StoreError, Write, retry_state};
use crate::twilio::TwilioError;

/// Most retries (`CALL_RETRY_DELAYS` entries): with the first call, four calls in all.
pub const MAX_RETRIES: usize = 3;
/// Shortest delay accepted.
pub const MIN_DELAY: Duration = Duration::from_secs(60);
/// Longest delay accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Retries claimed by one worker pass.
pub const CLAIM_BATCH: u32 = 16;
/// A retry `placing` for this long lost its worker: placing one is a database write and one
/// Twilio request (with its own timeouts), far shorter than this.
pub const STUCK_AFTER: Duration = Duration::from_secs(10 * 60);
/// Timeline source of every retry step.
pub const SOURCE: &str = "retry";

/// Why a call is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// Twilio `busy`.
    Busy,
    /// Twilio `no-answer`.
    NoAnswer,
    /// Twilio `failed` (the network could not reach the number).
    Failed,
    /// An answering machine took the call. The hook for answering-machine detection: call
    /// [`on_call_outcome`] with this when AMD reports `machine_end_*`.
    Voicemail,
    /// Nobody took a warm transfer (`<Dial>` busy, unanswered, failed): the caller was told
    /// and the call ended ([`crate::transfer`]).
    TransferFailed,
}

impl RetryReason {
    /// The reason for a final Twilio `CallStatus`, if it deserves a retry (`completed` and
    /// `canceled` do not).
    pub fn from_call_status(status: &str) -> Option<Self> {
        match status {
            "busy" => Some(Self::Busy),
            "no-answer" => Some(Self::NoAnswer),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Voicemail => "voicemail",
            Self::TransferFailed => "transfer-failed",
        }
    }
}

/// The retry settings (`CALL_RETRY_DELAYS`, `CALLING_HOURS_*`, `CALL_RETRY_WORKER_SECS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Delay before each retry; empty = no retries.
    pub delays: Vec<Duration>,
    /// Calling hours per country.
    pub hours: CallingHoursTable,
    /// How often the worker looks for due retries.
    pub worker_period: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            delays: Vec::new(),
            hours: CallingHoursTable::default(),
            worker_period: Duration::from_secs(30),
        }
    }
}

/// Parses `10m,2h,1d` (whole numbers with `m`, `h` or `d`; `s` too, for tests of at least a
/// minute). Messages name the bad entry and say what is expected.
pub fn parse_delays(raw: &str) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim) {
        let bad = || {
            format!(
                "{item:?} is not a delay: write a whole number followed by m, h or d, comma-separated (e.g. 10m,2h)"
            )
        };
        if item.is_empty() {
            return Err("an entry is empty: write delays comma-separated, e.g. 10m,2h".into());
        }
        let unit = item.chars().last().unwrap_or(' ');
        let n: u64 = item[..item.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        let secs = match unit {
            's' => n,
            'm' => n.saturating_mul(60),
            'h' => n.saturating_mul(3600),
            'd' => n.saturating_mul(86_400),
            _ => return Err(bad()),
        };
        let d = Duration::from_secs(secs);
        if d < MIN_DELAY || d > MAX_DELAY {
            return Err(format!("{item:?} is out of range: each delay must be from 1m to 7d"));
        }
        out.push(d);
    }
    if out.len() > MAX_RETRIES {
        return Err(format!(
            "{} delays given, at most {MAX_RETRIES}: with the first call that is four calls, the most French law allows in 30 days (Code de la consommation, art. D. 223-9)",
            out.len()
        ));
    }
    Ok(out)
}

/// What to do after attempt `attempt_done` ended without reaching the prospect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No retry, and why (for the timeline).
    NoRetry(String),
    /// Retry.
    Retry {
        /// The attempt it will be.
        attempt: u32,
        /// `outcome_at` + the delay.
        requested_at: OffsetDateTime,
        /// `requested_at` moved into the calling hours (equal if it already was).
        due_at: OffsetDateTime,
    },
}

/// Plans the retry after attempt `attempt_done` (1 = the first call) ended at `outcome_at`.
pub fn plan(cfg: &RetryConfig, phone: &Phone, attempt_done: u32, outcome_at: OffsetDateTime) -> Plan {
    let retries = cfg.delays.len();
    let Some(delay) =
        usize::try_from(attempt_done).ok().and_then(|a| a.checked_sub(1)).and_then(|i| cfg.delays.get(i))
    else {
        return Plan::NoRetry(format!(
            "no attempt left: {attempt_done} call(s) made, CALL_RETRY_DELAYS allows {retries} retr{}",
            if retries == 1 { "y" } else { "ies" }
        ));
    };
    let Some(region) = phone.region else {
        return Plan::NoRetry("the number's country is unknown, so are its calling hours".into());
    };
    let zones = zones_for(region);
    if zones.is_empty() {
        return Plan::NoRetry(format!(
            "no time zone is known for {}: its calling hours cannot be kept",
            region.as_ref()
        ));
    }
    let requested_at = outcome_at + *delay;
    match cfg.hours.for_region(Some(region)).next_allowed(zones, requested_at) {
        Some(due_at) => Plan::Retry { attempt: attempt_done + 1, requested_at, due_at },
        None => Plan::NoRetry(format!("the calling hours of {} never open", region.as_ref())),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn zone_names(phone: &Phone) -> String {
    phone
        .region
        .map(|r| zones_for(r).iter().map(|z| z.name()).collect::<Vec<_>>().join("+"))
        .unwrap_or_default()
}

/// `now` to the whole second (SQLite compares times as text).
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Adds a retry step to `call_id`'s timeline (through the outbox: never lost), stamped with
/// the wall clock like Twilio's callbacks, so the lead's timeline reads in the order things
/// happened.
async fn timeline(app: &App, call_id: Uuid, status: &str, detail: String) {
    let update = StatusUpdate {
        call_id,
        call_sid: None,
        status: status.to_owned(),
        source: SOURCE.into(),
        detail: Some(detail),
        at: OffsetDateTime::now_utc(),
    };
    if let Err(e) = app.storage.write(Write::RecordStatus(update)).await {
        tracing::error!(%call_id, status, error = %e, "could not record a retry step on the timeline");
    }
}

/// What [`on_call_outcome`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// Retries are off (`CALL_RETRY_DELAYS` unset).
    Off,
    /// Not scheduled, and why.
    NotScheduled(String),
    /// This call already had its retry (a repeated callback).
    AlreadyScheduled,
    /// Stored.
    Retry(NewRetry),
}

/// Call `call_id` ended with `reason`: schedules the next attempt if one is left. Called for
/// Twilio's final `busy`/`no-answer`/`failed`, and meant to be called by answering-machine
/// detection with [`RetryReason::Voicemail`].
pub async fn on_call_outcome(app: &App, call_id: Uuid, reason: RetryReason) -> Result<Scheduled, StoreError> {
    let cfg = &app.config.retry;
    if cfg.delays.is_empty() {
        return Ok(Scheduled::Off);
    }
    let store = &app.storage.store;
    let call =
        store.get_call(call_id).await?.ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))?;
    let now = whole_second(app.clock.now());
    let Some(lead) = store.get_lead(call.lead_id).await? else {
        return Ok(Scheduled::NotScheduled("the lead no longer exists".into()));
    };
    let attempt_done = store.attempt_of_call(call_id).await?;
    let phone = match phone::parse_phone(&lead.phone_e164, app.config.default_phone_region) {
        Ok(p) => p,
        Err(e) => {
            let why = format!("the lead's number no longer parses ({})", e.code());
            timeline(app, call_id, "retry-not-scheduled", why.clone()).await;
            return Ok(Scheduled::NotScheduled(why));
        }
    };
    match plan(cfg, &phone, attempt_done, now) {
        Plan::NoRetry(why) => {
            tracing::info!(%call_id, lead_id = %lead.id, reason = reason.as_str(), %why, "no retry");
            timeline(app, call_id, "retry-not-scheduled", format!("after {}: {why}", reason.as_str())).await;
            Ok(Scheduled::NotScheduled(why))
        }
        Plan::Retry { attempt, requested_at, due_at } => {
            let retry = NewRetry {
                id: Uuid::new_v4(),
                lead_id: lead.id,
                after_call_id: call_id,
                attempt,
                reason: reason.as_str().into(),
                requested_at,
                due_at,
                at: now,
            };
            if !store.schedule_retry(&retry).await? {
                return Ok(Scheduled::AlreadyScheduled);
            }
            Metrics::inc(&app.metrics.retries_scheduled);
            let zones = zone_names(&phone);
            tracing::info!(%call_id, lead_id = %lead.id, attempt, reason = reason.as_str(), due_at = %rfc3339(due_at), zones = %zones, to = %phone::mask(&phone.e164), "retry scheduled");
            timeline(
                app,
                call_id,
                "retry-scheduled",
                format!(
                    "attempt {attempt} of {} after {}, due {} ({zones})",
                    cfg.delays.len() + 1,
                    reason.as_str(),
                    rfc3339(due_at)
                ),
            )
            .await;
            if due_at != requested_at {
                timeline(
                    app,
                    call_id,
                    "retry-moved",
                    format!(
                        "attempt {attempt}: {} is outside the calling hours ({zones}); moved to {}",
                        rfc3339(requested_at),
                        rfc3339(due_at)
                    ),
                )
                .await;
            }
            Ok(Scheduled::Retry(retry))
        }
    }
}

/// Cancels the retries waiting for `lead_id` (the prospect asked for a new call, or the lead
/// refused further calls); logs instead of failing (the caller goes on either way).
pub async fn cancel_for_lead(app: &App, lead_id: Uuid, why: &str) -> u64 {
    cancel(app, Some(lead_id), None, why).await.unwrap_or_else(|e| {
        tracing::error!(%lead_id, error = %e, "could not cancel the lead's retries");
        0
    })
}

/// Cancels the retries waiting for every lead with `phone_e164` (the prospect asked not to be
/// called again); returns how many.
pub async fn cancel_for_phone(app: &App, phone_e164: &str, why: &str) -> Result<u64, StoreError> {
    cancel(app, None, Some(phone_e164), why).await
}

async fn cancel(
    app: &App,
    lead_id: Option<Uuid>,
    phone_e164: Option<&str>,
    why: &str,
) -> Result<u64, StoreError> {
    let now = whole_second(app.clock.now());
    let cancelled = app.storage.store.cancel_retries(lead_id, phone_e164, why, now).await?;
    for r in &cancelled {
        Metrics::inc(&app.metrics.retries_cancelled);
        tracing::info!(retry_id = %r.id, lead_id = %r.lead_id, attempt = r.attempt, why, "retry cancelled");
        timeline(app, r.after_call_id, "retry-cancelled", format!("attempt {}: {why}", r.attempt)).await;
    }
    Ok(cancelled.len() as u64)
}

/// What one worker pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Retries claimed.
    pub claimed: u64,
    /// Calls handed to Twilio.
    pub placed: u64,
    /// Put back because the worker ran outside the calling hours.
    pub moved: u64,
    /// Cancelled (lead gone, number no longer allowed, a call already in progress).
    pub cancelled: u64,
    /// Twilio refused the call.
    pub failed: u64,
    /// Found stuck in `placing` and settled ([`sweep_stuck`]).
    pub recovered: u64,
}

/// One worker pass at `app.clock.now()`: settles the retries stuck in `placing`
/// ([`sweep_stuck`]), then claims the due retries and places each.
pub async fn run_due(app: &App) -> Result<RunReport, StoreError> {
    let now = whole_second(app.clock.now());
    let recovered = sweep_stuck(app, now).await?;
    let claimed = app.storage.store.claim_due_retries(now, &app.instance_id, CLAIM_BATCH).await?;
    let mut report = RunReport { claimed: claimed.len() as u64, recovered, ..RunReport::default() };
    for r in claimed {
        if let Err(e) = place_retry(app, &r, now, &mut report).await {
            // The row stays `placing`: at most once, never a second ring by accident.
            tracing::error!(retry_id = %r.id, error = %e, "retry could not be completed; left in state placing");
        }
    }
    Ok(report)
}

/// Settles the retries claimed before `now - STUCK_AFTER` and still `placing` (the control
/// plane that claimed them stopped before finishing); returns how many. Each is settled by
/// what the database says reached Twilio:
/// - no call stored for the attempt: Twilio was never asked, so the retry goes back to
///   `scheduled`, due now (the worker still checks the calling hours before ringing);
/// - a call with Twilio's call sid: Twilio has it, the retry is `placed` with that call;
/// - a call without a sid: Twilio was asked and the answer was lost. It may ring or may not;
///   placing again could ring twice, so the retry `failed` and the call is closed as `failed`
///   (it would otherwise count as the lead's active call for ever), both saying why.
///
/// Two control planes sweeping at once settle each retry once (the updates only apply to a
/// row still `placing`).
pub async fn sweep_stuck(app: &App, now: OffsetDateTime) -> Result<u64, StoreError> {
    let store = &app.storage.store;
    let stuck_after = time::Duration::try_from(STUCK_AFTER).unwrap_or(time::Duration::minutes(10));
    let mut settled = 0;
    for r in store.stuck_retries(now - stuck_after, CLAIM_BATCH).await? {
        let call = store.unlinked_call_of_attempt(r.lead_id, r.attempt).await?;
        let mins = STUCK_AFTER.as_secs() / 60;
        let done = match call {
            None => {
                let detail = format!(
                    "attempt {}: requeued; its control plane stopped before placing it (placing for over {mins} min, no call stored)",
                    r.attempt
                );
                let done = store.reschedule_retry(r.id, now, &detail, now).await?;
                if done {
                    timeline(app, r.after_call_id, "retry-requeued", detail).await;
                }
                done
            }
            Some(c) if c.call_sid.is_some() => {
                let detail = format!(
                    "placed as call {} (recovered: its control plane stopped after Twilio accepted it)",
                    c.id
                );
                let done = store.finish_retry(r.id, retry_state::PLACED, Some(c.id), &detail, now).await?;
                if done {
                    timeline(
                        app,
                        r.after_call_id,
                        "retry-placed",
                        format!("attempt {}: {detail}", r.attempt),
                    )
                    .await;
                }
                done
            }
            Some(c) => {
                let why = format!(
                    "its control plane stopped while asking Twilio for call {}; not placed again so the prospect is never called twice (look the number up in Twilio's call log)",
                    c.id
                );
                let done = store.finish_retry(r.id, retry_state::FAILED, Some(c.id), &why, now).await?;
                if done {
                    timeline(app, r.after_call_id, "retry-failed", format!("attempt {}: {why}", r.attempt))
                        .await;
                    let update = StatusUpdate {
                        call_id: c.id,
                        call_sid: None,
                        status: "failed".into(),
                        source: SOURCE.into(),
                        detail: Some(why),
                        at: OffsetDateTime::now_utc(),
                    };
                    if let Err(e) = app.storage.write(Write::RecordStatus(update)).await {
                        tracing::error!(call_id = %c.id, error = %e, "could not close the call left without an answer");
                    }
                }
                done
            }
        };
        if done {
            settled += 1;
            Metrics::inc(&app.metrics.retries_recovered);
            tracing::warn!(retry_id = %r.id, lead_id = %r.lead_id, attempt = r.attempt, "retry stuck in placing settled");
        }
    }
    Ok(settled)
}

async fn finish(
    app: &App,
    r: &RetryRow,
    state: &str,
    call_id: Option<Uuid>,
    status: &str,
    detail: String,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    app.storage.store.finish_retry(r.id, state, call_id, &detail, now).await?;
    timeline(app, r.after_call_id, status, format!("attempt {}: {detail}", r.attempt)).await;
    Ok(())
}

async fn place_retry(
    app: &App,
    r: &RetryRow,
    now: OffsetDateTime,
    report: &mut RunReport,
) -> Result<(), StoreError> {
    let store = &app.storage.store;
    let cancel = |why: String| async move {
        Metrics::inc(&app.metrics.retries_cancelled);
        finish(app, r, retry_state::CANCELLED, None, "retry-cancelled", why, now).await
    };
    let Some(lead) = store.get_lead(r.lead_id).await? else {
        report.cancelled += 1;
        return cancel("the lead no longer exists".into()).await;
    };
    let phone = match phone::parse_phone(&lead.phone_e164, app.config.default_phone_region)
        .and_then(|p| app.config.call_policy.check(&p).map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            report.cancelled += 1;
            return cancel(format!("the number may no longer be called ({})", e.code())).await;
        }
    };
    // Late worker (the service was down through the evening): never ring outside the hours.
    let hours = app.config.retry.hours.for_region(phone.region);
    let zones = phone.region.map(zones_for).unwrap_or(&[]);
    if zones.is_empty() || !hours.allows(zones, now) {
        let Some(next) = (!zones.is_empty()).then(|| hours.next_allowed(zones, now)).flatten() else {
            report.cancelled += 1;
            return cancel("the calling hours of the number's country never open".into()).await;
        };
        let detail = format!(
            "attempt {}: worker ran at {}, outside the calling hours ({}); moved to {}",
            r.attempt,
            rfc3339(now),
            zone_names(&phone),
            rfc3339(next)
        );
        store.reschedule_retry(r.id, next, &detail, now).await?;
        report.moved += 1;
        timeline(app, r.after_call_id, "retry-moved", detail).await;
        return Ok(());
    }
    let Some(previous) = store.get_call(r.after_call_id).await? else {
        report.cancelled += 1;
        return cancel("the previous call no longer exists".into()).await;
    };
    let detail = format!("Calls.create (retry attempt {} after {})", r.attempt, r.reason);
    let placed = place_call(
        app,
        &PlaceCall {
            lead_id: lead.id,
            session_id: previous.session_id,
            summary: &previous.summary,
            web_transcript: &previous.web_transcript,
            to_e164: &phone.e164,
            detail: &detail,
            attempt: r.attempt,
        },
    )
    .await;
    match placed {
        Ok(p) => {
            report.placed += 1;
            Metrics::inc(&app.metrics.retries_placed);
            tracing::info!(retry_id = %r.id, lead_id = %lead.id, attempt = r.attempt, call_id = %p.call_id, to = %phone::mask(&phone.e164), "retry placed");
            finish(
                app,
                r,
                retry_state::PLACED,
                Some(p.call_id),
                "retry-placed",
                format!("placed as call {}", p.call_id),
                now,
            )
            .await
        }
        Err(PlaceError::ActiveCall) => {
            report.cancelled += 1;
            cancel("the lead already has a call in progress".into()).await
        }
        Err(PlaceError::Twilio { call_id, error }) => {
            report.failed += 1;
            Metrics::inc(&app.metrics.twilio_errors);
            tracing::error!(retry_id = %r.id, %call_id, error = %error, code = error.code(), "retry refused by Twilio");
            finish(
                app,
                r,
                retry_state::FAILED,
                Some(call_id),
                "retry-failed",
                format!("Twilio refused call {call_id}: {}", error.code()),
                now,
            )
            .await?;
            // Twilio did nothing (429 after our own retries): the next attempt may follow. Any
            // other refusal would repeat, and a 5xx may have placed the call: stop there.
            if matches!(error, TwilioError::RateLimited) {
                on_call_outcome(app, call_id, RetryReason::Failed).await?;
            }
            Ok(())
        }
        Err(PlaceError::Storage(e)) => {
            let detail =
                format!("attempt {}: the call could not be stored ({e}); tried again in a minute", r.attempt);
            store.reschedule_retry(r.id, now + time::Duration::minutes(1), &detail, now).await?;
            report.moved += 1;
            Ok(())
        }
        Err(e @ PlaceError::Internal { .. }) => {
            report.failed += 1;
            finish(app, r, retry_state::FAILED, None, "retry-failed", e.to_string(), now).await
        }
    }
}

/// Runs [`run_due`] every `CALL_RETRY_WORKER_SECS` until the process ends.
pub async fn run_worker(app: crate::routes::SharedApp) {
    let mut tick = tokio::time::interval(app.config.retry.worker_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match run_due(&app).await {
            Ok(r) if r.claimed > 0 => tracing::info!(?r, "retry worker pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retry worker pass failed; will try again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fr_mobile() -> Phone {
        phone::parse_phone("06 12 34 56 78", phonenumber::country::Id::FR).unwrap()
    }

    fn cfg(delays: &str) -> RetryConfig {
        RetryConfig { delays: parse_delays(delays).unwrap(), ..RetryConfig::default() }
    }

    #[test]
    fn delays_parse_and_bound_the_attempts() {
        assert_eq!(
            parse_delays("10m,2h").unwrap(),
            vec![Duration::from_secs(600), Duration::from_secs(7200)]
        );
        assert_eq!(parse_delays(" 1d ").unwrap(), vec![Duration::from_secs(86_400)]);
        for (raw, needle) in [
            ("10x", "\"10x\" is not a delay"),
            ("ten m", "is not a delay"),
            ("10m,,2h", "an entry is empty"),
            ("30s", "out of range"),
            ("8d", "out of range"),
            ("10m,1h,2h,1d", "4 delays given, at most 3"),
            ("10\u{b5}", "is not a delay"),
        ] {
            let e = parse_delays(raw).unwrap_err();
            assert!(e.contains(needle), "{raw:?}: {e}");
        }
    }

    #[test]
    fn reasons_come_from_final_statuses_only() {
        assert_eq!(RetryReason::from_call_status("busy"), Some(RetryReason::Busy));
        assert_eq!(RetryReason::from_call_status("no-answer"), Some(RetryReason::NoAnswer));
        assert_eq!(RetryReason::from_call_status("failed"), Some(RetryReason::Failed));
        for s in ["completed", "canceled", "ringing", "in-progress"] {
            assert_eq!(RetryReason::from_call_status(s), None, "{s}");
        }
        assert_eq!(RetryReason::Voicemail.as_str(), "voicemail");
    }

    #[test]
    fn a_busy_line_at_12_55_in_paris_is_retried_at_14_00() {
        // Monday 7 December 2026, 12:55 Paris (UTC+1): +10 min falls in the lunch gap.
        let p = plan(&cfg("10m,2h"), &fr_mobile(), 1, datetime!(2026-12-07 11:55 UTC));
        assert_eq!(
            p,
            Plan::Retry {
                attempt: 2,
                requested_at: datetime!(2026-12-07 12:05 UTC),
                due_at: datetime!(2026-12-07 13:00 UTC)
            }
        );
        // The second retry, 2 h after a busy attempt 2 at 18:30, would be 20:30: next morning.
        let p = plan(&cfg("10m,2h"), &fr_mobile(), 2, datetime!(2026-12-07 17:30 UTC));
        assert_eq!(
            p,
            Plan::Retry {
                attempt: 3,
                requested_at: datetime!(2026-12-07 19:30 UTC),
                due_at: datetime!(2026-12-08 09:00 UTC)
            }
        );
        // Inside the hours: not moved.
        let p = plan(&cfg("10m"), &fr_mobile(), 1, datetime!(2026-12-07 09:00 UTC));
        assert!(matches!(p, Plan::Retry { requested_at, due_at, .. } if requested_at == due_at));
    }

    #[test]
    fn attempts_run_out() {
        let p = plan(&cfg("10m,2h"), &fr_mobile(), 3, datetime!(2026-12-07 09:00 UTC));
        assert!(
            matches!(&p, Plan::NoRetry(why) if why.contains("3 call(s) made, CALL_RETRY_DELAYS allows 2 retries")),
            "{p:?}"
        );
        let p = plan(&RetryConfig::default(), &fr_mobile(), 1, datetime!(2026-12-07 09:00 UTC));
        assert!(matches!(p, Plan::NoRetry(_)));
    }

    #[test]
    fn a_country_without_a_known_zone_gets_no_retry() {
        let us = phone::parse_phone("+1 202 555 0143", phonenumber::country::Id::FR).unwrap();
        let p = plan(&cfg("10m"), &us, 1, datetime!(2026-12-07 09:00 UTC));
        assert!(matches!(&p, Plan::NoRetry(why) if why.contains("no time zone is known for US")), "{p:?}");
    }
}
