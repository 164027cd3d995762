//! Operations: liveness, readiness (database reachable), Prometheus metrics, and the
//! personal-data routes an operator uses (`ADMIN_API_TOKEN`): erase everything held about a
//! phone number (its scheduled retries included), record that a prospect wants no more calls
//! (cancels the retries waiting for that number), and purge transcripts past
//! `TRANSCRIPT_RETENTION_DAYS` now.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiFailure, RawBody, SharedApp};
use crate::phone;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(app): State<SharedApp>) -> Response {
    let pending = app.storage.pending();
    match app.storage.store.ping().await {
        Ok(()) => axum::Json(
            json!({"status": "ready", "storage": app.storage.store.kind(), "outbox_pending": pending}),
        )
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                json!({"code": "database_unreachable", "message": e.to_string(), "outbox_pending": pending}),
            ),
        )
            .into_response(),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<SharedApp>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render()).into_response()
}

fn admin(app: &SharedApp, body: &RawBody) -> Result<(), ApiFailure> {
    let Some(expected) = &app.config.admin_api_token else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "set ADMIN_API_TOKEN to enable admin routes",
        ));
    };
    let given = body.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Compare digests: equal-length inputs, no early exit on the secret's bytes.
    let a = ring::digest::digest(&ring::digest::SHA256, given.as_bytes());
    let b = ring::digest::digest(&ring::digest::SHA256, expected.as_bytes());
    if a.as_ref() != b.as_ref() {
        return Err(ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "admin_unauthorized",
            "Authorization: Bearer <ADMIN_API_TOKEN> required",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneRequest {
    phone: String,
}

/// An admin request about one number: checks the token, reads `{"phone": "…"}`, parses it.
fn admin_phone(app: &SharedApp, body: &RawBody) -> Result<phone::Phone, ApiFailure> {
    admin(app, body)?;
    let req: PhoneRequest = body.json()?;
    phone::parse_phone(&req.phone, app.config.default_phone_region)
        .map_err(|e| ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), "not a valid phone number"))
}

/// `POST /admin/erase {"phone": "…"}`: removes the leads with this number, their calls, status
/// timelines, transcripts and retries; answers what it removed.
pub async fn erase(State(app): State<SharedApp>, body: RawBody) -> Response {
    let result = async {
        let p = admin_phone(&app, &body)?;
        let removed = app.storage.erase_phone(&p.e164).await.map_err(ApiFailure::storage)?;
        tracing::info!(phone = %phone::mask(&p.e164), ?removed, "personal data erased");
        Ok::<_, ApiFailure>(
            axum::Json(json!({"phone": phone::mask(&p.e164), "removed": removed})).into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/opt-out {"phone": "…"}`: the prospect asked not to be called again; cancels
/// every retry waiting for this number (each cancellation goes on the lead's timeline) and
/// answers how many.
pub async fn opt_out(State(app): State<SharedApp>, body: RawBody) -> Response {
    let result = async {
        let p = admin_phone(&app, &body)?;
        let n = crate::retry::cancel_for_phone(&app, &p.e164, "the prospect asked not to be called again")
            .await
            .map_err(ApiFailure::storage)?;
        tracing::info!(phone = %phone::mask(&p.e164), cancelled = n, "opt-out recorded");
        Ok::<_, ApiFailure>(
            axum::Json(json!({"phone": phone::mask(&p.e164), "retries_cancelled": n})).into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/purge-transcripts`: runs the retention purge now.
pub async fn purge(State(app): State<SharedApp>, body: RawBody) -> Response {
    let result = async {
        admin(&app, &body)?;
        let n = crate::purge_transcripts(&app).await.map_err(ApiFailure::storage)?;
        Ok::<_, ApiFailure>(axum::Json(json!({"purged_transcript_lines": n})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
