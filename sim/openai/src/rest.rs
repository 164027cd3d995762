//! `POST /v1/realtime/client_secrets`: ephemeral keys for browsers.
//!
//! The request is checked as the service checks it: Bearer API key (401 otherwise), a JSON
//! object body with only `expires_after` and `session`; `expires_after.anchor` must be
//! `created_at` and `seconds` an integer from 10 to 7200 (default 600); `session` must be a
//! valid GA session object (the client schema's `RealtimeSessionCreateRequest` or
//! `RealtimeTranscriptionSessionCreateRequest`: `type`, known keys only). The answer is
//! `{"value":"ek_…","expires_at":…,"session":{…}}`; the key then opens WebSocket sessions
//! (with that session configuration) until it expires. Errors use OpenAI's REST body
//! `{"error":{"message","type","param","code"}}`.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};

use crate::api_error::ApiError;
use crate::http::{Body, authenticate, json_response};
use crate::ids::IdGen;
use crate::record::ClientSecretRequest;
use crate::schema::check_session;
use crate::session_config::{default_session, merge_update};
use crate::state::{Issued, Shared, lock};

/// The service's answer to a body that is not JSON.
const NOT_JSON: &str = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

pub(crate) async fn client_secrets(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let auth = authenticate(&shared, req.headers(), false).map(|_| ());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Default::default(),
    };
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let (status, json) = match auth {
        Err(refused) => refused,
        Ok(()) => {
            let refusal = lock(&shared.live).take_refusal(false);
            match refusal {
                Some(r) => (r.status(), r.body()),
                None => match issue(&shared, &body) {
                    Ok(v) => (200, v),
                    Err(e) => {
                        (if e.code.as_deref() == Some("model_not_found") { 404 } else { 400 }, e.to_body())
                    }
                },
            }
        }
    };
    lock(&shared.secret_requests).push(ClientSecretRequest {
        authorization,
        body: body_text,
        status,
        response: json.clone(),
    });
    shared.bump();
    json_response(status, &json)
}

fn check_expires_after(v: &Value) -> Result<u64, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid(
            "invalid_type",
            "Invalid type for 'expires_after': expected an object, but got another type instead.",
            Some("expires_after".into()),
        ));
    };
    if let Some(k) = obj.keys().find(|k| *k != "anchor" && *k != "seconds") {
        return Err(ApiError::unknown_parameter(format!("expires_after.{k}")));
    }
    match obj.get("anchor") {
        None => return Err(ApiError::missing_parameter("expires_after.anchor".into())),
        Some(Value::String(a)) if a == "created_at" => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_value",
                format!("Invalid value: {other}. Supported values are: 'created_at'."),
                Some("expires_after.anchor".into()),
            ));
        }
    }
    let seconds = match obj.get("seconds") {
        None | Some(Value::Null) => return Ok(600),
        Some(s) => s,
    };
    let Some(n) = seconds.as_i64().filter(|_| seconds.is_i64() || seconds.is_u64()) else {
        return Err(ApiError::invalid(
            "invalid_type",
            "Invalid type for 'expires_after.seconds': expected an integer, but got another type instead.",
            Some("expires_after.seconds".into()),
        ));
    };
    if n < 10 {
        return Err(ApiError::invalid(
            "integer_below_min_value",
            format!(
                "Invalid 'expires_after.seconds': integer below minimum value. Expected a value >= 10, but got {n} instead."
            ),
            Some("expires_after.seconds".into()),
        ));
    }
    if n > 7200 {
        return Err(ApiError::invalid(
            "integer_above_max_value",
            format!(
                "Invalid 'expires_after.seconds': integer above maximum value. Expected a value <= 7200, but got {n} instead."
            ),
            Some("expires_after.seconds".into()),
        ));
    }
    Ok(n as u64)
}

fn issue(shared: &Shared, body: &[u8]) -> Result<Value, ApiError> {
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|_| ApiError {
            kind: "invalid_request_error",
            code: None,
            message: NOT_JSON.to_owned(),
            param: None,
        })?
    };
    let Some(obj) = parsed.as_object() else {
        return Err(ApiError::invalid(
            "invalid_type",
            "Invalid type for request body: expected an object.",
            None,
        ));
    };
    if let Some(k) = obj.keys().find(|k| *k != "expires_after" && *k != "session") {
        return Err(ApiError::unknown_parameter(k.clone()));
    }
    let seconds = match obj.get("expires_after") {
        Some(v) => check_expires_after(v)?,
        None => 600,
    };
    let requested = obj.get("session").cloned().unwrap_or_else(|| json!({"type": "realtime"}));
    check_session(&requested, "session")?;
    let mut ids = IdGen::new();
    let mut session = if requested["type"] == "realtime" {
        let model = requested["model"].as_str().unwrap_or("gpt-realtime");
        if let Some((_, e)) = crate::models::refusal(model) {
            return Err(e);
        }
        let mut s = default_session(model);
        merge_update(&mut s, &requested);
        s
    } else {
        requested.clone()
    };
    let stored = session.clone();
    session["object"] = json!("realtime.session");
    session["id"] = json!(ids.next("sess"));
    session["expires_at"] = json!(0);
    let value = ids.ephemeral_key();
    let expires_at = shared.clock.unix_secs() + seconds;
    lock(&shared.issued).insert(value.clone(), Issued { expires_at, session: stored });
    Ok(json!({"value": value, "expires_at": expires_at, "session": session}))
}
