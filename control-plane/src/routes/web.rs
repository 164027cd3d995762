//! The browser side: the page, `/api/session` (ephemeral Realtime secret + session capability)
//! and the two web tools the model calls through the page, `save_lead` and `trigger_call`.
//!
//! Tool failures the prospect can fix (a wrong number, no consent) are 422 with a French
//! `message` the page hands to the model as the tool output, so the agent says it back.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ApiFailure, RawBody, SESSION_TTL_SECS, SharedApp, client_ip, now_ms, now_secs};
use crate::capability::{CapabilityError, lead_id_for_session};
use crate::metrics::Metrics;
use crate::openai::OpenAiError;
use crate::phone::{self, PhoneError};
use crate::placing::{PlaceCall, PlaceError};
use crate::ratelimit::RetryAfter;
use crate::store::{Applied, NewLead, Write};
use crate::twilio::TwilioError;

/// The page.
pub const INDEX_HTML: &str = include_str!("../../static/index.html");
/// The consent wording recorded with each lead (versioned: change the version with the text).
pub const CONSENT_TEXT: &str = "v1: J'accepte d'être rappelé(e) par Callway au numéro donné et que mes nom, prénom et numéro soient conservés pour me recontacter.";
/// Longest summary kept.
pub const MAX_SUMMARY_CHARS: usize = 2000;

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

fn limited(what: &str, r: RetryAfter, app: &SharedApp) -> ApiFailure {
    Metrics::inc(&app.metrics.rate_limited);
    ApiFailure::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Trop de demandes ({what}). Réessayez dans {} secondes.", r.secs()),
    )
    .retry_after(r.secs())
}

/// `POST /api/session`: an ephemeral OpenAI secret for the web agent, and a capability for the
/// tool routes. Rate-limited per IP.
pub async fn create_session(
    State(app): State<SharedApp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let ip = client_ip(&peer);
    if let Err(r) = app.limiters().sessions_per_ip.check(ip, now_ms()) {
        return limited("sessions", r, &app).into_response();
    }
    let secret = match app
        .openai
        .create_client_secret(
            &app.config.openai_realtime_model,
            &app.config.openai_voice,
            app.config.realtime_turn_detection,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            Metrics::inc(&app.metrics.openai_errors);
            tracing::error!(error = %e, "client_secrets failed");
            let (status, code) = match e {
                OpenAiError::RateLimited => (StatusCode::SERVICE_UNAVAILABLE, "openai_rate_limited"),
                OpenAiError::Auth(_) => (StatusCode::BAD_GATEWAY, "openai_auth_failed"),
                _ => (StatusCode::BAD_GATEWAY, "openai_unavailable"),
            };
            return ApiFailure::new(
                status,
                code,
                "L'assistant vocal est momentanément indisponible, réessayez dans un instant.",
            )
            .into_response();
        }
    };
    let session_id = Uuid::new_v4();
    let expires_at = now_secs() + SESSION_TTL_SECS;
    let capability = app.capabilities.mint(session_id, expires_at);
    Metrics::inc(&app.metrics.sessions_created);
    tracing::info!(%session_id, "web session created");
    axum::Json(json!({
        "client_secret": {"value": secret.value, "expires_at": secret.expires_at},
        "capability": capability,
        "capability_expires_at": expires_at,
        "realtime_url": format!("{}/v1/realtime/calls", app.config.openai_base_url),
        "model": app.config.openai_realtime_model,
    }))
    .into_response()
}

/// The session id behind `Authorization: Bearer cap1.…`.
fn session_of(app: &SharedApp, body: &RawBody) -> Result<Uuid, ApiFailure> {
    let cap = body
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(CapabilityError::Missing);
    cap.and_then(|c| app.capabilities.verify(c, now_secs()))
        .map_err(|e| ApiFailure::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))
}

/// Arguments of the web `save_lead` tool (see `openai::save_lead_schema`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveLeadArgs {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Number as typed or said.
    pub phone: String,
    /// Explicit agreement.
    pub consent: bool,
}

/// Trims, collapses inner whitespace, bounds to 1..=80 characters, refuses control characters.
pub fn clean_name(raw: &str, field: &str) -> Result<String, ApiFailure> {
    let cleaned = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = cleaned.chars().count();
    if n == 0 || n > 80 || cleaned.chars().any(char::is_control) {
        let what = if field == "first_name" { "le prénom" } else { "le nom" };
        return Err(ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{field}_invalid"),
            format!("Je n'ai pas bien noté {what} (entre 1 et 80 caractères). Pouvez-vous le répéter ?"),
        ));
    }
    Ok(cleaned)
}

fn phone_failure(e: &PhoneError) -> ApiFailure {
    ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
}

/// `POST /api/tools/save_lead`: idempotent for a session (the lead id is derived from it).
pub async fn save_lead(State(app): State<SharedApp>, body: RawBody) -> Response {
    match save_lead_inner(&app, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn save_lead_inner(app: &SharedApp, body: &RawBody) -> Result<Response, ApiFailure> {
    let session_id = session_of(app, body)?;
    let args: SaveLeadArgs = body.json()?;
    if let Err(r) = app.limiters().saves_per_session.check(session_id, now_ms()) {
        return Err(limited("enregistrements", r, app));
    }
    let first_name = clean_name(&args.first_name, "first_name")?;
    let last_name = clean_name(&args.last_name, "last_name")?;
    if !args.consent {
        return Err(ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consent_required",
            "Pour vous rappeler, j'ai besoin de votre accord pour conserver vos coordonnées. Êtes-vous d'accord ?",
        ));
    }
    let phone =
        phone::parse_phone(&args.phone, app.config.default_phone_region).map_err(|e| phone_failure(&e))?;
    let lead_id = lead_id_for_session(session_id);
    let lead = NewLead {
        id: lead_id,
        session_id: Some(session_id),
        first_name,
        last_name,
        phone_e164: phone.e164.clone(),
        source: "web".into(),
        consent_text: CONSENT_TEXT.into(),
        at: OffsetDateTime::now_utc(),
    };
    let applied = app.storage.write(Write::UpsertLead(lead)).await.map_err(ApiFailure::storage)?;
    Metrics::inc(&app.metrics.leads_saved);
    tracing::info!(%lead_id, phone = %phone::mask(&phone.e164), queued = applied == Applied::Queued, "lead saved");
    Ok(axum::Json(json!({"lead_id": lead_id, "phone_e164": phone.e164})).into_response())
}

/// Arguments of the web `trigger_call` tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerCallArgs {
    /// The id `save_lead` returned.
    pub lead_id: String,
    /// Summary of the web conversation.
    pub summary: String,
}

/// `POST /api/tools/trigger_call`: every guard, then the stream token and `Calls.create`.
pub async fn trigger_call(
    State(app): State<SharedApp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: RawBody,
) -> Response {
    match trigger_call_inner(&app, peer, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn refused(app: &SharedApp, f: ApiFailure) -> ApiFailure {
    Metrics::inc(&app.metrics.calls_refused);
    f
}

async fn trigger_call_inner(
    app: &SharedApp,
    peer: SocketAddr,
    body: &RawBody,
) -> Result<Response, ApiFailure> {
    let session_id = session_of(app, body)?;
    let args: TriggerCallArgs = body.json()?;
    let lead_id = lead_id_for_session(session_id);
    if args.lead_id.trim().parse::<Uuid>().ok() != Some(lead_id) {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "lead_not_in_session",
            "Ce contact n'a pas été enregistré dans cette conversation : utilisez le lead_id renvoyé par save_lead.",
        ));
    }
    let summary = args.summary.trim();
    if summary.is_empty() || summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "summary_invalid",
            format!("Le résumé doit faire entre 1 et {MAX_SUMMARY_CHARS} caractères."),
        ));
    }
    let now = now_ms();
    let ip = client_ip(&peer);
    {
        let l = app.limiters();
        if let Err(r) = l.calls_per_session.peek(&session_id, now).and(l.calls_per_ip.peek(&ip, now)) {
            drop(l);
            return Err(limited("appels", r, app));
        }
    }
    let lead = app.storage.store.get_lead(lead_id).await.map_err(ApiFailure::storage)?.ok_or_else(|| {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            "lead_not_found",
            "Je n'ai pas encore vos coordonnées : enregistrez-les d'abord avec save_lead.",
        )
    })?;
    let phone = phone::parse_phone(&lead.phone_e164, app.config.default_phone_region)
        .map_err(|e| phone_failure(&e))?;
    app.config.call_policy.check(&phone).map_err(|e| refused(app, phone_failure(&e)))?;
    {
        let mut l = app.limiters();
        if let Err(r) = l.calls_per_number.peek(&phone.e164, now) {
            drop(l);
            return Err(refused(app, limited("appels vers ce numéro", r, app)));
        }
        // Consumed before the slow part, so parallel requests cannot all slip through.
        let _ = l.calls_per_session.check(session_id, now);
        let _ = l.calls_per_ip.check(ip, now);
        let _ = l.calls_per_number.check(phone.e164.clone(), now);
    }
    if app.config.twilio_require_verified_numbers {
        match app.twilio.is_verified_caller_id(&phone.e164).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(refused(
                    app,
                    ApiFailure::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "number_not_verified",
                        "Ce service de démonstration ne peut appeler que des numéros vérifiés au préalable. Ce numéro ne l'est pas.",
                    ),
                ));
            }
            Err(e) => return Err(twilio_failure(app, &e)),
        }
    }

    // The prospect asked for this call: it supersedes any retry still waiting for the lead.
    crate::retry::cancel_for_lead(app, lead_id, "superseded: the prospect asked for a new call").await;
    let placed = crate::placing::place_call(
        app,
        &PlaceCall {
            lead_id,
            session_id: Some(session_id),
            summary,
            to_e164: &phone.e164,
            detail: "Calls.create",
            attempt: 1,
        },
    )
    .await;
    match placed {
        Ok(p) => Ok(axum::Json(json!({
            "call_id": p.call_id,
            "status": "calling",
            "message": format!("Je vous appelle maintenant au {}. Votre téléphone va sonner dans quelques secondes.", phone::mask(&phone.e164)),
        }))
        .into_response()),
        Err(PlaceError::ActiveCall) => Err(refused(
            app,
            ApiFailure::new(
                StatusCode::CONFLICT,
                "call_already_active",
                "Un appel vers vous est déjà en cours : décrochez, votre téléphone sonne.",
            ),
        )),
        Err(PlaceError::Storage(e)) => Err(ApiFailure::storage(e)),
        Err(PlaceError::Twilio { error, .. }) => Err(twilio_failure(app, &error)),
        Err(PlaceError::Internal { code, message }) => {
            Err(ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, code, message))
        }
    }
}

/// Twilio errors, as answers: the prospect's part in French, the operator's part in the logs.
fn twilio_failure(app: &SharedApp, e: &TwilioError) -> ApiFailure {
    Metrics::inc(&app.metrics.twilio_errors);
    tracing::error!(error = %e, code = e.code(), "Twilio request failed");
    let unavailable = "Je n'arrive pas à lancer l'appel pour le moment. Réessayez dans quelques minutes.";
    match e {
        TwilioError::InvalidNumber { .. } => ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            "L'opérateur refuse ce numéro. Pouvez-vous vérifier votre numéro de téléphone ?",
        ),
        TwilioError::UnverifiedNumber => ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            "Ce service de démonstration ne peut appeler que des numéros vérifiés au préalable. Ce numéro ne l'est pas.",
        ),
        TwilioError::RateLimited => {
            ApiFailure::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), unavailable).retry_after(30)
        }
        _ => ApiFailure::new(StatusCode::BAD_GATEWAY, e.code(), unavailable),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
