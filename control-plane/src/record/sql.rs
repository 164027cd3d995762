//! The reads of [`super::read`] on PostgreSQL and SQLite (one text for both, as in
//! [`crate::store::sql`]): read-only, no transaction needed (each read is one consistent
//! statement, or a few whose rows only grow).

use sqlx::Row;
use uuid::Uuid;

use super::call_view::{CallFacts, CallRows, EventRow, LeadName, StatusRow};
use super::{CallBrief, LeadDetail, LeadListItem};
use crate::cost::{CallFilter, CostRow};
use crate::store::StoreError;
use crate::store::sql::{SqlStore, map_err, on_pool};

/// Reads a [`CallBrief`] from the named columns of a row, `None` when the id is NULL (a lead
/// without calls); a macro, since the row types differ between backends.
macro_rules! call_brief {
    ($r:expr, $id:literal, $status:literal, $attempt:literal, $reason:literal, $duration:literal, $summary:literal, $at:literal) => {
        (|| -> Result<Option<CallBrief>, sqlx::Error> {
            let Some(id) = $r.try_get::<Option<Uuid>, _>($id)? else { return Ok(None) };
            Ok(Some(CallBrief {
                id,
                status: $r.try_get($status)?,
                attempt: u32::try_from($r.try_get::<i32, _>($attempt)?).unwrap_or(1),
                end_reason: $r.try_get($reason)?,
                duration_ms: $r.try_get($duration)?,
                outcome_summary: $r.try_get($summary)?,
                created_at: $r.try_get($at)?,
            }))
        })()
    };
}

/// The newest `limit` leads (numbers in clear) with their call count and latest call.
pub async fn leads(s: &SqlStore, limit: u32) -> Result<Vec<LeadListItem>, StoreError> {
    const Q: &str = "SELECT l.id, l.first_name, l.last_name, l.phone_e164, l.source, l.consent_at, l.created_at, \
        (SELECT COUNT(*) FROM calls n WHERE n.lead_id = l.id) AS calls, \
        c.id AS call_id, c.status AS call_status, c.attempt AS call_attempt, c.end_reason AS call_end_reason, \
        c.duration_ms AS call_duration_ms, c.outcome_summary AS call_outcome_summary, c.created_at AS call_created_at \
        FROM leads l LEFT JOIN calls c ON c.id = \
        (SELECT c2.id FROM calls c2 WHERE c2.lead_id = l.id ORDER BY c2.created_at DESC, c2.id DESC LIMIT 1) \
        ORDER BY l.created_at DESC, l.id LIMIT $1";
    on_pool!(&s.pool, p => {
        let rows = sqlx::query(Q).bind(i64::from(limit)).fetch_all(p).await.map_err(map_err)?;
        rows.iter().map(|r| -> Result<LeadListItem, sqlx::Error> {
            let last_call = call_brief!(r, "call_id", "call_status", "call_attempt", "call_end_reason", "call_duration_ms", "call_outcome_summary", "call_created_at")?;
            Ok(LeadListItem {
                id: r.try_get("id")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                phone: r.try_get("phone_e164")?,
                source: r.try_get("source")?,
                consent_at: r.try_get("consent_at")?,
                created_at: r.try_get("created_at")?,
                calls: r.try_get("calls")?,
                last_call,
            })
        }).collect::<Result<Vec<_>, _>>().map_err(map_err)
    })
}

/// A lead in full (number in clear) and its calls, newest first.
pub async fn lead(s: &SqlStore, id: Uuid) -> Result<Option<(LeadDetail, Vec<CallBrief>)>, StoreError> {
    const LEAD: &str = "SELECT id, session_id, first_name, last_name, phone_e164, source, consent_at, consent_text, created_at, updated_at \
        FROM leads WHERE id = $1";
    const CALLS: &str = "SELECT id, status, attempt, end_reason, duration_ms, outcome_summary, created_at FROM calls \
        WHERE lead_id = $1 ORDER BY created_at DESC, id DESC";
    on_pool!(&s.pool, p => {
        let Some(r) = sqlx::query(LEAD).bind(id).fetch_optional(p).await.map_err(map_err)? else {
            return Ok(None);
        };
        let lead = (|| -> Result<LeadDetail, sqlx::Error> {
            Ok(LeadDetail {
                id: r.try_get("id")?,
                session_id: r.try_get("session_id")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                phone: r.try_get("phone_e164")?,
                source: r.try_get("source")?,
                consent_at: r.try_get("consent_at")?,
                consent_text: r.try_get("consent_text")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })().map_err(map_err)?;
        let rows = sqlx::query(CALLS).bind(id).fetch_all(p).await.map_err(map_err)?;
        let calls = rows.iter()
            .map(|r| call_brief!(r, "id", "status", "attempt", "end_reason", "duration_ms", "outcome_summary", "created_at"))
            .filter_map(Result::transpose)
            .collect::<Result<Vec<_>, _>>().map_err(map_err)?;
        Ok(Some((lead, calls)))
    })
}

/// A call's rows: the call, its lead, its status timeline and its events.
pub async fn call(s: &SqlStore, id: Uuid) -> Result<Option<CallRows>, StoreError> {
    const CALL: &str = "SELECT c.id, c.lead_id, c.session_id, c.call_sid, c.status, c.attempt, c.summary, c.end_reason, \
        c.end_side, c.duration_ms, c.input_tokens, c.output_tokens, c.created_at, c.token_redeemed_at, c.outcome_summary, c.web_transcript, \
        l.first_name, l.last_name, l.phone_e164 \
        FROM calls c JOIN leads l ON l.id = c.lead_id WHERE c.id = $1";
    const STATUSES: &str =
        "SELECT status, source, detail, at FROM call_status_events WHERE call_id = $1 ORDER BY id";
    const EVENTS: &str = "SELECT seq, payload, created_at FROM call_events WHERE call_id = $1 ORDER BY seq";
    on_pool!(&s.pool, p => {
        let Some(r) = sqlx::query(CALL).bind(id).fetch_optional(p).await.map_err(map_err)? else {
            return Ok(None);
        };
        let mut rows = (|| -> Result<CallRows, sqlx::Error> {
            let lead_id: Uuid = r.try_get("lead_id")?;
            Ok(CallRows {
                call: CallFacts {
                    id: r.try_get("id")?,
                    lead_id,
                    session_id: r.try_get("session_id")?,
                    call_sid: r.try_get("call_sid")?,
                    status: r.try_get("status")?,
                    attempt: u32::try_from(r.try_get::<i32, _>("attempt")?).unwrap_or(1),
                    end_reason: r.try_get("end_reason")?,
                    end_side: r.try_get("end_side")?,
                    duration_ms: r.try_get("duration_ms")?,
                    created_at: r.try_get("created_at")?,
                    token_redeemed_at: r.try_get("token_redeemed_at")?,
                },
                web_summary: r.try_get("summary")?,
                web_transcript: crate::store::web_transcript::decode(
                    r.try_get::<Option<String>, _>("web_transcript")?.as_deref(),
                ),
                outcome_summary: r.try_get("outcome_summary")?,
                input_tokens: r.try_get("input_tokens")?,
                output_tokens: r.try_get("output_tokens")?,
                lead: LeadName {
                    id: lead_id,
                    first_name: r.try_get("first_name")?,
                    last_name: r.try_get("last_name")?,
                    phone: r.try_get("phone_e164")?,
                },
                statuses: Vec::new(),
                events: Vec::new(),
            })
        })().map_err(map_err)?;
        rows.statuses = sqlx::query(STATUSES).bind(id).fetch_all(p).await.map_err(map_err)?
            .iter()
            .map(|r| -> Result<StatusRow, sqlx::Error> {
                Ok(StatusRow { status: r.try_get("status")?, source: r.try_get("source")?, detail: r.try_get("detail")?, at: r.try_get("at")? })
            })
            .collect::<Result<Vec<_>, _>>().map_err(map_err)?;
        rows.events = sqlx::query(EVENTS).bind(id).fetch_all(p).await.map_err(map_err)?
            .iter()
            .map(|r| -> Result<EventRow, sqlx::Error> {
                Ok(EventRow { seq: r.try_get("seq")?, payload: r.try_get("payload")?, created_at: r.try_get("created_at")? })
            })
            .collect::<Result<Vec<_>, _>>().map_err(map_err)?;
        Ok(Some(rows))
    })
}

/// The calls `f` selects, newest first, with what their cost is computed from (numbers in
/// clear; Twilio's `CallDuration` from the first `completed` callback, the transferred leg's
/// `DialCallDuration` from the `transfer-completed` line).
pub async fn cost_rows(s: &SqlStore, f: CallFilter) -> Result<Vec<CostRow>, StoreError> {
    const Q: &str = concat!(
        "SELECT c.id, c.lead_id, l.phone_e164, c.created_at, c.status, ",
        crate::store::sql::usage_columns!(),
        ", (SELECT e.detail FROM call_status_events e WHERE e.call_id = c.id AND e.status = 'completed' \
           AND e.source = 'twilio-call' ORDER BY e.id LIMIT 1) AS completed_detail, \
         (SELECT e.detail FROM call_status_events e WHERE e.call_id = c.id AND e.status = 'transfer-completed' \
           AND e.source = $5 ORDER BY e.id LIMIT 1) AS transfer_detail \
         FROM calls c JOIN leads l ON l.id = c.lead_id \
         WHERE ($1 IS NULL OR c.lead_id = $1) AND ($2 IS NULL OR c.id = $2) AND ($3 IS NULL OR c.created_at >= $3) \
         ORDER BY c.created_at DESC, c.id DESC LIMIT $4"
    );
    let since = f.since.map(|t| t.to_offset(time::UtcOffset::UTC));
    let limit = i64::from(f.limit);
    on_pool!(&s.pool, p => {
        let rows = sqlx::query(Q).bind(f.lead).bind(f.call).bind(since).bind(limit).bind(crate::transfer::SOURCE)
            .fetch_all(p).await.map_err(map_err)?;
        rows.iter().map(|r| -> Result<CostRow, sqlx::Error> {
            let detail: Option<String> = r.try_get("completed_detail")?;
            let transfer: Option<String> = r.try_get("transfer_detail")?;
            Ok(CostRow {
                call_id: r.try_get("id")?,
                lead_id: r.try_get("lead_id")?,
                phone_e164: r.try_get("phone_e164")?,
                created_at: r.try_get("created_at")?,
                status: r.try_get("status")?,
                usage: crate::store::sql::usage_row!(r)?,
                twilio_seconds: detail.as_deref().and_then(crate::cost::billed_seconds_in).unwrap_or(0),
                transfer_seconds: transfer.as_deref().and_then(crate::cost::transfer_seconds_in).unwrap_or(0),
            })
        }).collect::<Result<Vec<_>, _>>().map_err(map_err)
    })
}
