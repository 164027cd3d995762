//! The web visit on the GPT-Live engine (`OPENAI_VOICE_API=live`), over HTTP against a running
//! control plane with OpenAI as a recording endpoint: `/api/session` hands out a capability
//! and no key (GPT-Live has no ephemeral keys), the page's SDP offer posted to
//! `/api/session/webrtc` under that capability becomes exactly one `POST /v1/live/sessions`
//! with the server key (the session, its tools and the page's narrowed data channel checked
//! field by field), the answer SDP comes back as on `/v1/realtime/calls`, and each refusal
//! (no capability, wrong body, OpenAI refusing the offer, the key or the rate) gets its own
//! answer. The page's policy names no OpenAI origin on this engine. The whole visit in a real
//! browser on this engine is `browser.rs`.

mod common;

use common::recorder::Reply;
use common::web::*;
use serde_json::json;

const OFFER: &str = "v=0\r\no=- 46117317 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\na=ice-lite\r\n";

async fn live() -> Web {
    web_with(&[("OPENAI_VOICE_API", "live")]).await
}

/// `/api/session` on the Live engine: (capability, the answer).
async fn session(w: &Web) -> (String, common::Answer) {
    let r = w.app.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.json["capability"].as_str().unwrap().to_owned(), r)
}

async fn offer(w: &Web, cap: Option<&str>, content_type: &str, body: &str) -> common::Answer {
    w.app.post_raw("/api/session/webrtc", cap, content_type, body.as_bytes().to_vec()).await
}

fn created() -> Reply {
    Reply::new(
        200,
        json!({"session": {"id": "sess_live1"}, "transport": {"type": "webrtc", "sdp": ANSWER}}).to_string(),
    )
}

#[tokio::test]
async fn the_page_gets_a_capability_and_its_offer_is_answered_with_the_server_key() {
    let w = live().await;
    let (cap, s) = session(&w).await;
    assert_eq!(s.json["engine"], "live");
    assert_eq!(s.json["webrtc_url"], "/api/session/webrtc");
    assert_eq!(s.json["model"], "gpt-live-1.1");
    assert!(s.json.get("client_secret").is_none(), "no ephemeral key on GPT-Live: {}", s.text);
    assert!(w.openai.take().is_empty(), "nothing asked of OpenAI before the offer");

    w.openai.script([created()]);
    let r = offer(&w, Some(&cap), "application/sdp", OFFER).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/sdp");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.text, ANSWER);
    assert!(!r.text.contains("sk-test-key"));

    let reqs = w.openai.take();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/v1/live/sessions"));
    assert_eq!(q.header("authorization"), Some("Bearer sk-test-key"));
    assert_eq!(q.header("openai-beta"), None);
    let body = q.json();
    assert_eq!(body["transport"], json!({"type": "webrtc", "sdp": OFFER}));
    let session = &body["session"];
    assert_eq!(session["model"], "gpt-live-1.1");
    assert_eq!(session["audio"], json!({"output": {"voice": "marin"}}), "no format on WebRTC");
    assert!(session["instructions"].as_str().unwrap().contains("Claire"));
    assert_eq!(session["delegation"]["type"], "responses");
    let tools: Vec<&str> = session["delegation"]["responses"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["save_lead", "trigger_call"]);
    let dc = &session["client"]["data_channel"];
    assert_eq!(
        dc["allowed_client_events"],
        json!(["session.commentary.append", "response.item.create", "response.create", "session.close"])
    );
    let server: Vec<&str> =
        dc["allowed_server_events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        !server.contains(&"session.delegation.created") && server.contains(&"response.event"),
        "{server:?}"
    );
    assert_eq!(dc["allowed_server_events"][5]["response_event"], "response.output_item.done");

    // The same capability runs the tools, as on Realtime.
    let s = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body("06 12 34 56 78")).await;
    assert_eq!(s.status, 200, "{}", s.text);
}

#[tokio::test]
async fn offers_are_refused_precisely_and_limited_per_session() {
    let w = live().await;
    let (cap, _) = session(&w).await;
    // Before OpenAI is asked: no or a forged capability, a wrong content type, not an offer.
    assert_eq!(offer(&w, None, "application/sdp", OFFER).await.status, 401);
    assert_eq!(offer(&w, Some("cap1.forged.x"), "application/sdp", OFFER).await.status, 401);
    let r = offer(&w, Some(&cap), "application/json", "{}").await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"), "{}", r.text);
    let r = offer(&w, Some(&cap), "application/sdp", "hello").await;
    assert_eq!((r.status, r.code()), (400, "invalid_offer"), "{}", r.text);
    assert!(w.openai.take().is_empty());

    // OpenAI refusing the browser's offer is the browser's 400; our key, OpenAI's 502.
    let offer_err = r#"{"error":{"message":"Invalid SDP offer: it has no data channel section.","type":"invalid_request_error","param":null,"code":"invalid_offer"}}"#;
    let key_err = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    w.openai.script([Reply::new(400, offer_err), Reply::new(401, key_err)]);
    let r = offer(&w, Some(&cap), "application/sdp", OFFER).await;
    assert_eq!((r.status, r.code()), (400, "webrtc_refused"), "{}", r.text);
    assert!(r.json["message"].as_str().unwrap().contains("data channel"), "{}", r.text);
    let r = offer(&w, Some(&cap), "application/sdp", OFFER).await;
    assert_eq!((r.status, r.code()), (502, "openai_auth_failed"), "{}", r.text);
    assert!(!r.text.contains("Incorrect API key"), "the operator's problem stays in the logs");

    // Three sessions started per web session and hour (each is billed): the fourth waits.
    w.openai.script([created()]);
    assert_eq!(offer(&w, Some(&cap), "application/sdp", OFFER).await.status, 201);
    let r = offer(&w, Some(&cap), "application/sdp", OFFER).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
    // Another session is not held back.
    let (other, _) = session(&w).await;
    w.openai.script([created()]);
    assert_eq!(offer(&w, Some(&other), "application/sdp", OFFER).await.status, 201);
}

#[tokio::test]
async fn each_engine_keeps_to_its_own_path() {
    // Realtime: the offer route is not this engine's, and the page may reach OpenAI's origin.
    let w = web().await;
    let (_, cap) = w.app.capability();
    let r = offer(&w, Some(&cap), "application/sdp", OFFER).await;
    assert_eq!((r.status, r.code()), (409, "wrong_engine"), "{}", r.text);
    let page = w.app.http.get(w.app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains(&format!("connect-src 'self' {}", w.openai.base.trim_end_matches('/'))), "{csp}");

    // GPT-Live: the page talks to its own origin only.
    let w = live().await;
    let page = w.app.http.get(w.app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
}
