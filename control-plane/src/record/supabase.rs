//! The reads of [`super::read`] through Supabase's REST API (PostgREST): plain `GET`s with
//! filters, the lists ordered and limited by PostgREST.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::call_view::{CallFacts, CallRows, EventRow, LeadName, StatusRow};
use super::{CallBrief, LeadDetail, LeadListItem};
use crate::cost::{CallFilter, CostRow};
use crate::store::StoreError;
use crate::store::supabase::SupabaseStore;

const CALL_BRIEF: &str = "id,lead_id,status,attempt,end_reason,duration_ms,outcome_summary,created_at";

fn eq(v: impl std::fmt::Display) -> String {
    format!("eq.{v}")
}

fn text(r: &Value, k: &str) -> Option<String> {
    r[k].as_str().map(str::to_owned)
}

fn uuid(r: &Value, k: &str) -> Option<Uuid> {
    r[k].as_str()?.parse().ok()
}

fn at(r: &Value, k: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(r[k].as_str()?, &Rfc3339).ok()
}

fn unreadable(what: &str) -> StoreError {
    StoreError::Other(format!("unreadable PostgREST row ({what})"))
}

fn call_brief(r: &Value) -> Option<CallBrief> {
    Some(CallBrief {
        id: uuid(r, "id")?,
        status: text(r, "status")?,
        attempt: r["attempt"].as_u64().and_then(|a| u32::try_from(a).ok()).unwrap_or(1),
        end_reason: text(r, "end_reason"),
        duration_ms: r["duration_ms"].as_i64(),
        outcome_summary: text(r, "outcome_summary"),
        created_at: at(r, "created_at")?,
    })
}

fn lead_detail(r: &Value) -> Option<LeadDetail> {
    Some(LeadDetail {
        id: uuid(r, "id")?,
        session_id: uuid(r, "session_id"),
        first_name: text(r, "first_name")?,
        last_name: text(r, "last_name")?,
        phone: text(r, "phone_e164")?,
        source: text(r, "source")?,
        consent_at: at(r, "consent_at")?,
        consent_text: text(r, "consent_text")?,
        created_at: at(r, "created_at")?,
        updated_at: at(r, "updated_at")?,
    })
}

/// The newest `limit` leads (numbers in clear), then their calls in one request.
pub async fn leads(s: &SupabaseStore, limit: u32) -> Result<Vec<LeadListItem>, StoreError> {
    let rows = s
        .rows(
            "leads",
            &[
                ("select", "id,first_name,last_name,phone_e164,source,consent_at,created_at".into()),
                ("order", "created_at.desc,id.asc".into()),
                ("limit", limit.to_string()),
            ],
        )
        .await?;
    let ids: Vec<String> = rows.iter().filter_map(|r| text(r, "id")).collect();
    let calls = if ids.is_empty() {
        Vec::new()
    } else {
        s.rows(
            "calls",
            &[
                ("select", CALL_BRIEF.into()),
                ("lead_id", format!("in.({})", ids.join(","))),
                ("order", "created_at.desc,id.desc".into()),
            ],
        )
        .await?
    };
    rows.iter()
        .map(|r| {
            let id = uuid(r, "id")?;
            let mine: Vec<&Value> = calls.iter().filter(|c| uuid(c, "lead_id") == Some(id)).collect();
            Some(LeadListItem {
                id,
                first_name: text(r, "first_name")?,
                last_name: text(r, "last_name")?,
                phone: text(r, "phone_e164")?,
                source: text(r, "source")?,
                consent_at: at(r, "consent_at")?,
                created_at: at(r, "created_at")?,
                calls: mine.len() as i64,
                last_call: mine.first().and_then(|c| call_brief(c)),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| unreadable("leads"))
}

/// A lead in full (number in clear) and its calls, newest first.
pub async fn lead(s: &SupabaseStore, id: Uuid) -> Result<Option<(LeadDetail, Vec<CallBrief>)>, StoreError> {
    let rows = s.rows("leads", &[("id", eq(id)), ("select", "*".into())]).await?;
    let Some(r) = rows.first() else { return Ok(None) };
    let lead = lead_detail(r).ok_or_else(|| unreadable("lead"))?;
    let calls = s
        .rows(
            "calls",
            &[
                ("select", CALL_BRIEF.into()),
                ("lead_id", eq(id)),
                ("order", "created_at.desc,id.desc".into()),
            ],
        )
        .await?;
    let calls =
        calls.iter().map(call_brief).collect::<Option<Vec<_>>>().ok_or_else(|| unreadable("calls"))?;
    Ok(Some((lead, calls)))
}

/// A call's rows: the call, its lead, its status timeline and its events.
pub async fn call(s: &SupabaseStore, id: Uuid) -> Result<Option<CallRows>, StoreError> {
    let rows = s.rows("calls", &[("id", eq(id)), ("select", "*".into())]).await?;
    let Some(c) = rows.first() else { return Ok(None) };
    let lead_id = uuid(c, "lead_id").ok_or_else(|| unreadable("call"))?;
    let leads =
        s.rows("leads", &[("id", eq(lead_id)), ("select", "first_name,last_name,phone_e164".into())]).await?;
    let l = leads.first().ok_or_else(|| StoreError::NotFound(format!("lead {lead_id}")))?;
    let statuses = s
        .rows(
            "call_status_events",
            &[("call_id", eq(id)), ("select", "status,source,detail,at".into()), ("order", "id.asc".into())],
        )
        .await?;
    let events = s
        .rows(
            "call_events",
            &[("call_id", eq(id)), ("select", "seq,payload,created_at".into()), ("order", "seq.asc".into())],
        )
        .await?;
    let read = || -> Option<CallRows> {
        Some(CallRows {
            call: CallFacts {
                id,
                lead_id,
                session_id: uuid(c, "session_id"),
                call_sid: text(c, "call_sid"),
                status: text(c, "status")?,
                attempt: c["attempt"].as_u64().and_then(|a| u32::try_from(a).ok()).unwrap_or(1),
                end_reason: text(c, "end_reason"),
                end_side: text(c, "end_side"),
                duration_ms: c["duration_ms"].as_i64(),
                created_at: at(c, "created_at")?,
                token_redeemed_at: at(c, "token_redeemed_at"),
            },
            web_summary: text(c, "summary")?,
            web_transcript: crate::store::web_transcript::decode(c["web_transcript"].as_str()),
            outcome_summary: text(c, "outcome_summary"),
            input_tokens: c["input_tokens"].as_i64().unwrap_or(0),
            output_tokens: c["output_tokens"].as_i64().unwrap_or(0),
            lead: LeadName {
                id: lead_id,
                first_name: text(l, "first_name")?,
                last_name: text(l, "last_name")?,
                phone: text(l, "phone_e164")?,
            },
            statuses: statuses
                .iter()
                .map(|r| {
                    Some(StatusRow {
                        status: text(r, "status")?,
                        source: text(r, "source")?,
                        detail: text(r, "detail"),
                        at: at(r, "at")?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            events: events
                .iter()
                .map(|r| {
                    Some(EventRow {
                        seq: r["seq"].as_i64()?,
                        payload: text(r, "payload")?,
                        created_at: at(r, "created_at")?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        })
    };
    read().map(Some).ok_or_else(|| unreadable("call"))
}

/// The calls `f` selects, newest first, with what their cost is computed from: the calls with
/// their lead's number, their `completed` callback and their `transfer-completed` line embedded
/// (one request, the status lines under two aliases).
pub async fn cost_rows(s: &SupabaseStore, f: CallFilter) -> Result<Vec<CostRow>, StoreError> {
    let select = format!(
        "id,lead_id,created_at,status,{},leads(phone_e164),completed:call_status_events(detail),transfer:call_status_events(detail)",
        crate::store::supabase::USAGE_COLUMNS
    );
    let mut query = vec![
        ("select", select),
        ("completed.status", "eq.completed".to_owned()),
        ("completed.source", "eq.twilio-call".to_owned()),
        ("completed.order", "id.asc".to_owned()),
        ("completed.limit", "1".to_owned()),
        ("transfer.status", "eq.transfer-completed".to_owned()),
        ("transfer.source", format!("eq.{}", crate::transfer::SOURCE)),
        ("transfer.order", "id.asc".to_owned()),
        ("transfer.limit", "1".to_owned()),
        ("order", "created_at.desc,id.desc".to_owned()),
        ("limit", f.limit.to_string()),
    ];
    if let Some(lead) = f.lead {
        query.push(("lead_id", eq(lead)));
    }
    if let Some(call) = f.call {
        query.push(("id", eq(call)));
    }
    if let Some(since) = f.since {
        let since = since
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        query.push(("created_at", format!("gte.{since}")));
    }
    let rows = s.rows("calls", &query).await?;
    let cost_row = |r: &Value| {
        let detail = |alias: &str| r[alias].as_array()?.first()?["detail"].as_str();
        Some(CostRow {
            call_id: uuid(r, "id")?,
            lead_id: uuid(r, "lead_id")?,
            phone_e164: r["leads"]["phone_e164"].as_str()?.to_owned(),
            created_at: at(r, "created_at")?,
            status: text(r, "status")?,
            usage: crate::store::supabase::usage_from_json(r),
            twilio_seconds: detail("completed").and_then(crate::cost::billed_seconds_in).unwrap_or(0),
            transfer_seconds: detail("transfer").and_then(crate::cost::transfer_seconds_in).unwrap_or(0),
        })
    };
    rows.iter().map(|r| cost_row(r).ok_or_else(|| unreadable("call cost"))).collect()
}
