//! `POST /v1/live/sessions`: a GPT-Live session over WebRTC, created by the application's
//! server with its project key on behalf of a browser (GPT-Live has no ephemeral keys).
//!
//! The request is checked as the service checks it, in this order:
//!
//! 1. `Authorization: Bearer` with the project key (an ephemeral `ek_` key is just an incorrect
//!    key here): otherwise `401` with OpenAI's body (`invalid_api_key`);
//! 2. the body: `Content-Type: application/json`, valid JSON, an object with exactly `session`
//!    and `transport` (`unknown_parameter` / `missing_required_parameter`, dotted paths);
//!    `transport` is `{"type":"webrtc","sdp":"<offer>"}`;
//! 3. the `session` as `session.start`'s would be (the vendored Live client schema: an unknown
//!    field is `unknown_parameter`), then the model, the documented limits (`live::config`);
//!    `audio.format` is refused: WebRTC negotiates its media format (OpenAI's guide says to
//!    omit it);
//! 4. the offer, answered as `POST /v1/realtime/calls` answers it (`crate::calls::negotiate`:
//!    Opus audio and a data channel required, else `400` `invalid_offer`).
//!
//! The answer is `200` with `{"session":{"id"},"transport":{"type":"webrtc","sdp":"<answer>"}}`
//! (the SDKs' `LiveCreateResponse`); the session itself then runs in `crate::rtc` with the Live
//! agent (`live::webrtc`). The status code (the reference shows the body only), the code and
//! wording of a refused `audio.format` and of a wrong content type are the simulator's choice.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use super::config;
use super::schema::check_live_client_event;
use super::session::{LiveSession, LiveSettings};
use super::webrtc::LiveRtc;
use crate::api_error::ApiError;
use crate::calls::{Refused, negotiate};
use crate::http::{Body, authenticate, error_body, json_response};
use crate::live_body::{LiveBodyError, parse_live_sessions_body};
use crate::rtc::RtcCtx;
use crate::server::new_record;
use crate::state::{Shared, lock};

/// Largest body taken (an offer and a session are a few KiB).
const MAX_BODY: usize = 256 * 1024;
/// Output chunks on WebRTC: one track frame each, so the transcript follows the voice closely.
const RTC_CHUNK_MS: u32 = 20;

fn invalid(e: ApiError) -> Refused {
    (400, e.to_body())
}

/// Handles the request; every refusal is an OpenAI error body.
pub(crate) async fn create(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    match accept(req, &shared).await {
        Ok(body) => json_response(200, &body),
        Err((status, body)) => json_response(status, &body),
    }
}

/// `{session, transport}` from the body ([`parse_live_sessions_body`]), refusals in OpenAI's
/// shape: the member at fault in `param`.
fn read_body(content_type: &str, body: &[u8]) -> Result<(Value, String), Refused> {
    let e = match parse_live_sessions_body(content_type, body) {
        Ok(b) => return Ok((b.session, b.sdp)),
        Err(e) => e,
    };
    Err(match e {
        LiveBodyError::NotJson => (
            400,
            error_body(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
                "invalid_request_error",
                None,
                None,
            ),
        ),
        LiveBodyError::NotAnObject => invalid(ApiError::invalid(
            "invalid_type",
            "Invalid body: expected an object with 'session' and 'transport'.",
            None,
        )),
        LiveBodyError::TransportNotAnObject => invalid(ApiError::invalid(
            "invalid_type",
            "Invalid type for 'transport': expected an object.",
            Some("transport".into()),
        )),
        LiveBodyError::Unknown(param) => invalid(ApiError::unknown_parameter(param)),
        LiveBodyError::Missing(param) => invalid(ApiError::missing_parameter(param.into())),
        LiveBodyError::UnsupportedTransport(value) => invalid(ApiError::invalid(
            "invalid_value",
            format!("Invalid value: {value}. Supported values are: 'webrtc'."),
            Some("transport.type".into()),
        )),
        LiveBodyError::InvalidSdp => invalid(ApiError::invalid(
            "invalid_value",
            "Invalid 'transport.sdp': expected a non-empty SDP offer.",
            Some("transport.sdp".into()),
        )),
        // Unsupported content types, and any kind added later. Code and wording are the
        // simulator's choice.
        _ => invalid(ApiError::invalid(
            "unsupported_content_type",
            format!(
                "Unsupported content type '{content_type}': send application/json with 'session' and 'transport'."
            ),
            None,
        )),
    })
}

/// Checks the `session` as the start of a session: the schema, then the service's own checks.
fn check_session(session: &Value) -> Result<(), Refused> {
    check_live_client_event(&json!({"type": "session.start", "session": session})).map_err(invalid)?;
    if session.pointer("/audio/format").is_some_and(|f| !f.is_null()) {
        return Err(invalid(ApiError::invalid(
            "invalid_value",
            "'session.audio.format' is not accepted for WebRTC: the media format is negotiated in the SDP. Omit it.",
            Some("session.audio.format".into()),
        )));
    }
    config::check_start(session).map(|_| ()).map_err(invalid)
}

async fn accept(req: Request<Incoming>, shared: &Arc<Shared>) -> Result<Value, Refused> {
    let (parts, body) = req.into_parts();
    let (auth, _) = authenticate(shared, &parts.headers, false)?;
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(invalid(ApiError::invalid(
                "invalid_value",
                format!("The request body is larger than {MAX_BODY} bytes."),
                None,
            )));
        }
    };
    let content_type =
        parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (session_config, sdp) = read_body(&content_type, &body)?;
    check_session(&session_config)?;
    let (rtc, socket, answer) = negotiate(&sdp)?;

    let (session, ctx_parts) = {
        let live = lock(&shared.live);
        let c = &live.config;
        let now = shared.clock.unix_secs();
        let slow_start = crate::faults::SessionFaults::from_list(&c.faults).slow_start.unwrap_or_default();
        let settings = LiveSettings {
            script: c.script.clone(),
            chunk_ms: RTC_CHUNK_MS,
            ttfb: c.ttfb,
            slow_start,
            expires_at: now + c.session_cap.as_secs(),
            unix_at_accept: now,
        };
        (LiveSession::new(settings), (c.session_cap, c.record_events, c.check_outgoing))
    };
    let id = session.id.clone();
    let model = session_config["model"].as_str().unwrap_or_default().to_owned();
    let record = new_record(shared, &id, model, auth, false, Some(id.clone()));
    let (cap, record_events, check_outgoing) = ctx_parts;
    let ctx = RtcCtx { shared: shared.clone(), record, cap, record_events, check_outgoing };
    tokio::spawn(crate::rtc::run(rtc, socket, LiveRtc::new(session, session_config), ctx));
    Ok(json!({"session": {"id": id}, "transport": {"type": "webrtc", "sdp": answer}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_member_by_member() {
        let ok = br#"{"session":{"model":"gpt-live-1"},"transport":{"type":"webrtc","sdp":"v=0"}}"#;
        let (session, sdp) = read_body("application/json", ok).unwrap();
        assert_eq!((session["model"].as_str(), sdp.as_str()), (Some("gpt-live-1"), "v=0"));
        let code = |ct: &str, body: &[u8]| {
            let (status, e) = read_body(ct, body).unwrap_err();
            (
                status,
                e["error"]["code"].as_str().map(str::to_owned),
                e["error"]["param"].as_str().map(str::to_owned),
            )
        };
        assert_eq!(code("application/sdp", b"v=0").1.as_deref(), Some("unsupported_content_type"));
        assert_eq!(code("application/json", b"{").1, None);
        assert_eq!(
            code("application/json", br#"{"session":{},"transport":{"type":"webrtc","sdp":"v=0"},"x":1}"#),
            (400, Some("unknown_parameter".into()), Some("x".into()))
        );
        assert_eq!(
            code("application/json", br#"{"transport":{"type":"webrtc","sdp":"v=0"}}"#).2.as_deref(),
            Some("session")
        );
        assert_eq!(
            code("application/json", br#"{"session":{},"transport":{"type":"sip","sdp":"v=0"}}"#)
                .2
                .as_deref(),
            Some("transport.type")
        );
        assert_eq!(
            code("application/json", br#"{"session":{},"transport":{"type":"webrtc"}}"#).1.as_deref(),
            Some("missing_required_parameter")
        );
    }

    #[test]
    fn sessions_are_checked_as_a_start_and_without_a_format() {
        assert!(
            check_session(&json!({"model": "gpt-live-1.1", "audio": {"output": {"voice": "marin"}}})).is_ok()
        );
        let (status, e) = check_session(&json!({"model": "gpt-live-1", "temperature": 1})).unwrap_err();
        assert_eq!((status, e["error"]["param"].as_str()), (400, Some("session.temperature")));
        let (_, e) = check_session(
            &json!({"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}),
        )
        .unwrap_err();
        assert_eq!(e["error"]["param"], "session.audio.format");
        let (_, e) = check_session(&json!({"model": "gpt-realtime-2.1"})).unwrap_err();
        assert_eq!(e["error"]["code"], "invalid_model");
    }
}
