//! The internal API the gateway calls (types and paths in `contract::internal_api`). Every
//! request is authenticated with `InternalAuth` (HMAC over timestamp, method, path and the raw
//! body) before its body is even parsed.
//!
//! - redeem: verify the stream token (signature, expiry), then mark it used in the database in
//!   one conditional `UPDATE`: single use across every gateway → `CallContext`;
//! - tools: `save_lead` (a correction during the call), `end_call` (Twilio hang-up),
//!   `transfer_to_human` (warm transfer, [`crate::transfer`]);
//! - events: transcripts, usage, end of call, idempotent by `seq`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::internal_api::{
    CONTEXT_VERSION_HEADER, CallContext, CallEventsBatch, InternalAuthError, RedeemRequest, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, ToolRequest, ToolResponse, context_version,
};
use contract::stream_token::TokenError;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument as _;
use uuid::Uuid;

use super::web::{clean_name, hex};
use super::{ApiFailure, RawBody, SharedApp, now_secs, parse_json};
use crate::metrics::Metrics;
use crate::openai::phone_instructions;
use crate::phone;
use crate::store::{CallRow, EventsWrite, LeadCorrection, Redeem, StatusUpdate, StoreError, Write};

/// Largest number of events in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

fn authenticate(app: &SharedApp, body: &RawBody) -> Result<(), ApiFailure> {
    let result = match (body.header(TIMESTAMP_HEADER), body.header(SIGNATURE_HEADER)) {
        (Some(ts), Some(sig)) => {
            app.internal_auth.verify(ts, sig, "POST", &body.path, &body.bytes, now_secs())
        }
        _ => Err(InternalAuthError::Malformed),
    };
    result.map_err(|e| {
        Metrics::inc(&app.metrics.signature_failures);
        let code = match e {
            InternalAuthError::Stale { .. } => "stale_timestamp",
            InternalAuthError::BadSignature => "bad_signature",
            _ => "auth_malformed",
        };
        ApiFailure::new(StatusCode::UNAUTHORIZED, code, e.to_string())
    })
}

/// `POST /internal/v1/stream-tokens/redeem`.
pub async fn redeem(State(app): State<SharedApp>, body: RawBody) -> Response {
    match redeem_inner(&app, &body).await {
        Ok(ctx) => axum::Json(ctx).into_response(),
        Err(e) => {
            Metrics::inc(&app.metrics.tokens_refused);
            e.into_response()
        }
    }
}

async fn redeem_inner(app: &SharedApp, body: &RawBody) -> Result<CallContext, ApiFailure> {
    authenticate(app, body)?;
    let req: RedeemRequest = body.json()?;
    let claims = app.verifier.verify(req.token.as_bytes(), now_secs()).map_err(|e| {
        let (status, code) = match e {
            TokenError::Expired { .. } => (StatusCode::GONE, "token_expired"),
            TokenError::BadSignature => (StatusCode::UNAUTHORIZED, "token_invalid"),
            _ => (StatusCode::BAD_REQUEST, "token_malformed"),
        };
        ApiFailure::new(status, code, e.to_string())
    })?;
    let call_id = Uuid::from_bytes(claims.call_id);
    let outcome = app
        .storage
        .store
        .redeem(call_id, &hex(&claims.nonce), req.call_sid.as_deref(), OffsetDateTime::now_utc())
        .await
        .map_err(ApiFailure::storage)?;
    match outcome {
        Redeem::Redeemed(c) if c.lead_id.as_bytes() == &claims.lead_id => {
            Metrics::inc(&app.metrics.tokens_redeemed);
            // The CallSid recorded when the call was placed (the gateway may not know it yet).
            let call_sid = c.call_sid.as_deref().or(req.call_sid.as_deref()).unwrap_or("");
            tracing::info!(%call_id, lead_id = %c.lead_id, call_sid, "stream token redeemed");
            // The web summary, and what the lead's previous call came to (SUMMARY_MODEL).
            let summary = crate::summary::context_for_call(app, c.lead_id, call_id, &c.summary).await;
            Ok(CallContext {
                call_id: call_id.to_string(),
                lead_id: c.lead_id.to_string(),
                instructions: phone_instructions(&c.first_name, &summary),
                first_name: c.first_name,
                summary,
                language: "fr".into(),
                voice: app.config.openai_voice.clone(),
                // A target, and the team in at the time the call starts.
                transfer: app.config.transfer.open_at(app.clock.now()),
                // Only to a gateway that reads it (an older one refuses unknown fields).
                web_transcript: if context_version(body.header(CONTEXT_VERSION_HEADER)) >= 2 {
                    c.web_transcript
                } else {
                    Vec::new()
                },
            })
        }
        Redeem::Redeemed(_) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            "token_lead_mismatch",
            "the token's lead is not the call's lead",
        )),
        Redeem::AlreadyRedeemed => {
            tracing::warn!(%call_id, "stream token replayed");
            Err(ApiFailure::new(
                StatusCode::CONFLICT,
                "token_already_redeemed",
                "this stream token was already used",
            ))
        }
        Redeem::Unknown => {
            Err(ApiFailure::new(StatusCode::NOT_FOUND, "token_unknown", "no call carries this stream token"))
        }
    }
}

fn call_id_param(raw: &str) -> Result<Uuid, ApiFailure> {
    raw.parse()
        .map_err(|_| ApiFailure::new(StatusCode::BAD_REQUEST, "call_id_invalid", "call id must be a UUID"))
}

/// Arguments of the phone `save_lead` tool: any subset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneSaveLeadArgs {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
}

fn tool_answer(ok: bool, output: serde_json::Value) -> Response {
    axum::Json(ToolResponse { ok, output: output.to_string() }).into_response()
}

/// `POST /internal/v1/calls/{call_id}/tools/{tool}`.
pub async fn tool(
    State(app): State<SharedApp>,
    Path((call_id, tool)): Path<(String, String)>,
    body: RawBody,
) -> Response {
    match tool_inner(&app, &call_id, &tool, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn tool_inner(
    app: &SharedApp,
    call_id: &str,
    tool: &str,
    body: &RawBody,
) -> Result<Response, ApiFailure> {
    authenticate(app, body)?;
    let call_id = call_id_param(call_id)?;
    let req: ToolRequest = body.json()?;
    if !["save_lead", "end_call", contract::internal_api::TRANSFER_TOOL].contains(&tool) {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            "tool_unknown",
            format!("no phone tool named {tool:?}"),
        ));
    }
    let call = app
        .storage
        .store
        .get_call(call_id)
        .await
        .map_err(ApiFailure::storage)?
        .ok_or_else(|| ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this id"))?;
    let span = tracing::info_span!("tool", %call_id, lead_id = %call.lead_id, call_sid = call.call_sid.as_deref().unwrap_or(""), tool);
    // `instrument`, not `span.enter()`: a guard held across an await would tag other tasks' lines.
    run_tool(app, call_id, tool, &req, &call).instrument(span).await
}

async fn run_tool(
    app: &SharedApp,
    call_id: Uuid,
    tool: &str,
    req: &ToolRequest,
    call: &CallRow,
) -> Result<Response, ApiFailure> {
    if tool == contract::internal_api::TRANSFER_TOOL {
        let answer = crate::transfer::on_tool(app, call, req).await.map_err(ApiFailure::storage)?;
        return Ok(axum::Json(answer).into_response());
    }
    if tool == "save_lead" {
        let args: PhoneSaveLeadArgs = match serde_json::from_str(&req.arguments) {
            Ok(a) => a,
            Err(e) => {
                record_tool(app, call, "save_lead", "refused: arguments_invalid".into()).await;
                return Ok(tool_answer(
                    false,
                    json!({"error": "arguments_invalid", "message": e.to_string()}),
                ));
            }
        };
        let mut correction = LeadCorrection {
            lead_id: call.lead_id,
            first_name: None,
            last_name: None,
            phone_e164: None,
            at: OffsetDateTime::now_utc(),
        };
        let checked = (|| -> Result<(), ApiFailure> {
            correction.first_name =
                args.first_name.as_deref().map(|n| clean_name(n, "first_name")).transpose()?;
            correction.last_name =
                args.last_name.as_deref().map(|n| clean_name(n, "last_name")).transpose()?;
            if let Some(p) = &args.phone {
                let p = phone::parse_phone(p, app.config.default_phone_region).map_err(|e| {
                    ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
                })?;
                correction.phone_e164 = Some(p.e164);
            }
            Ok(())
        })();
        if let Err(f) = checked {
            record_tool(app, call, "save_lead", format!("refused: {}", f.error.code)).await;
            return Ok(tool_answer(false, json!({"error": f.error.code, "message": f.error.message})));
        }
        let changed: Vec<&str> = [
            ("first name", correction.first_name.is_some()),
            ("last name", correction.last_name.is_some()),
            ("number", correction.phone_e164.is_some()),
        ]
        .iter()
        .filter_map(|(what, set)| set.then_some(*what))
        .collect();
        let phone_e164 = correction.phone_e164.clone();
        let applied = app.storage.write(Write::CorrectLead(correction)).await.map_err(ApiFailure::storage)?;
        let outcome = if changed.is_empty() {
            "ok: nothing to change".into()
        } else {
            format!("ok: {} corrected", changed.join(", "))
        };
        record_tool(app, call, "save_lead", outcome).await;
        tracing::info!(
            ?applied,
            phone = phone_e164.as_deref().map(phone::mask).unwrap_or_default(),
            "lead corrected on the phone"
        );
        return Ok(tool_answer(
            true,
            json!({"lead_id": call.lead_id, "saved": true, "phone_e164": phone_e164}),
        ));
    }
    // end_call
    let Some(sid) = call.call_sid.as_deref() else {
        return Ok(tool_answer(
            false,
            json!({"error": "call_not_connected", "message": "the call has no Twilio CallSid yet"}),
        ));
    };
    match app.twilio.hang_up(sid).await {
        Ok(()) => {
            let update = StatusUpdate {
                call_id,
                call_sid: Some(sid.to_owned()),
                status: "hangup-requested".into(),
                source: "control-plane".into(),
                detail: Some(format!("end_call tool {}", req.tool_call_id)),
                at: OffsetDateTime::now_utc(),
            };
            if let Err(e) = app.storage.write(Write::RecordStatus(update)).await {
                tracing::error!(error = %e, "could not record the hang-up");
            }
            tracing::info!("call ended by the agent");
            Ok(tool_answer(true, json!({"ended": true})))
        }
        Err(e) => {
            Metrics::inc(&app.metrics.twilio_errors);
            tracing::error!(error = %e, "hang-up failed");
            Ok(tool_answer(
                false,
                json!({"error": e.code(), "message": "hang-up failed; the call continues"}),
            ))
        }
    }
}

/// Writes a phone tool call and its result on the call's timeline (source `phone-tool`), for
/// the operator's record. Never the values themselves: which fields changed, or the refusal.
async fn record_tool(app: &SharedApp, call: &CallRow, tool: &str, outcome: String) {
    let update = StatusUpdate {
        call_id: call.id,
        call_sid: call.call_sid.clone(),
        status: tool.to_owned(),
        source: "phone-tool".into(),
        detail: Some(outcome),
        at: OffsetDateTime::now_utc(),
    };
    if let Err(e) = app.storage.write(Write::RecordStatus(update)).await {
        tracing::error!(error = %e, tool, "could not record the tool call on the timeline");
    }
}

/// `POST /internal/v1/calls/{call_id}/events`: `204` once stored (or queued).
pub async fn events(State(app): State<SharedApp>, Path(call_id): Path<String>, body: RawBody) -> Response {
    let result = async {
        authenticate(&app, &body)?;
        let call_id = call_id_param(&call_id)?;
        if !body.header("content-type").unwrap_or("").starts_with("application/json") {
            return Err(ApiFailure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json",
            ));
        }
        let batch: CallEventsBatch = parse_json(&body.bytes)?;
        if batch.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(ApiFailure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "batch_too_large",
                format!("at most {MAX_EVENTS_PER_BATCH} events per batch"),
            ));
        }
        let n = batch.events.len() as u64;
        let ended = batch.events.iter().any(|e| matches!(e, contract::internal_api::CallEvent::Ended { .. }));
        let write =
            EventsWrite { call_id, seq: batch.seq, events: batch.events, at: OffsetDateTime::now_utc() };
        // The events and the usage the store inserted are counted once, when applied
        // (crate::cost::counter): a batch sent again inserts nothing.
        match app.storage.write(Write::AppendEvents(write)).await {
            Ok(_) => {
                tracing::debug!(%call_id, events = n, "call events stored");
                if ended && app.config.summary_model.is_some() {
                    // On a task of its own: the gateway's batch is answered at once.
                    tokio::spawn(crate::summary::after_call(app.clone(), call_id));
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Err(StoreError::NotFound(_)) => {
                Err(ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this id"))
            }
            Err(e) => Err(ApiFailure::storage(e)),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// How often a held [`amd`] request looks at the call's timeline.
const AMD_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// `POST /internal/v1/calls/{call_id}/amd` ([`contract::internal_api::amd_path`], a long poll):
/// whether answering-machine detection runs on the call and, once Twilio has said, who
/// answered. Read from the call's timeline, so the answer is right whichever control plane
/// took Twilio's callback; held up to `wait_ms` while the result is not known.
pub async fn amd(State(app): State<SharedApp>, Path(call_id): Path<String>, body: RawBody) -> Response {
    use contract::internal_api::{AMD_MAX_WAIT_MS, AmdStatus, AmdWait};
    let result = async {
        authenticate(&app, &body)?;
        let call_id = call_id_param(&call_id)?;
        let wait: AmdWait = parse_json(&body.bytes)?;
        if app.storage.store.get_call(call_id).await.map_err(ApiFailure::storage)?.is_none() {
            return Err(ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this id"));
        }
        if !app.config.amd.enabled {
            return Ok(AmdStatus { detection: false, answered_by: None });
        }
        let wait = std::time::Duration::from_millis(u64::from(wait.wait_ms.min(AMD_MAX_WAIT_MS)));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let answered_by = crate::amd::result_of(&app, call_id).await.map_err(ApiFailure::storage)?;
            let now = tokio::time::Instant::now();
            if answered_by.is_some() || now >= deadline {
                return Ok(AmdStatus { detection: true, answered_by });
            }
            tokio::time::sleep(AMD_POLL.min(deadline - now)).await;
        }
    }
    .await;
    match result {
        Ok(status) => axum::Json(status).into_response(),
        Err(e) => e.into_response(),
    }
}
