//! The listener: one port, HTTP/1.1, five routes. `GET /v1/realtime` with a WebSocket upgrade
//! starts a Realtime session (authentication, handshake faults, the beta header, the model
//! parameter checked first); `POST /v1/realtime/client_secrets` is the REST endpoint
//! (`rest.rs`); `POST /v1/realtime/calls` starts a WebRTC session (`calls.rs`); `GET
//! /v1/live/sessions` with a WebSocket upgrade starts a GPT-Live session (`live/`), and `POST
//! /v1/live/sessions` a GPT-Live session over WebRTC (`live/create.rs`); `POST /v1/responses`
//! answers the Responses API (`responses_api.rs`). Anything else gets OpenAI's 404 body.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::faults::SessionFaults;
use crate::http::{Body, RefusalCode, authenticate, error_body, header_list, json_response, not_found};
use crate::record::{Auth, HandshakeRecord, SessionRecord};
use crate::response::Pacing;
use crate::session::{Session, Settings, Transport};
use crate::state::{Shared, lock, shutdown_signalled};
use crate::ws::{self, WsCtx};

/// Accepts connections until shutdown.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            () = shutdown_signalled(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut shutdown = shared.shutdown.subscribe();
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| route(req, svc_shared.clone()));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = shutdown_signalled(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let response = match (method.clone(), path.as_str()) {
        (Method::GET, "/v1/realtime") => handshake(req, &shared),
        (Method::POST, "/v1/realtime/client_secrets") => crate::rest::client_secrets(req, shared).await,
        (Method::POST, "/v1/realtime/calls") => crate::calls::create(req, shared).await,
        (Method::POST, "/v1/responses") => crate::responses_api::create(req, shared).await,
        (Method::OPTIONS, "/v1/realtime/calls") => crate::calls::preflight(),
        (Method::GET, "/v1/live/sessions") => crate::live::handshake(req, &shared),
        (Method::POST, "/v1/live/sessions") => crate::live::create(req, shared).await,
        (m, p) => not_found(m.as_str(), p),
    };
    // Each refused request is said once, so a misdirected client shows in the log.
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let code = response.extensions().get::<RefusalCode>().map_or("none", |c| c.0.as_str());
        tracing::info!(%method, %path, status = status.as_u16(), %code, "request refused");
    }
    Ok(response)
}

/// Adds the record of a session just accepted (either transport) and returns it.
pub(crate) fn new_record(
    shared: &Shared,
    id: &str,
    model: String,
    auth: Auth,
    beta_header: bool,
    call_id: Option<String>,
) -> Arc<Mutex<SessionRecord>> {
    let mut sessions = lock(&shared.sessions);
    let rec = Arc::new(Mutex::new(SessionRecord {
        index: sessions.len(),
        id: id.to_owned(),
        model,
        auth,
        beta_header,
        call_id,
        received: Vec::new(),
        sent: Vec::new(),
        appends: 0,
        appended_bytes: 0,
        audio_deltas_sent: 0,
        stalled: false,
        withheld: 0,
        schema_violations: Vec::new(),
        media_frames_in: 0,
        media_frames_out: 0,
        ended: None,
        live: None,
    }));
    sessions.push(rec.clone());
    rec
}

/// A session's settings from the live configuration.
pub(crate) fn settings(c: &crate::SimConfig, transport: Transport) -> Settings {
    Settings {
        script: c.script.clone(),
        pacing: Pacing { ttfb: c.ttfb, speed: c.speed, chunk_ms: c.chunk_ms },
        echo: c.echo,
        transport,
    }
}

fn header_has_token(req: &Request<Incoming>, name: &str, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What records a handshake attempt's outcome (its status) with the request's URI and headers.
pub(crate) fn handshake_recorder<'a>(req: &Request<Incoming>, shared: &'a Shared) -> impl Fn(u16) + 'a {
    let uri = req.uri().to_string();
    let headers = header_list(req.headers());
    move |status: u16| {
        lock(&shared.handshakes).push(HandshakeRecord { uri: uri.clone(), headers: headers.clone(), status });
        shared.bump();
    }
}

fn handshake(mut req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let record = handshake_recorder(&req, shared);
    let key = match check_upgrade(&req) {
        Ok(key) => key,
        Err(message) => {
            record(400);
            return refuse_upgrade(message);
        }
    };
    let (auth, initial) = match authenticate(shared, req.headers(), true) {
        Ok(a) => a,
        Err((status, body)) => {
            record(status);
            return json_response(status, &body);
        }
    };
    let (settings, faults, cap, record_events, check_outgoing, refusal) = {
        let mut live = lock(&shared.live);
        let refusal = live.take_refusal(true);
        let c = &live.config;
        (
            settings(c, Transport::WebSocket),
            SessionFaults::from_list(&c.faults),
            c.session_cap,
            c.record_events,
            c.check_outgoing,
            refusal,
        )
    };
    if let Some(r) = refusal {
        record(r.status());
        return json_response(r.status(), &r.body());
    }
    let model = query_param(req.uri().query(), "model")
        .or_else(|| initial.as_ref().and_then(|s| s["model"].as_str()).map(str::to_owned));
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        record(400);
        return json_response(
            400,
            &error_body(
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                Some("model"),
                Some("missing_required_parameter"),
            ),
        );
    };
    if let Some((status, e)) = crate::models::refusal(&model) {
        record(status);
        return json_response(status, &e.to_body());
    }
    let beta = req
        .headers()
        .get_all("openai-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "realtime=v1"));
    let offers_realtime = header_has_token(&req, "sec-websocket-protocol", "realtime");

    let session = Session::new(&model, initial.as_ref(), settings);
    let rec = new_record(shared, &session.id, model, auth, beta, None);
    record(101);

    let on_upgrade = hyper::upgrade::on(&mut req);
    let ctx = WsCtx {
        shared: shared.clone(),
        record: rec.clone(),
        faults,
        cap,
        beta,
        record_events,
        check_outgoing,
    };
    tokio::spawn(async move {
        if let Some(ws) = accept_socket(on_upgrade, &rec, &ctx.shared).await {
            ws::run(ws, session, ctx).await;
        }
    });
    switching_protocols(&key, offers_realtime.then_some("realtime"))
}

/// Checks a WebSocket upgrade request (RFC 6455): `Ok` with its `sec-websocket-key`, `Err`
/// with the message of OpenAI's 400 ([`refuse_upgrade`] makes the response).
pub(crate) fn check_upgrade(req: &Request<Incoming>) -> Result<hyper::header::HeaderValue, &'static str> {
    let key = req.headers().get("sec-websocket-key").cloned();
    let is_upgrade =
        header_has_token(req, "connection", "upgrade") && header_has_token(req, "upgrade", "websocket");
    let (Some(key), true) = (key, is_upgrade) else {
        return Err("Expected a WebSocket upgrade request.");
    };
    if req.headers().get("sec-websocket-version").and_then(|v| v.to_str().ok()) != Some("13") {
        return Err("Unsupported WebSocket version: expected 13.");
    }
    Ok(key)
}

/// OpenAI's 400 for a request [`check_upgrade`] refused.
pub(crate) fn refuse_upgrade(message: &str) -> Response<Body> {
    json_response(400, &error_body(message, "invalid_request_error", None, None))
}

/// The server side of an accepted upgrade, once hyper hands the connection over; `None` (the
/// session record ended) when the upgrade failed.
pub(crate) async fn accept_socket(
    on_upgrade: hyper::upgrade::OnUpgrade,
    rec: &Mutex<SessionRecord>,
    shared: &Shared,
) -> Option<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>> {
    match on_upgrade.await {
        Ok(upgraded) => {
            let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
            Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await)
        }
        Err(e) => {
            lock(rec).ended = Some(crate::record::SessionEnd::ClientGone(format!("upgrade failed: {e}")));
            shared.bump();
            None
        }
    }
}

/// The `101 Switching Protocols` accepting `key`, naming `subprotocol` if any.
pub(crate) fn switching_protocols(
    key: &hyper::header::HeaderValue,
    subprotocol: Option<&'static str>,
) -> Response<Body> {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("connection", hyper::header::HeaderValue::from_static("Upgrade"));
    h.insert("upgrade", hyper::header::HeaderValue::from_static("websocket"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(p) = subprotocol {
        h.insert("sec-websocket-protocol", hyper::header::HeaderValue::from_static(p));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_decode() {
        assert_eq!(query_param(Some("model=gpt-realtime&x=1"), "model").as_deref(), Some("gpt-realtime"));
        assert_eq!(query_param(Some("a=b&model=gpt%2Drealtime"), "model").as_deref(), Some("gpt-realtime"));
        assert_eq!(query_param(Some("models=x"), "model"), None);
        assert_eq!(query_param(None, "model"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
