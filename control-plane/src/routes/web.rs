//! The browser side: the page, `/api/session` (a session capability, plus an ephemeral secret
//! on the Realtime engine), `/api/session/webrtc` (the page's SDP offer on the GPT-Live engine,
//! which has no ephemeral keys), the two web tools the model calls through the page,
//! `save_lead` and `trigger_call`, and the progress of the call `trigger_call` placed (`GET
//! /api/calls/{call_id}`, rate-limited per client).
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
use contract::internal_api::{TranscriptLine, bound_web_transcript};
use contract::voice_api::VoiceApi;

/// The page (no inline script or style: see [`content_security_policy`]).
pub const INDEX_HTML: &str = include_str!("../../static/index.html");
/// The page's script, `GET /static/app.js`.
pub const APP_JS: &str = include_str!("../../static/app.js");
/// The page's style sheet, `GET /static/app.css`.
pub const APP_CSS: &str = include_str!("../../static/app.css");
/// The consent wording recorded with each lead (versioned: change the version with the text).
pub const CONSENT_TEXT: &str = "v1: J'accepte d'être rappelé(e) par Callway au numéro donné et que mes nom, prénom et numéro soient conservés pour me recontacter.";
/// Longest summary kept.
pub const MAX_SUMMARY_CHARS: usize = 2000;

/// The page's `Content-Security-Policy`: scripts and styles from its own origin only (no
/// inline code, no `eval`), `fetch` to its own origin and to the OpenAI API origin of
/// `openai_base_url` (the SDP offer to `/v1/realtime/calls`; the WebRTC media itself is not a
/// fetch), nothing else loaded, no framing, no `<base>`, forms posted to itself only. A base URL
/// that does not parse (the configuration refuses those) leaves `'self'` alone.
pub fn content_security_policy(openai_base_url: &str) -> String {
    let openai = reqwest::Url::parse(openai_base_url)
        .ok()
        .map(|u| u.origin())
        .filter(|o| o.is_tuple())
        .map(|o| format!(" {}", o.ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; \
         connect-src 'self'{openai}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Headers every file of the page carries.
fn page_headers(res: &mut Response, content_type: &'static str) {
    use axum::http::{HeaderValue, header};
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The page and its script change together: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The page's policy for the configured engine: on Realtime the page posts its offer to the
/// OpenAI origin itself; on GPT-Live it posts it to this origin only
/// ([`content_security_policy`] with no OpenAI origin).
pub fn page_policy(config: &crate::config::Config) -> String {
    match config.voice_engine.api {
        VoiceApi::Realtime => content_security_policy(&config.openai_base_url),
        VoiceApi::Live => content_security_policy(""),
    }
}

/// `GET /`: the page, with its Content-Security-Policy and a Permissions-Policy that lets only
/// this origin ask for the microphone.
pub async fn index(State(app): State<SharedApp>) -> Response {
    use axum::http::{HeaderName, HeaderValue, header};
    let mut res = Html(INDEX_HTML).into_response();
    page_headers(&mut res, "text/html; charset=utf-8");
    let csp = page_policy(&app.config);
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(), geolocation=()"),
    );
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    res
}

/// `GET /static/app.js`.
pub async fn app_js() -> Response {
    let mut res = APP_JS.into_response();
    page_headers(&mut res, "text/javascript; charset=utf-8");
    res
}

/// `GET /static/app.css`.
pub async fn app_css() -> Response {
    let mut res = APP_CSS.into_response();
    page_headers(&mut res, "text/css; charset=utf-8");
    res
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

/// `POST /api/session`: a capability for the tool routes and, on the Realtime engine, an
/// ephemeral OpenAI secret for the page's WebRTC call; the answer names the engine and where
/// the page posts its SDP offer (`webrtc_url`): OpenAI's `/v1/realtime/calls` with the secret
/// on Realtime, this service's `/api/session/webrtc` with the capability on GPT-Live (no
/// ephemeral keys there). Rate-limited per IP.
pub async fn create_session(
    State(app): State<SharedApp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let ip = client_ip(&peer);
    if let Err(r) = app.limiters().sessions_per_ip.check(ip, now_ms()) {
        return limited("sessions", r, &app).into_response();
    }
    if app.config.voice_engine.api == VoiceApi::Live {
        let session_id = Uuid::new_v4();
        let expires_at = now_secs() + SESSION_TTL_SECS;
        let capability = app.capabilities.mint(session_id, expires_at);
        Metrics::inc(&app.metrics.sessions_created);
        tracing::info!(%session_id, engine = "live", "web session created");
        return axum::Json(json!({
            "engine": "live",
            "capability": capability,
            "capability_expires_at": expires_at,
            "webrtc_url": LIVE_OFFER_PATH,
            "model": app.config.voice_engine.model,
        }))
        .into_response();
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
        Err(e) => return openai_failure(&app, &e, "client_secrets failed").into_response(),
    };
    let session_id = Uuid::new_v4();
    let expires_at = now_secs() + SESSION_TTL_SECS;
    let capability = app.capabilities.mint(session_id, expires_at);
    Metrics::inc(&app.metrics.sessions_created);
    tracing::info!(%session_id, engine = "realtime", "web session created");
    let calls = format!("{}/v1/realtime/calls", app.config.openai_base_url);
    axum::Json(json!({
        "engine": "realtime",
        "client_secret": {"value": secret.value, "expires_at": secret.expires_at},
        "capability": capability,
        "capability_expires_at": expires_at,
        "realtime_url": calls,
        "webrtc_url": calls,
        "model": app.config.openai_realtime_model,
    }))
    .into_response()
}

/// Where the page posts its SDP offer on the GPT-Live engine.
pub const LIVE_OFFER_PATH: &str = "/api/session/webrtc";

/// Largest SDP offer taken (Chromium's, with every candidate gathered, is a few KiB).
pub const MAX_OFFER_BYTES: usize = 12 * 1024;

/// `POST /api/session/webrtc` (GPT-Live engine): the page's SDP offer (`application/sdp`,
/// under its session capability) becomes a GPT-Live WebRTC session created with the server
/// key ([`crate::openai::OpenAiClient::create_live_call`]); the answer is `201` with the SDP
/// answer (`application/sdp`), as `/v1/realtime/calls` answers on Realtime, so the page has one
/// code path. Limited per web session (`RATE_LIMIT_WEBRTC_PER_SESSION_PER_HOUR`, 3 by default:
/// each session OpenAI starts is billed). An offer OpenAI refuses is the browser's `400`
/// `webrtc_refused`; OpenAI refusing our key or session is `502`, as for `/api/session`.
pub async fn live_offer(State(app): State<SharedApp>, body: RawBody) -> Response {
    match live_offer_inner(&app, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn live_offer_inner(app: &SharedApp, body: &RawBody) -> Result<Response, ApiFailure> {
    if app.config.voice_engine.api != VoiceApi::Live {
        return Err(ApiFailure::new(
            StatusCode::CONFLICT,
            "wrong_engine",
            "This service runs the web visit on OpenAI Realtime (OPENAI_VOICE_API=realtime): post the offer to the webrtc_url /api/session gave.",
        ));
    }
    let session_id = session_of(app, body)?;
    let ct = body.header("content-type").unwrap_or_default();
    if !ct.starts_with("application/sdp") {
        return Err(ApiFailure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the SDP offer as application/sdp",
        ));
    }
    // Passed on byte for byte: SDP lines end with CRLF, the last one included.
    let offer = std::str::from_utf8(&body.bytes).unwrap_or_default();
    if !offer.starts_with("v=0") || offer.len() > MAX_OFFER_BYTES {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_offer",
            format!("the body must be an SDP offer (starting with v=0, at most {MAX_OFFER_BYTES} bytes)"),
        ));
    }
    if let Err(r) = app.limiters().offers_per_session.check(session_id, now_ms()) {
        return Err(limited("connexions vocales", r, app));
    }
    let engine = &app.config.voice_engine;
    let delegation = &app.config.live_delegation_model;
    match app.openai.create_live_call(&engine.model, &app.config.openai_voice, delegation, offer).await {
        Ok(call) => {
            tracing::info!(%session_id, live_session = %call.session_id, model = %engine.model, "GPT-Live web session created");
            let mut res = (StatusCode::CREATED, call.answer_sdp).into_response();
            let h = res.headers_mut();
            h.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/sdp"),
            );
            h.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err(OpenAiError::OfferRefused { status, message }) => {
            tracing::warn!(%session_id, status, %message, "GPT-Live refused the page's SDP offer");
            Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                "webrtc_refused",
                format!("OpenAI refuse la connexion proposée par votre navigateur ({message})."),
            ))
        }
        Err(e) => Err(openai_failure(app, &e, "/v1/live/sessions failed")),
    }
}

/// OpenAI failing us (key, quota, availability, a session it refuses), as an answer: the
/// visitor reads that the assistant is unavailable, the operator reads why in the logs.
fn openai_failure(app: &SharedApp, e: &OpenAiError, what: &'static str) -> ApiFailure {
    Metrics::inc(&app.metrics.openai_errors);
    tracing::error!(error = %e, "{what}");
    let (status, code) = match e {
        OpenAiError::RateLimited => (StatusCode::SERVICE_UNAVAILABLE, "openai_rate_limited"),
        OpenAiError::Auth(_) => (StatusCode::BAD_GATEWAY, "openai_auth_failed"),
        _ => (StatusCode::BAD_GATEWAY, "openai_unavailable"),
    };
    ApiFailure::new(
        status,
        code,
        "L'assistant vocal est momentanément indisponible, réessayez dans un instant.",
    )
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
    /// The web conversation as the page saw it, oldest line first. Added by the page beside
    /// the model's arguments (the tool's schema does not offer it to the model); bounded here
    /// ([`bound_web_transcript`]: the most recent lines are kept). It comes from the visitor's
    /// own browser, like the arguments: it only ever shapes the visitor's own call.
    #[serde(default)]
    pub transcript: Vec<TranscriptLine>,
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
    let (web_transcript, left_out) = bound_web_transcript(args.transcript);
    if left_out > 0 {
        tracing::debug!(%session_id, left_out, kept = web_transcript.len(), "web transcript lines left out (blank or over the limits)");
    }
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
            web_transcript: &web_transcript,
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

/// Where a call stands, as the page shows it (Twilio's statuses grouped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStage {
    /// Created, queued or initiated: the number is being dialled.
    Placing,
    /// The prospect's phone rings.
    Ringing,
    /// Answered: the prospect talks to the agent.
    Answered,
    /// Over (completed, busy, no answer, failed, canceled).
    Ended,
}

impl CallStage {
    /// The stage of a stored call status (statuses only move forward, see
    /// [`crate::store::status_rank`]); an unknown status counts as still placing.
    pub fn of(status: &str) -> Self {
        match status {
            "ringing" => Self::Ringing,
            "in-progress" | "answered" => Self::Answered,
            "completed" | "busy" | "failed" | "no-answer" | "canceled" => Self::Ended,
            _ => Self::Placing,
        }
    }

    /// Its name in the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placing => "placing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Ended => "ended",
        }
    }
}

/// What the page says for a call status, in French.
pub fn progress_message(status: &str) -> &'static str {
    match status {
        "ringing" => "Votre téléphone sonne : décrochez, c'est Claire.",
        "in-progress" | "answered" => "Vous êtes en ligne avec Claire.",
        "completed" => "Appel terminé. Merci d'avoir parlé avec Claire !",
        "busy" => "Votre ligne était occupée : l'appel n'a pas abouti.",
        "no-answer" => "Vous n'avez pas décroché : l'appel n'a pas abouti.",
        "canceled" => "L'appel a été annulé.",
        "failed" => "L'appel n'a pas pu aboutir.",
        _ => "Nous composons votre numéro…",
    }
}

/// `GET /api/calls/{call_id}`: the progress of a call, for the web session that placed it.
///
/// Bound to that session twice over: the caller must hold the session's capability (as on the
/// tool routes) and the call id `trigger_call` returned to it; another session's call and an
/// unknown id get the same `404`, so ids cannot be probed. The answer never holds the number:
/// `{"call_id", "stage": "placing"|"ringing"|"answered"|"ended", "status", "ended", "message"}`.
///
/// Polled by the page, so limited per client address (`RATE_LIMIT_PROGRESS_PER_IP_PER_MINUTE`,
/// 120 by default: three tabs polling every 1.5 s) before anything else is looked at, a
/// capability or the database: over the limit the answer is `429` `rate_limited` with
/// `Retry-After` (whole seconds), and the page waits that long before asking again.
pub async fn call_progress(
    State(app): State<SharedApp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Path(call_id): axum::extract::Path<String>,
    body: RawBody,
) -> Response {
    match call_progress_inner(&app, peer, &call_id, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn call_progress_inner(
    app: &SharedApp,
    peer: SocketAddr,
    call_id: &str,
    body: &RawBody,
) -> Result<Response, ApiFailure> {
    if let Err(r) = app.limiters().progress_per_ip.check(client_ip(&peer), now_ms()) {
        return Err(limited("suivi de l'appel", r, app));
    }
    let session_id = session_of(app, body)?;
    let not_found = || {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            "call_not_found",
            "Aucun appel de cette conversation ne porte cet identifiant.",
        )
    };
    let id = call_id.parse::<Uuid>().map_err(|_| not_found())?;
    let call = app.storage.store.get_call(id).await.map_err(ApiFailure::storage)?;
    let call = call.filter(|c| c.session_id == Some(session_id)).ok_or_else(not_found)?;
    let stage = CallStage::of(&call.status);
    let mut res = axum::Json(json!({
        "call_id": call.id,
        "stage": stage.as_str(),
        "status": call.status,
        "ended": stage == CallStage::Ended,
        "message": progress_message(&call.status),
    }))
    .into_response();
    res.headers_mut()
        .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_openai_origin_only() {
        let csp = content_security_policy("https://eu.api.openai.com/some/path/");
        assert!(csp.contains("connect-src 'self' https://eu.api.openai.com;"), "{csp}");
        let csp = content_security_policy("http://127.0.0.1:8081");
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:8081;"), "{csp}");
        assert!(content_security_policy("not a url").contains("connect-src 'self';"));
    }

    #[test]
    fn statuses_map_to_stages_and_french_messages() {
        for (status, stage) in [
            ("created", CallStage::Placing),
            ("queued", CallStage::Placing),
            ("initiated", CallStage::Placing),
            ("ringing", CallStage::Ringing),
            ("in-progress", CallStage::Answered),
            ("completed", CallStage::Ended),
            ("busy", CallStage::Ended),
            ("no-answer", CallStage::Ended),
            ("failed", CallStage::Ended),
            ("canceled", CallStage::Ended),
        ] {
            assert_eq!(CallStage::of(status), stage, "{status}");
            assert!(!progress_message(status).is_empty());
        }
        assert_eq!(progress_message("busy"), "Votre ligne était occupée : l'appel n'a pas abouti.");
    }
}
