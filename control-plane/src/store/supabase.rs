//! Supabase through its REST API (PostgREST), for deployments that only have `SUPABASE_URL` and
//! `SUPABASE_SERVICE_ROLE_KEY` (protocols.md D).
//!
//! - Keys: a legacy `service_role` JWT goes in `apikey` and `Authorization: Bearer`; a new
//!   `sb_secret_…` key goes in `apikey` only. Our User-Agent never looks like a browser (secret
//!   keys are refused from browsers).
//! - Errors are PostgREST's `{code, details, hint, message}`: 23505 (409) is a conflict, 23503
//!   (409) a missing parent, 42P01 / PGRST205 (404) a missing table, 08* / 5xx unavailability.
//! - PostgREST has no multi-statement transactions: each method is written so that a retry after
//!   a partial failure converges (idempotent steps, conditional `PATCH` filters). The schema is
//!   applied with `callway-control migrate` over a direct connection (`DATABASE_URL`).

use contract::internal_api::{CallEvent, TokenDetails};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::sql::{side_name, speaker_name};
use super::{
    Appended, CallRow, CallUsage, Erased, EventsWrite, Lead, LeadCorrection, NewCall, NewLead, Redeem,
    RedeemedCall,
};
use super::{NewRetry, RetryRow, StatusUpdate, StoreError, TimelineEntry, event_kind, status_rank};

/// User-Agent sent to Supabase (not a browser's).
pub const USER_AGENT: &str = concat!("callway-control/", env!("CARGO_PKG_VERSION"));

/// A PostgREST client over the service role.
#[derive(Clone)]
pub struct SupabaseStore {
    http: reqwest::Client,
    rest: String,
    key: String,
}

#[derive(Deserialize)]
struct PgrstError {
    code: Option<String>,
    message: Option<String>,
}

fn ts(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

fn eq(v: impl std::fmt::Display) -> String {
    format!("eq.{v}")
}

fn in_list(ids: &[Uuid]) -> String {
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("in.({})", list.join(","))
}

impl SupabaseStore {
    /// A client for the project at `url` (`https://<ref>.supabase.co`).
    pub fn new(http: reqwest::Client, url: &str, service_role_key: &str) -> Self {
        Self {
            http,
            rest: format!("{}/rest/v1", url.trim_end_matches('/')),
            key: service_role_key.to_owned(),
        }
    }

    /// Sends one request; returns the body of a 2xx, or the classified error.
    async fn call(
        &self,
        method: Method,
        table: &str,
        query: &[(&str, String)],
        prefer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<String, StoreError> {
        let mut req = self
            .http
            .request(method, format!("{}/{table}", self.rest))
            .query(query)
            .header("apikey", &self.key)
            .header("user-agent", USER_AGENT);
        if !self.key.starts_with("sb_") {
            req = req.bearer_auth(&self.key);
        }
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let res = req.send().await.map_err(|e| {
            StoreError::Unavailable(if e.is_timeout() {
                "Supabase timed out".into()
            } else {
                "Supabase unreachable".into()
            })
        })?;
        let status = res.status().as_u16();
        let text =
            res.text().await.map_err(|_| StoreError::Unavailable("Supabase answer cut short".into()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(classify(status, &text))
    }

    /// A `GET` of `table` with `query`, its rows as JSON (also for [`crate::record::supabase`]).
    pub(crate) async fn rows(&self, table: &str, query: &[(&str, String)]) -> Result<Vec<Value>, StoreError> {
        let text = self.call(Method::GET, table, query, None, None).await?;
        serde_json::from_str(&text).map_err(|e| StoreError::Other(format!("unreadable PostgREST rows: {e}")))
    }

    async fn count_deleted(&self, table: &str, query: &[(&str, String)]) -> Result<u64, StoreError> {
        let text = self.call(Method::DELETE, table, query, Some("return=representation"), None).await?;
        let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(rows.len() as u64)
    }

    /// Checks that the schema was applied (this backend cannot run DDL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let latest = super::postgres::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        let rows = self
            .rows(
                "callway_migrations",
                &[("select", "version".into()), ("order", "version.desc".into()), ("limit", "1".into())],
            )
            .await?;
        let have = rows.first().and_then(|r| r["version"].as_i64()).unwrap_or(0);
        if have < latest {
            return Err(StoreError::Schema(format!(
                "Supabase schema is at version {have}, this build needs {latest}: run `DATABASE_URL=<supabase connection string> callway-control migrate`"
            )));
        }
        Ok(())
    }

    /// A cheap read.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.rows("callway_migrations", &[("select", "version".into()), ("limit", "1".into())])
            .await
            .map(|_| ())
    }

    /// Insert, or on 23505 update the existing row (the id is derived from the session).
    pub async fn upsert_lead(&self, l: &NewLead) -> Result<(), StoreError> {
        let at = ts(l.at);
        let row = json!({
            "id": l.id, "session_id": l.session_id, "first_name": l.first_name, "last_name": l.last_name,
            "phone_e164": l.phone_e164, "source": l.source, "consent_at": at, "consent_text": l.consent_text,
            "created_at": at, "updated_at": at,
        });
        match self.call(Method::POST, "leads", &[], Some("return=minimal"), Some(&row)).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                let patch = json!({
                    "first_name": l.first_name, "last_name": l.last_name, "phone_e164": l.phone_e164,
                    "consent_at": at, "consent_text": l.consent_text, "updated_at": at,
                });
                self.call(Method::PATCH, "leads", &[("id", eq(l.id))], Some("return=minimal"), Some(&patch))
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// Patches the given fields.
    pub async fn correct_lead(&self, c: &LeadCorrection) -> Result<(), StoreError> {
        let mut patch = serde_json::Map::new();
        if let Some(v) = &c.first_name {
            patch.insert("first_name".into(), v.clone().into());
        }
        if let Some(v) = &c.last_name {
            patch.insert("last_name".into(), v.clone().into());
        }
        if let Some(v) = &c.phone_e164 {
            patch.insert("phone_e164".into(), v.clone().into());
        }
        patch.insert("updated_at".into(), ts(c.at).into());
        let text = self
            .call(
                Method::PATCH,
                "leads",
                &[("id", eq(c.lead_id)), ("select", "id".into())],
                Some("return=representation"),
                Some(&Value::Object(patch)),
            )
            .await?;
        if text.trim() == "[]" { Err(StoreError::NotFound(format!("lead {}", c.lead_id))) } else { Ok(()) }
    }

    /// A lead by id.
    pub async fn get_lead(&self, id: Uuid) -> Result<Option<Lead>, StoreError> {
        let rows = self
            .rows("leads", &[("id", eq(id)), ("select", "id,first_name,last_name,phone_e164".into())])
            .await?;
        Ok(rows.first().map(|r| Lead {
            id,
            first_name: r["first_name"].as_str().unwrap_or_default().to_owned(),
            last_name: r["last_name"].as_str().unwrap_or_default().to_owned(),
            phone_e164: r["phone_e164"].as_str().unwrap_or_default().to_owned(),
        }))
    }

    /// Inserts a call; 23505 on the one-active-call index is a conflict.
    pub async fn create_call(&self, c: &NewCall) -> Result<(), StoreError> {
        let at = ts(c.at);
        let row = json!({
            "id": c.id, "lead_id": c.lead_id, "session_id": c.session_id, "status": "created", "status_rank": 0,
            "summary": c.summary, "stream_nonce": c.stream_nonce, "token_expires_at": ts(c.token_expires_at),
            "created_at": at, "updated_at": at, "attempt": c.attempt,
            "web_transcript": super::web_transcript::encode(&c.web_transcript),
        });
        self.call(Method::POST, "calls", &[], Some("return=minimal"), Some(&row)).await.map(|_| ())
    }

    /// A call by id.
    pub async fn get_call(&self, id: Uuid) -> Result<Option<CallRow>, StoreError> {
        let rows = self.rows("calls", &[("id", eq(id)), ("select", CALL_COLUMNS.into())]).await?;
        Ok(rows.first().and_then(call_from_json))
    }

    /// The lead's call of attempt `attempt` that no retry points to yet, newest first.
    pub async fn unlinked_call_of_attempt(
        &self,
        lead_id: Uuid,
        attempt: u32,
    ) -> Result<Option<CallRow>, StoreError> {
        let calls = self
            .rows(
                "calls",
                &[
                    ("lead_id", eq(lead_id)),
                    ("attempt", eq(attempt)),
                    ("select", CALL_COLUMNS.into()),
                    ("order", "created_at.desc".into()),
                ],
            )
            .await?;
        let calls: Vec<CallRow> = calls.iter().filter_map(call_from_json).collect();
        if calls.is_empty() {
            return Ok(None);
        }
        let ids: Vec<Uuid> = calls.iter().map(|c| c.id).collect();
        let linked =
            self.rows("call_retries", &[("call_id", in_list(&ids)), ("select", "call_id".into())]).await?;
        let linked: Vec<Uuid> = linked.iter().filter_map(|r| r["call_id"].as_str()?.parse().ok()).collect();
        Ok(calls.into_iter().find(|c| !linked.contains(&c.id)))
    }

    /// Statuses, oldest first.
    pub async fn status_timeline(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        let rows = self
            .rows(
                "call_status_events",
                &[("call_id", eq(id)), ("select", "status".into()), ("order", "id.asc".into())],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| r["status"].as_str().map(str::to_owned)).collect())
    }

    /// Timeline row, then conditional patches (sid if none yet; status only forward).
    pub async fn record_status(&self, u: &StatusUpdate) -> Result<(), StoreError> {
        let at = ts(u.at);
        let row = json!({"call_id": u.call_id, "status": u.status, "source": u.source, "detail": u.detail, "at": at});
        self.call(Method::POST, "call_status_events", &[], Some("return=minimal"), Some(&row)).await?;
        if let Some(sid) = &u.call_sid {
            let patch = json!({"call_sid": sid, "updated_at": at});
            self.call(
                Method::PATCH,
                "calls",
                &[("id", eq(u.call_id)), ("call_sid", "is.null".into())],
                Some("return=minimal"),
                Some(&patch),
            )
            .await?;
        }
        let rank = if u.source == "twilio-stream" { None } else { status_rank(&u.status) };
        if let Some(rank) = rank {
            let patch = json!({"status": u.status, "status_rank": rank, "updated_at": at});
            self.call(
                Method::PATCH,
                "calls",
                &[("id", eq(u.call_id)), ("status_rank", format!("lt.{rank}"))],
                Some("return=minimal"),
                Some(&patch),
            )
            .await?;
        }
        Ok(())
    }

    /// `PATCH … token_redeemed_at=is.null` returning the row: PostgREST runs it as one
    /// `UPDATE … WHERE … RETURNING`, so it is as atomic as the SQL backend's.
    pub async fn redeem(
        &self,
        call_id: Uuid,
        nonce: &str,
        call_sid: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<Redeem, StoreError> {
        let at = ts(at);
        let mut patch = json!({"token_redeemed_at": at, "updated_at": at});
        if let Some(sid) = call_sid {
            patch["call_sid"] = sid.into();
        }
        let text = self
            .call(
                Method::PATCH,
                "calls",
                &[
                    ("id", eq(call_id)),
                    ("stream_nonce", eq(nonce)),
                    ("token_redeemed_at", "is.null".into()),
                    ("select", "lead_id,summary,call_sid,web_transcript".into()),
                ],
                Some("return=representation"),
                Some(&patch),
            )
            .await?;
        let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| StoreError::Other(e.to_string()))?;
        match rows.first() {
            Some(r) => {
                let lead_id: Uuid = r["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default();
                let summary = r["summary"].as_str().unwrap_or_default().to_owned();
                let call_sid = r["call_sid"].as_str().map(str::to_owned);
                let web_transcript = super::web_transcript::decode(r["web_transcript"].as_str());
                let lead =
                    self.rows("leads", &[("id", eq(lead_id)), ("select", "first_name".into())]).await?;
                let first_name =
                    lead.first().and_then(|l| l["first_name"].as_str()).unwrap_or_default().to_owned();
                Ok(Redeem::Redeemed(RedeemedCall {
                    call_id,
                    lead_id,
                    first_name,
                    summary,
                    call_sid,
                    web_transcript,
                }))
            }
            None => {
                let exists = self
                    .rows(
                        "calls",
                        &[("id", eq(call_id)), ("stream_nonce", eq(nonce)), ("select", "id".into())],
                    )
                    .await?;
                Ok(if exists.is_empty() { Redeem::Unknown } else { Redeem::AlreadyRedeemed })
            }
        }
    }

    /// Inserts with `resolution=ignore-duplicates`; aggregates only for rows actually inserted.
    pub async fn append_events(&self, b: &EventsWrite) -> Result<Appended, StoreError> {
        let at = ts(b.at);
        let rows: Vec<Value> = b
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (speaker, text) = match e {
                    CallEvent::Transcript { speaker, text, .. } => (Some(speaker_name(*speaker)), Some(text.as_str())),
                    _ => (None, None),
                };
                json!({"call_id": b.call_id, "seq": b.seq + i as u64, "kind": event_kind(e), "speaker": speaker,
                       "text": text, "payload": serde_json::to_string(e).unwrap_or_default(), "created_at": at})
            })
            .collect();
        let text = self
            .call(
                Method::POST,
                "call_events",
                &[("on_conflict", "call_id,seq".into()), ("select", "seq".into())],
                Some("resolution=ignore-duplicates,return=representation"),
                Some(&Value::Array(rows)),
            )
            .await?;
        let inserted: Vec<Value> =
            serde_json::from_str(&text).map_err(|e| StoreError::Other(e.to_string()))?;
        let new_seqs: Vec<u64> = inserted.iter().filter_map(|r| r["seq"].as_u64()).collect();
        let fresh: Vec<&CallEvent> = b
            .events
            .iter()
            .enumerate()
            .filter(|(i, _)| new_seqs.contains(&(b.seq + *i as u64)))
            .map(|(_, e)| e)
            .collect();
        let ended = fresh.iter().rev().find_map(|e| match e {
            CallEvent::Ended { side, reason, duration_ms } => Some((side, reason, duration_ms)),
            _ => None,
        });
        let counted = |e: &&CallEvent| {
            matches!(e, CallEvent::Usage { .. } | CallEvent::LiveUsage { .. } | CallEvent::Engine { .. })
        };
        let mut appended = Appended {
            call_id: b.call_id,
            inserted: fresh.len() as u64,
            before: CallUsage::default(),
            after: CallUsage::default(),
        };
        if !fresh.iter().any(counted) && ended.is_none() {
            return Ok(appended);
        }
        let (_, before) = self
            .call_usage(b.call_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("call {}", b.call_id)))?;
        let mut after = before.clone();
        for e in &fresh {
            after.add(e);
        }
        let mut patch = serde_json::Map::new();
        if after != before {
            let d = &after.details;
            for (column, n) in [
                ("input_tokens", after.input_tokens),
                ("output_tokens", after.output_tokens),
                ("input_audio_tokens", d.input_audio_tokens),
                ("input_cached_tokens", d.input_cached_tokens),
                ("input_cached_audio_tokens", d.input_cached_audio_tokens),
                ("output_audio_tokens", d.output_audio_tokens),
            ] {
                patch.insert(column.into(), i64::try_from(n).unwrap_or(i64::MAX).into());
            }
            patch.insert("live_seconds".into(), after.live_seconds.into());
            patch.insert("engine_api".into(), after.engine_api.clone().into());
            patch.insert("engine_model".into(), after.engine_model.clone().into());
        }
        if let Some((side, reason, duration_ms)) = ended {
            patch.insert("end_reason".into(), reason.as_str().into());
            patch.insert("end_side".into(), side_name(*side).into());
            patch.insert("duration_ms".into(), (*duration_ms).into());
        }
        if !patch.is_empty() {
            self.call(
                Method::PATCH,
                "calls",
                &[("id", eq(b.call_id))],
                Some("return=minimal"),
                Some(&Value::Object(patch)),
            )
            .await?;
        }
        (appended.before, appended.after) = (before, after);
        Ok(appended)
    }

    /// What a call's cost is computed from, with its lead.
    pub async fn call_usage(&self, id: Uuid) -> Result<Option<(Uuid, CallUsage)>, StoreError> {
        let rows =
            self.rows("calls", &[("id", eq(id)), ("select", format!("lead_id,{USAGE_COLUMNS}"))]).await?;
        Ok(rows.first().and_then(|r| Some((r["lead_id"].as_str()?.parse().ok()?, usage_from_json(r)))))
    }

    /// Ended calls (updated in `[since, until]`) with a transcript and no summary: the calls
    /// embedding their transcript lines (`call_events!inner`), so calls without one drop out.
    pub async fn calls_awaiting_summary(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        let rows = self
            .rows(
                "calls",
                &[
                    ("select", "id,call_events!inner(kind)".into()),
                    ("outcome_summary", "is.null".into()),
                    ("end_reason", "not.is.null".into()),
                    // Values with PostgREST's reserved characters (`:`) are quoted in a logic tree.
                    ("and", format!("(updated_at.gte.\"{}\",updated_at.lte.\"{}\")", ts(since), ts(until))),
                    ("call_events.kind", "eq.transcript".into()),
                    ("call_events.limit", "1".into()),
                    ("order", "updated_at.asc".into()),
                    ("limit", limit.to_string()),
                ],
            )
            .await?;
        Ok(rows.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect())
    }

    /// `PATCH calls?id=eq.<id>` with the end-of-call summary.
    pub async fn set_outcome_summary(
        &self,
        call_id: Uuid,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = ts(at);
        let patch = json!({"outcome_summary": text, "outcome_summary_at": at, "updated_at": at});
        let body = self
            .call(
                Method::PATCH,
                "calls",
                &[("id", eq(call_id)), ("select", "id".into())],
                Some("return=representation"),
                Some(&patch),
            )
            .await?;
        if body.trim() == "[]" { Err(StoreError::NotFound(format!("call {call_id}"))) } else { Ok(()) }
    }

    /// `PATCH calls?id=eq.<id>&or=(transfer_lease_until.is.null,transfer_lease_until.lt.<now>)`
    /// returning the row: PostgREST runs it as one conditional `UPDATE`.
    pub async fn claim_transfer(
        &self,
        call_id: Uuid,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let patch = json!({"transfer_lease_until": ts(until)});
        let text = self
            .call(
                Method::PATCH,
                "calls",
                &[
                    ("id", eq(call_id)),
                    ("or", format!("(transfer_lease_until.is.null,transfer_lease_until.lt.{})", ts(now))),
                    ("select", "id".into()),
                ],
                Some("return=representation"),
                Some(&patch),
            )
            .await?;
        if text.trim() != "[]" {
            return Ok(true);
        }
        let exists = self.rows("calls", &[("id", eq(call_id)), ("select", "id".into())]).await?;
        if exists.is_empty() { Err(StoreError::NotFound(format!("call {call_id}"))) } else { Ok(false) }
    }

    /// `PATCH calls?id=eq.<id>` with `transfer_lease_until: null`.
    pub async fn release_transfer(&self, call_id: Uuid) -> Result<(), StoreError> {
        let patch = json!({"transfer_lease_until": null});
        self.call(Method::PATCH, "calls", &[("id", eq(call_id))], Some("return=minimal"), Some(&patch))
            .await
            .map(drop)
    }

    /// `DELETE call_events?kind=eq.transcript&created_at=lt.<ts>`, then the web conversations
    /// of the calls asked for before then (`PATCH calls` with `web_transcript: null`, their
    /// lines counted first). Returns how many lines went.
    pub async fn purge_transcripts(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let phone = self
            .count_deleted(
                "call_events",
                &[
                    ("kind", "eq.transcript".into()),
                    ("created_at", format!("lt.{}", ts(before))),
                    ("select", "seq".into()),
                ],
            )
            .await?;
        let old =
            [("web_transcript", "not.is.null".to_owned()), ("created_at", format!("lt.{}", ts(before)))];
        let mut read = old.to_vec();
        read.push(("select", "web_transcript".into()));
        let web: u64 = self
            .rows("calls", &read)
            .await?
            .iter()
            .map(|r| super::web_transcript::decode(r["web_transcript"].as_str()).len() as u64)
            .sum();
        if web > 0 {
            let patch = json!({"web_transcript": null});
            self.call(Method::PATCH, "calls", &old, Some("return=minimal"), Some(&patch)).await?;
        }
        Ok(phone + web)
    }

    /// The ids of the leads with this number and of their calls.
    pub async fn ids_for_phone(&self, phone_e164: &str) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
        let leads = self.rows("leads", &[("phone_e164", eq(phone_e164)), ("select", "id".into())]).await?;
        let lead_ids: Vec<Uuid> = leads.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
        if lead_ids.is_empty() {
            return Ok((lead_ids, Vec::new()));
        }
        let calls = self.rows("calls", &[("lead_id", in_list(&lead_ids)), ("select", "id".into())]).await?;
        let call_ids = calls.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
        Ok((lead_ids, call_ids))
    }

    /// Children first, each delete idempotent, so a retry after a partial failure completes it.
    pub async fn erase_phone(&self, phone_e164: &str) -> Result<Erased, StoreError> {
        let leads = self.rows("leads", &[("phone_e164", eq(phone_e164)), ("select", "id".into())]).await?;
        let lead_ids: Vec<Uuid> = leads.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
        let mut out = Erased::default();
        if lead_ids.is_empty() {
            return Ok(out);
        }
        out.retries = self
            .count_deleted("call_retries", &[("lead_id", in_list(&lead_ids)), ("select", "id".into())])
            .await?;
        let calls = self.rows("calls", &[("lead_id", in_list(&lead_ids)), ("select", "id".into())]).await?;
        let call_ids: Vec<Uuid> = calls.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
        if !call_ids.is_empty() {
            out.call_events = self
                .count_deleted("call_events", &[("call_id", in_list(&call_ids)), ("select", "seq".into())])
                .await?;
            out.call_status_events = self
                .count_deleted(
                    "call_status_events",
                    &[("call_id", in_list(&call_ids)), ("select", "id".into())],
                )
                .await?;
            out.calls =
                self.count_deleted("calls", &[("id", in_list(&call_ids)), ("select", "id".into())]).await?;
        }
        out.leads =
            self.count_deleted("leads", &[("id", in_list(&lead_ids)), ("select", "id".into())]).await?;
        Ok(out)
    }

    /// `POST call_retries?on_conflict=after_call_id` ignoring duplicates: `true` if inserted.
    pub async fn schedule_retry(&self, r: &NewRetry) -> Result<bool, StoreError> {
        let at = ts(r.at);
        let row = json!({
            "id": r.id, "lead_id": r.lead_id, "after_call_id": r.after_call_id, "attempt": r.attempt,
            "reason": r.reason, "state": "scheduled", "requested_at": ts(r.requested_at), "due_at": ts(r.due_at),
            "created_at": at, "updated_at": at,
        });
        let text = self
            .call(
                Method::POST,
                "call_retries",
                &[("on_conflict", "after_call_id".into()), ("select", "id".into())],
                Some("resolution=ignore-duplicates,return=representation"),
                Some(&row),
            )
            .await?;
        let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(!rows.is_empty())
    }

    /// The call's attempt number; 1 for an unknown call.
    pub async fn attempt_of_call(&self, call_id: Uuid) -> Result<u32, StoreError> {
        let rows = self.rows("calls", &[("id", eq(call_id)), ("select", "attempt".into())]).await?;
        Ok(rows.first().and_then(|r| r["attempt"].as_u64()).and_then(|a| u32::try_from(a).ok()).unwrap_or(1))
    }

    /// Due ids, then one conditional `PATCH … state=eq.scheduled` each: PostgREST runs it as one
    /// `UPDATE … WHERE … RETURNING`, so of two workers racing for a row one gets it.
    pub async fn claim_due_retries(
        &self,
        now: OffsetDateTime,
        worker: &str,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        let now = ts(now);
        let due = self
            .rows(
                "call_retries",
                &[
                    ("state", "eq.scheduled".into()),
                    ("due_at", format!("lte.{now}")),
                    ("order", "due_at.asc".into()),
                    ("limit", limit.to_string()),
                    ("select", "id".into()),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for id in due.iter().filter_map(|r| r["id"].as_str()) {
            let patch =
                json!({"state": "placing", "claimed_by": worker, "claimed_at": now, "updated_at": now});
            out.extend(
                self.patch_retries(&[("id", format!("eq.{id}")), ("state", "eq.scheduled".into())], &patch)
                    .await?,
            );
        }
        Ok(out)
    }

    async fn patch_retries(
        &self,
        filter: &[(&str, String)],
        patch: &Value,
    ) -> Result<Vec<RetryRow>, StoreError> {
        let mut query = filter.to_vec();
        query.push(("select", RETRY_COLUMNS.into()));
        let text = self
            .call(Method::PATCH, "call_retries", &query, Some("return=representation"), Some(patch))
            .await?;
        let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(rows.iter().filter_map(retry_from_json).collect())
    }

    /// `placing` → `scheduled` at `due_at`.
    pub async fn reschedule_retry(
        &self,
        id: Uuid,
        due_at: OffsetDateTime,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let patch = json!({"state": "scheduled", "due_at": ts(due_at), "detail": detail, "claimed_by": null,
                           "claimed_at": null, "updated_at": ts(at)});
        let rows = self.patch_retries(&[("id", eq(id)), ("state", "eq.placing".into())], &patch).await?;
        Ok(!rows.is_empty())
    }

    /// `placing` → `state`.
    pub async fn finish_retry(
        &self,
        id: Uuid,
        state: &str,
        call_id: Option<Uuid>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let patch = json!({"state": state, "call_id": call_id, "detail": detail, "updated_at": ts(at)});
        let rows = self.patch_retries(&[("id", eq(id)), ("state", "eq.placing".into())], &patch).await?;
        Ok(!rows.is_empty())
    }

    /// `scheduled` → `cancelled` for a lead or the leads of a number.
    pub async fn cancel_retries(
        &self,
        lead_id: Option<Uuid>,
        phone_e164: Option<&str>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<RetryRow>, StoreError> {
        let mut leads: Vec<Uuid> = lead_id.into_iter().collect();
        if let Some(phone) = phone_e164 {
            let rows = self.rows("leads", &[("phone_e164", eq(phone)), ("select", "id".into())]).await?;
            leads.extend(rows.iter().filter_map(|r| r["id"].as_str()?.parse::<Uuid>().ok()));
        }
        if leads.is_empty() {
            return Ok(Vec::new());
        }
        let patch = json!({"state": "cancelled", "detail": detail, "updated_at": ts(at)});
        self.patch_retries(&[("lead_id", in_list(&leads)), ("state", "eq.scheduled".into())], &patch).await
    }

    /// Retries left `placing` since before `claimed_before`, oldest first.
    pub async fn stuck_retries(
        &self,
        claimed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        let rows = self
            .rows(
                "call_retries",
                &[
                    ("state", "eq.placing".into()),
                    ("claimed_at", format!("lte.{}", ts(claimed_before))),
                    ("select", RETRY_COLUMNS.into()),
                    ("order", "claimed_at.asc".into()),
                    ("limit", limit.to_string()),
                ],
            )
            .await?;
        Ok(rows.iter().filter_map(retry_from_json).collect())
    }

    /// A lead's retries, oldest first.
    pub async fn retries_for_lead(&self, lead_id: Uuid) -> Result<Vec<RetryRow>, StoreError> {
        let rows = self
            .rows(
                "call_retries",
                &[
                    ("lead_id", eq(lead_id)),
                    ("select", RETRY_COLUMNS.into()),
                    ("order", "attempt.asc,created_at.asc".into()),
                ],
            )
            .await?;
        Ok(rows.iter().filter_map(retry_from_json).collect())
    }

    /// The statuses of the lead's calls, in time order.
    pub async fn lead_timeline(&self, lead_id: Uuid) -> Result<Vec<TimelineEntry>, StoreError> {
        let calls = self.rows("calls", &[("lead_id", eq(lead_id)), ("select", "id".into())]).await?;
        let ids: Vec<Uuid> = calls.iter().filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .rows(
                "call_status_events",
                &[
                    ("call_id", in_list(&ids)),
                    ("select", "call_id,status,source,detail,at".into()),
                    ("order", "at.asc,id.asc".into()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(TimelineEntry {
                    call_id: r["call_id"].as_str()?.parse().ok()?,
                    status: r["status"].as_str()?.to_owned(),
                    source: r["source"].as_str()?.to_owned(),
                    detail: r["detail"].as_str().map(str::to_owned),
                    at: OffsetDateTime::parse(r["at"].as_str()?, &Rfc3339).ok()?,
                })
            })
            .collect())
    }
}

/// The columns of a [`RetryRow`].
const CALL_COLUMNS: &str =
    "id,lead_id,session_id,call_sid,status,end_reason,input_tokens,output_tokens,summary,web_transcript";

fn call_from_json(r: &Value) -> Option<CallRow> {
    Some(CallRow {
        id: r["id"].as_str()?.parse().ok()?,
        lead_id: r["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
        session_id: r["session_id"].as_str().and_then(|s| s.parse().ok()),
        call_sid: r["call_sid"].as_str().map(str::to_owned),
        status: r["status"].as_str().unwrap_or_default().to_owned(),
        end_reason: r["end_reason"].as_str().map(str::to_owned),
        input_tokens: r["input_tokens"].as_i64().unwrap_or(0),
        output_tokens: r["output_tokens"].as_i64().unwrap_or(0),
        summary: r["summary"].as_str().unwrap_or_default().to_owned(),
        web_transcript: super::web_transcript::decode(r["web_transcript"].as_str()),
    })
}

/// The columns of a [`CallUsage`].
pub(crate) const USAGE_COLUMNS: &str = "input_tokens,output_tokens,input_audio_tokens,input_cached_tokens,\
    input_cached_audio_tokens,output_audio_tokens,live_seconds,engine_api,engine_model";

/// A [`CallUsage`] from a row with [`USAGE_COLUMNS`] (a missing count reads as 0).
pub(crate) fn usage_from_json(r: &Value) -> CallUsage {
    let n = |c: &str| r[c].as_u64().unwrap_or(0);
    CallUsage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        details: TokenDetails {
            input_audio_tokens: n("input_audio_tokens"),
            input_cached_tokens: n("input_cached_tokens"),
            input_cached_audio_tokens: n("input_cached_audio_tokens"),
            output_audio_tokens: n("output_audio_tokens"),
        },
        live_seconds: r["live_seconds"].as_f64().unwrap_or(0.0),
        engine_api: r["engine_api"].as_str().map(str::to_owned),
        engine_model: r["engine_model"].as_str().map(str::to_owned),
    }
}

const RETRY_COLUMNS: &str = "id,lead_id,after_call_id,attempt,reason,state,due_at,call_id,detail";

fn retry_from_json(r: &Value) -> Option<RetryRow> {
    Some(RetryRow {
        id: r["id"].as_str()?.parse().ok()?,
        lead_id: r["lead_id"].as_str()?.parse().ok()?,
        after_call_id: r["after_call_id"].as_str()?.parse().ok()?,
        attempt: u32::try_from(r["attempt"].as_u64()?).ok()?,
        reason: r["reason"].as_str()?.to_owned(),
        state: r["state"].as_str()?.to_owned(),
        due_at: OffsetDateTime::parse(r["due_at"].as_str()?, &Rfc3339).ok()?,
        call_id: r["call_id"].as_str().and_then(|s| s.parse().ok()),
        detail: r["detail"].as_str().map(str::to_owned),
    })
}

/// Maps a PostgREST error answer (protocols.md D).
pub fn classify(status: u16, body: &str) -> StoreError {
    let e: Option<PgrstError> = serde_json::from_str(body).ok();
    let code = e.as_ref().and_then(|e| e.code.clone()).unwrap_or_default();
    let message = e.and_then(|e| e.message).unwrap_or_default();
    match (status, code.as_str()) {
        (_, "23505") => StoreError::Conflict(message),
        (_, "23503") => StoreError::NotFound(message),
        (_, "42P01" | "PGRST205") | (404, _) => StoreError::Schema(format!("{code}: {message}")),
        (_, c) if c.starts_with("08") => StoreError::Unavailable(format!("{code}: {message}")),
        (401 | 403, _) | (_, "42501") => StoreError::Other(format!(
            "Supabase refused SUPABASE_SERVICE_ROLE_KEY or the grants are missing (HTTP {status}, {code}): {message}"
        )),
        (500..=599, _) => StoreError::Unavailable(format!("HTTP {status} {code}: {message}")),
        _ => StoreError::Other(format!("HTTP {status} {code}: {message}")),
    }
}
