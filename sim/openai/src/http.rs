//! HTTP helpers shared by the WebSocket handshake and the REST endpoint: JSON responses with
//! OpenAI's error bodies, bearer-token authentication, header capture.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::ids::IdGen;
use crate::record::Auth;
use crate::state::{Shared, lock};

/// Response body type.
pub(crate) type Body = Full<Bytes>;

/// The error code a refusal carried (OpenAI's `error.code`, else its `error.type`), kept on
/// the response for the one log line [`crate::server`] writes per refused request.
#[derive(Debug, Clone)]
pub(crate) struct RefusalCode(pub String);

/// A JSON response with a `x-request-id` like the service's.
pub(crate) fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default())));
    let error = &body["error"];
    if let Some(code) = error["code"].as_str().or_else(|| error["type"].as_str()) {
        r.extensions_mut().insert(RefusalCode(code.to_owned()));
    }
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&IdGen::new().next("req")) {
        h.insert("x-request-id", v);
    }
    r
}

/// `{"error":{…}}` with `code` null or a string.
pub(crate) fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// OpenAI's 404 for a path it does not serve.
pub(crate) fn not_found(method: &str, path: &str) -> Response<Body> {
    json_response(
        404,
        &error_body(&format!("Invalid URL ({method} {path})"), "invalid_request_error", None, None),
    )
}

/// Headers as lowercase `(name, value)` pairs.
pub(crate) fn header_list(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect()
}

/// The key a request presents: `Authorization: Bearer …`, or for browsers the
/// `openai-insecure-api-key.…` WebSocket subprotocol.
pub(crate) fn presented_key(h: &HeaderMap) -> Option<String> {
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_owned());
        }
        return None;
    }
    h.get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("openai-insecure-api-key.").map(str::to_owned))
}

/// A key as OpenAI shows it in its errors (`sk-***…1234`), also for the banner.
pub(crate) fn mask(key: &str) -> String {
    let n = key.chars().count();
    if n <= 8 {
        return "*".repeat(n);
    }
    let head: String = key.chars().take(3).collect();
    let tail: String = key.chars().skip(n - 4).collect();
    format!("{head}{}{tail}", "*".repeat(n - 7))
}

/// Checks the presented key. `allow_ephemeral`: an unexpired `ek_…` is accepted (WebSocket
/// sessions), with the session it carries. `Err` is the 401 status and body.
pub(crate) fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    allow_ephemeral: bool,
) -> Result<(Auth, Option<Value>), (u16, Value)> {
    let Some(key) = presented_key(headers) else {
        return Err((
            401,
            error_body(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                None,
            ),
        ));
    };
    if key == shared.api_key {
        return Ok((Auth::ApiKey, None));
    }
    if allow_ephemeral && let Some(issued) = lock(&shared.issued).get(&key).cloned() {
        if issued.expires_at > shared.clock.unix_secs() {
            return Ok((Auth::Ephemeral(key), Some(issued.session)));
        }
        // Wording is the simulator's choice.
        return Err((
            401,
            error_body(
                "The ephemeral key has expired.",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            ),
        ));
    }
    Err((
        401,
        error_body(
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask(&key)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_and_masked() {
        let mut h = HeaderMap::new();
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("realtime, openai-insecure-api-key.sk-abc"),
        );
        assert_eq!(presented_key(&h).as_deref(), Some("sk-abc"));
        h.insert("authorization", HeaderValue::from_static("bearer  sk-xyz "));
        assert_eq!(presented_key(&h).as_deref(), Some("sk-xyz"));
        h.insert("authorization", HeaderValue::from_static("Basic Zm9v"));
        assert_eq!(presented_key(&h), None);
        assert_eq!(mask("sk-wrong-key-1234"), "sk-**********1234");
        assert_eq!(mask("short"), "*****");
    }
}
