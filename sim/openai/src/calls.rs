//! `POST /v1/realtime/calls`: a Realtime session over WebRTC, as a browser starts one.
//!
//! The request is checked as the service checks it, in this order:
//!
//! 1. `Authorization: Bearer` — the API key, or an ephemeral key `client_secrets` issued that
//!    has not expired and has not started a call yet (one call per key): otherwise `401` with
//!    OpenAI's error body (`invalid_api_key`);
//! 2. the body — `Content-Type: application/sdp` with the offer as the whole body, or
//!    `multipart/form-data` with an `sdp` part and an optional `session` part (a GA session
//!    object, checked against the client schema like `client_secrets`' `session`); anything
//!    else is `400`;
//! 3. the model — the session's, else the `model` query parameter, else the ephemeral key's
//!    (refused models get their `invalid_model` / `model_not_found` answers);
//! 4. the offer — parsed and negotiated by str0m: it must offer an audio section with Opus and
//!    a data channel (`m=application … webrtc-datachannel`); otherwise `400`.
//!
//! The answer is `201 Created`, `Content-Type: application/sdp`, the answer SDP as body and
//! `Location: /v1/realtime/calls/rtc_…` naming the call. The session itself then runs in
//! `rtc.rs`. The answer carries one ICE-lite host candidate on the loopback UDP port bound for
//! the call.
//!
//! Codes the public record does not show (a bad offer, a reused key, a wrong content type) are
//! the simulator's choice and say so where they are built.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc};

use crate::api_error::ApiError;
use crate::calls_body::{CallsBodyError, parse_calls_body, reachable_candidates};
use crate::http::{Body, authenticate, error_body, json_response};
use crate::ids::IdGen;
use crate::record::Auth;
use crate::schema::check_session;
use crate::server::{new_record, query_param, settings};
use crate::session::{Session, Transport};
use crate::session_config::merge_update;
use crate::state::{Shared, lock};

/// Largest body taken (an offer is a few KiB).
const MAX_BODY: usize = 256 * 1024;

/// Why a request was refused, as status and OpenAI error body.
pub(crate) type Refused = (u16, Value);

fn invalid(status: u16, e: ApiError) -> Refused {
    (status, e.to_body())
}

/// The CORS preflight a browser sends before its cross-origin `POST` (the page is served by
/// the control plane, the call goes to the API's origin): any origin, the two headers the
/// call carries.
pub(crate) fn preflight() -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type"));
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    r
}

/// Handles the request; every refusal is an OpenAI error body. Answers carry the CORS headers
/// a page needs to read them (`Location` included).
pub(crate) async fn create(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let mut r = respond(req, shared).await;
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-expose-headers", HeaderValue::from_static("Location"));
    r
}

async fn respond(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    match accept(req, &shared).await {
        Ok((call_id, answer)) => {
            let mut r = Response::new(Full::new(Bytes::from(answer)));
            *r.status_mut() = StatusCode::CREATED;
            let h = r.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/sdp"));
            if let Ok(v) = HeaderValue::from_str(&format!("/v1/realtime/calls/{call_id}")) {
                h.insert("location", v);
            }
            r
        }
        Err((status, body)) => json_response(status, &body),
    }
}

async fn accept(req: Request<Incoming>, shared: &Arc<Shared>) -> Result<(String, String), Refused> {
    let (parts, body) = req.into_parts();
    let (auth, initial) = authenticate(shared, &parts.headers, true)?;
    if let Auth::Ephemeral(key) = &auth
        && lock(&shared.redeemed).contains(key)
    {
        return Err(key_used());
    }
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(invalid(
                400,
                ApiError::invalid(
                    "invalid_value",
                    format!("The request body is larger than {MAX_BODY} bytes."),
                    None,
                ),
            ));
        }
    };
    let content_type =
        parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (sdp, form_session) = read_body(&content_type, &body)?;

    let mut session_init = initial.clone();
    if let Some(form) = &form_session {
        check_session(form, "session").map_err(|e| invalid(400, e))?;
        match &mut session_init {
            Some(init) => merge_update(init, form),
            None => session_init = Some(form.clone()),
        }
    }
    let model = form_session
        .as_ref()
        .and_then(|s| s["model"].as_str())
        .map(str::to_owned)
        .or_else(|| query_param(parts.uri.query(), "model"))
        .or_else(|| initial.as_ref().and_then(|s| s["model"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| "gpt-realtime".to_owned());
    if let Some((status, e)) = crate::models::refusal(&model) {
        return Err(invalid(status, e));
    }

    let (rtc, socket, answer) = negotiate(&sdp)?;

    if let Auth::Ephemeral(key) = &auth
        && !lock(&shared.redeemed).insert(key.clone())
    {
        // Two calls raced with one key: the second loses, as it would have one step later.
        return Err(key_used());
    }
    let (settings, cap, record_events, check_outgoing) = {
        let live = lock(&shared.live);
        let c = &live.config;
        (settings(c, Transport::WebRtc), c.session_cap, c.record_events, c.check_outgoing)
    };
    let session = Session::new(&model, session_init.as_ref(), settings);
    let call_id = IdGen::new().next("rtc");
    let record = new_record(shared, &session.id, model, auth, false, Some(call_id.clone()));
    let ctx = crate::rtc::RtcCtx { shared: shared.clone(), record, cap, record_events, check_outgoing };
    tokio::spawn(crate::rtc::run(rtc, socket, session, ctx));
    Ok((call_id, answer))
}

/// Answers a browser's offer as the service does (shared by the Realtime and the GPT-Live
/// WebRTC endpoints): parsed and checked ([`check_offer`]), negotiated by an ICE-lite str0m
/// peer with Opus only and one host candidate on a loopback UDP port bound for the call.
/// Returns the peer, its socket and the answer SDP; a refused offer is `400` `invalid_offer`.
pub(crate) fn negotiate(sdp: &str) -> Result<(Rtc, tokio::net::UdpSocket, String), Refused> {
    let offer = SdpOffer::from_sdp_string(&reachable_candidates(sdp))
        .map_err(|e| bad_offer(&format!("it does not parse ({e})")))?;
    check_offer(sdp)?;
    let socket = std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .and_then(tokio::net::UdpSocket::from_std)
        .map_err(|e| server_error(&format!("could not bind a UDP port on 127.0.0.1: {e}")))?;
    let local = socket.local_addr().map_err(|e| server_error(&e.to_string()))?;
    let now = std::time::Instant::now();
    let mut rtc = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .build(now);
    let candidate = Candidate::host(local, "udp").map_err(|e| server_error(&e.to_string()))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| bad_offer(&e.to_string()))?;
    Ok((rtc, socket, answer.to_sdp_string()))
}

/// The offer text and the form's `session`, from either body shape ([`parse_calls_body`]),
/// refusals in OpenAI's shape.
fn read_body(content_type: &str, body: &[u8]) -> Result<(String, Option<Value>), Refused> {
    let e = match parse_calls_body(content_type, body) {
        Ok(b) => return Ok((b.sdp, b.session)),
        Err(e) => e,
    };
    Err(match e {
        CallsBodyError::NoBoundary => {
            invalid(400, ApiError::invalid("invalid_value", "multipart/form-data without a boundary.", None))
        }
        CallsBodyError::MalformedMultipart => {
            invalid(400, ApiError::invalid("invalid_value", "The multipart body could not be parsed.", None))
        }
        CallsBodyError::NotUtf8(what) => bad_offer(&format!("the {what} is not UTF-8 text")),
        CallsBodyError::SessionNotJson(why) => invalid(
            400,
            ApiError::invalid(
                "invalid_json",
                format!("Invalid 'session': not JSON ({why})."),
                Some("session".into()),
            ),
        ),
        CallsBodyError::UnknownPart(name) => invalid(400, ApiError::unknown_parameter(name)),
        CallsBodyError::MissingSdp => invalid(400, ApiError::missing_parameter("sdp".into())),
        // Unsupported content types, and any kind added later.
        _ => invalid(
            400,
            // Code is the simulator's choice.
            ApiError::invalid(
                "unsupported_content_type",
                format!(
                    "Unsupported content type '{content_type}': send the SDP offer as application/sdp, or multipart/form-data with 'sdp' and 'session' fields."
                ),
                None,
            ),
        ),
    })
}

/// What the service needs of an offer beyond parsing: audio (Opus) and the data channel.
fn check_offer(sdp: &str) -> Result<(), Refused> {
    let has_audio = sdp.lines().any(|l| l.starts_with("m=audio"));
    let has_opus =
        sdp.lines().any(|l| l.starts_with("a=rtpmap:") && l.to_ascii_lowercase().contains("opus/48000"));
    let has_channel = sdp.lines().any(|l| l.starts_with("m=application") && l.contains("webrtc-datachannel"));
    match (has_audio && has_opus, has_channel) {
        (true, true) => Ok(()),
        (false, _) => Err(bad_offer("it has no audio section offering Opus at 48 kHz")),
        (_, false) => Err(bad_offer(
            "it has no data channel section (create the 'oai-events' channel before the offer)",
        )),
    }
}

/// A key that already started a call (wording and code are the simulator's choice: a key
/// starts one session).
fn key_used() -> Refused {
    (
        401,
        error_body(
            "This ephemeral key has already been used to start a session. Ask your server for a new one (POST /v1/realtime/client_secrets).",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
    )
}

/// A refused offer (code and wording are the simulator's choice).
fn bad_offer(why: &str) -> Refused {
    invalid(400, ApiError::invalid("invalid_offer", format!("Invalid SDP offer: {why}."), None))
}

fn server_error(why: &str) -> Refused {
    (
        500,
        error_body(
            &format!("The server had an error while processing your request: {why}"),
            "server_error",
            None,
            None,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_refusals_have_openai_shapes() {
        assert_eq!(read_body("text/plain", b"v=0").unwrap_err().0, 400);
        let (status, e) = read_body(
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{}\r\n--XyZ--",
        )
        .unwrap_err();
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("missing_required_parameter")));
        let (_, e) = read_body(
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--XyZ--",
        )
        .unwrap_err();
        assert_eq!(e["error"]["code"], "unknown_parameter");
        let (_, e) = read_body("multipart/form-data", b"").unwrap_err();
        assert_eq!(e["error"]["message"], "multipart/form-data without a boundary.");
        let (sdp, session) = read_body("application/sdp", b"v=0").unwrap();
        assert_eq!((sdp.as_str(), session), ("v=0", None));
    }

    #[test]
    fn offers_without_audio_or_channel_are_refused() {
        let audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        let channel = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert!(check_offer(&format!("{audio}{channel}")).is_ok());
        let (status, body) = check_offer(audio).unwrap_err();
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "invalid_offer");
        assert!(check_offer(channel).is_err());
    }
}
