//! Twilio's status callbacks (`POST /twilio/status` for the call, `POST /twilio/stream-status`
//! for the media stream). Each is verified against `x-twilio-signature` over the URL built from
//! `PUBLIC_APP_URL` plus the path and query we gave Twilio, never from the request's `Host`
//! (behind a proxy the two differ). Accepted events go to the call's status timeline; a final
//! `busy`, `no-answer` or `failed` then schedules the next attempt ([`crate::retry`]).
//! `POST /twilio/amd` takes the answering-machine detection result ([`crate::amd`]);
//! `POST /twilio/transfer` is a warm transfer's `<Dial action>` ([`crate::transfer`]), answered
//! with the TwiML the call runs next.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ApiFailure, RawBody, SharedApp};
use crate::metrics::Metrics;
use crate::store::{StatusUpdate, StoreError, Write};

/// The call id we put in the callback URL's query.
fn call_id_of(path_and_query: &str) -> Result<Uuid, ApiFailure> {
    let query = path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.iter().find(|(k, _)| k == "call_id").and_then(|(_, v)| v.parse().ok()).ok_or_else(|| {
        ApiFailure::new(StatusCode::BAD_REQUEST, "call_id_missing", "callback URL lacks a valid call_id")
    })
}

/// Verifies the signature and returns the form parameters.
fn verified_form(app: &SharedApp, body: &RawBody) -> Result<Vec<(String, String)>, ApiFailure> {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body.bytes).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "malformed_form",
            format!("body is not a urlencoded form: {e}"),
        )
    })?;
    let Some(sig) = body.header("x-twilio-signature") else {
        Metrics::inc(&app.metrics.signature_failures);
        return Err(ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "signature_missing",
            "x-twilio-signature header is missing",
        ));
    };
    let url = format!("{}{}", app.config.public_app_url, body.path_and_query);
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !app.twilio_signer.verify_form(&url, &borrowed, sig) {
        Metrics::inc(&app.metrics.signature_failures);
        tracing::warn!("status callback with a bad signature refused");
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "signature_invalid",
            "x-twilio-signature does not match (URL is built from PUBLIC_APP_URL; check TWILIO_AUTH_TOKEN)",
        ));
    }
    let account = params.iter().find(|(k, _)| k == "AccountSid").map(|(_, v)| v.as_str());
    if account.is_some_and(|a| a != app.config.twilio_account_sid) {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "account_mismatch",
            "callback for another Twilio account",
        ));
    }
    Ok(params)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn record(app: &SharedApp, update: StatusUpdate) -> Response {
    let call_id = update.call_id;
    let call_sid = update.call_sid.clone().unwrap_or_default();
    let status = update.status.clone();
    match app.storage.write(Write::RecordStatus(update)).await {
        Ok(_) => {
            Metrics::inc(&app.metrics.status_callbacks);
            tracing::info!(%call_id, %call_sid, %status, "call status");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(StoreError::NotFound(_)) => {
            ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this call_id")
                .into_response()
        }
        Err(e) => ApiFailure::storage(e).into_response(),
    }
}

/// `POST /twilio/status?call_id=…`: `CallStatus` → the call's timeline.
pub async fn call_status(State(app): State<SharedApp>, body: RawBody) -> Response {
    let (call_id, params) =
        match call_id_of(&body.path_and_query).and_then(|id| Ok((id, verified_form(&app, &body)?))) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let Some(status) = get(&params, "CallStatus") else {
        return ApiFailure::new(StatusCode::BAD_REQUEST, "call_status_missing", "CallStatus is missing")
            .into_response();
    };
    let detail = ["CallDuration", "ErrorCode", "SipResponseCode", "AnsweredBy"]
        .iter()
        .filter_map(|k| get(&params, k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ");
    let update = StatusUpdate {
        call_id,
        call_sid: get(&params, "CallSid").map(str::to_owned),
        status: status.to_owned(),
        source: "twilio-call".into(),
        detail: (!detail.is_empty()).then_some(detail),
        at: OffsetDateTime::now_utc(),
    };
    let billed = (status == "completed").then(|| get(&params, "CallDuration")?.parse::<u64>().ok()).flatten();
    let answer = record(&app, update).await;
    if answer.status() == StatusCode::NO_CONTENT
        && let Some(seconds) = billed
        && let Err(e) = crate::cost::on_twilio_completed(&app, call_id, seconds).await
    {
        tracing::warn!(%call_id, error = %e, "call cost not counted");
    }
    if answer.status() == StatusCode::NO_CONTENT
        && let Some(reason) = crate::retry::RetryReason::from_call_status(status)
    {
        // Before answering: once Twilio has its 204, the outcome is ours to act on.
        if let Err(e) = crate::retry::on_call_outcome(&app, call_id, reason).await {
            tracing::error!(%call_id, error = %e, "retry not scheduled");
        }
    }
    answer
}

/// `POST /twilio/stream-status?call_id=…`: `StreamEvent` → the call's timeline.
pub async fn stream_status(State(app): State<SharedApp>, body: RawBody) -> Response {
    let (call_id, params) =
        match call_id_of(&body.path_and_query).and_then(|id| Ok((id, verified_form(&app, &body)?))) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let Some(event) = get(&params, "StreamEvent") else {
        return ApiFailure::new(StatusCode::BAD_REQUEST, "stream_event_missing", "StreamEvent is missing")
            .into_response();
    };
    let update = StatusUpdate {
        call_id,
        call_sid: get(&params, "CallSid").map(str::to_owned),
        status: event.to_owned(),
        source: "twilio-stream".into(),
        detail: get(&params, "StreamError").map(str::to_owned),
        at: OffsetDateTime::now_utc(),
    };
    record(&app, update).await
}

/// `POST /twilio/amd?call_id=…`: `AnsweredBy` of the asynchronous answering-machine detection
/// → the call's timeline, then the voicemail policy ([`crate::amd::on_result`]).
pub async fn amd_status(State(app): State<SharedApp>, body: RawBody) -> Response {
    let (call_id, params) =
        match call_id_of(&body.path_and_query).and_then(|id| Ok((id, verified_form(&app, &body)?))) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let (Some(answered_by), Some(call_sid)) = (get(&params, "AnsweredBy"), get(&params, "CallSid")) else {
        return ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "answered_by_missing",
            "AnsweredBy or CallSid is missing",
        )
        .into_response();
    };
    if crate::amd::verdict(answered_by).is_none() {
        return ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "answered_by_invalid",
            format!("AnsweredBy {answered_by:?} is not a value Twilio sends"),
        )
        .into_response();
    }
    match crate::amd::on_result(
        &app,
        call_id,
        call_sid,
        answered_by,
        get(&params, "MachineDetectionDuration"),
    )
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(StoreError::NotFound(_)) => {
            ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this call_id")
                .into_response()
        }
        Err(e) => ApiFailure::storage(e).into_response(),
    }
}

/// `POST /twilio/transfer?call_id=…`: the `<Dial action>` of a warm transfer
/// (`DialCallStatus`, `DialCallDuration`) → the call's timeline, then the TwiML the call runs
/// next (hang-up after a person took it; the failure message then hang-up otherwise).
pub async fn transfer_status(State(app): State<SharedApp>, body: RawBody) -> Response {
    let (call_id, params) =
        match call_id_of(&body.path_and_query).and_then(|id| Ok((id, verified_form(&app, &body)?))) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let Some(status) = get(&params, "DialCallStatus") else {
        return ApiFailure::new(StatusCode::BAD_REQUEST, "dial_status_missing", "DialCallStatus is missing")
            .into_response();
    };
    if !crate::transfer::known_dial_status(status) {
        return ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "dial_status_invalid",
            format!("DialCallStatus {status:?} is not a value Twilio sends"),
        )
        .into_response();
    }
    match crate::transfer::on_dial_result(&app, call_id, status, get(&params, "DialCallDuration")).await {
        Ok(r) => {
            Metrics::inc(&app.metrics.status_callbacks);
            ([(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")], r.twiml).into_response()
        }
        Err(StoreError::NotFound(_)) => {
            ApiFailure::new(StatusCode::NOT_FOUND, "call_unknown", "no call with this call_id")
                .into_response()
        }
        Err(e) => ApiFailure::storage(e).into_response(),
    }
}
