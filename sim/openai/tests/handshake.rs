//! The WebSocket handshake on `/v1/realtime`: authentication, the retired beta header, the
//! model parameter, handshake refusals on demand, and what a GA connection gets first.

mod common;

use callway_sim_openai::{Auth, Fault, OpenAiSim, Refusal, SessionEnd, SimConfig};
use common::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn handshake_without_or_with_a_wrong_key_is_refused_with_openai_401_bodies() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();

    let r = upgrade_attempt(sim.addr(), "?model=gpt-realtime", &[]).await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", None);
    assert!(r.json["error"]["message"].as_str().unwrap().starts_with("You didn't provide an API key."));

    let r =
        upgrade_attempt(sim.addr(), "?model=gpt-realtime", &[("authorization", "Bearer sk-wrong-key-1234")])
            .await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", Some("invalid_api_key"));
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Incorrect API key provided: sk-") && msg.contains("1234"), "{msg}");
    assert!(!msg.contains("sk-wrong-key-1234"), "the key is masked: {msg}");
    assert!(r.headers.iter().any(|(k, v)| k == "x-request-id" && v.starts_with("req_")));

    // A real client sees the same refusal as a handshake error.
    let err =
        try_connect(sim.addr(), &sim.ws_url(), &[("authorization", "Bearer nope")]).await.err().unwrap();
    assert!(err.to_string().contains("401"), "{err}");

    assert_eq!(sim.handshakes().iter().map(|h| h.status).collect::<Vec<_>>(), [401, 401, 401]);
    assert!(sim.sessions().is_empty(), "no session for a refused handshake");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_ga_connection_starts_with_session_created_in_the_ga_shape() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    let created = c.expect("session.created").await;
    let s = &created["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["model"], "gpt-realtime-2.1");
    assert_eq!(s["output_modalities"], serde_json::json!(["audio"]));
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad", "server VAD by default");
    assert!(s.get("modalities").is_none() && s.get("voice").is_none(), "no beta keys");

    let h = &sim.handshakes()[0];
    assert_eq!(h.status, 101);
    assert_eq!(h.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(h.header("openai-beta"), None);
    c.close().await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.auth, Auth::ApiKey);
    assert_eq!(rec.model, "gpt-realtime-2.1");
    assert!(rec.id.starts_with("sess_"));
    assert_eq!(rec.ended, Some(SessionEnd::ClientClosed(Some(1000))));
    assert_eq!(rec.sent_kinds(), ["session.created"]);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_realtime_model_name_is_taken_live_and_shut_down_models_are_refused() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let auth = [("authorization", "Bearer sk-test")];
    let mut taken = 0;
    for model in [
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2",
        "gpt-realtime-1.5",
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
    ] {
        let url = format!("ws://{}/v1/realtime?model={model}", sim.addr());
        let mut c = try_connect(sim.addr(), &url, &auth).await.unwrap_or_else(|e| panic!("{model}: {e}"));
        let created = c.expect("session.created").await;
        assert_eq!(created["session"]["model"], model);
        c.close().await;
        taken += 1;
    }
    let r = upgrade_attempt(sim.addr(), "?model=gpt-live-1", &auth).await;
    assert_eq!(r.status, 400);
    assert_rest_error(&r.json, "invalid_request_error", Some("invalid_model"));
    let r = upgrade_attempt(sim.addr(), "?model=gpt-4o-realtime-preview-2024-12-17", &auth).await;
    assert_eq!(r.status, 404);
    assert_rest_error(&r.json, "invalid_request_error", Some("model_not_found"));
    assert_eq!(sim.sessions().len(), taken, "no session for a refused model");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_beta_header_is_accepted_then_refused_with_close_4000() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = try_connect(
        sim.addr(),
        &sim.ws_url(),
        &[("authorization", "Bearer sk-test"), ("openai-beta", "realtime=v1")],
    )
    .await
    .expect("the upgrade itself succeeds");
    let (events, close) = c.until_close().await;
    assert_eq!(events.len(), 1, "only the error, no session.created: {events:?}");
    assert_error_event(&events[0], "beta_api_shape_disabled", None);
    assert_eq!(
        events[0]["error"]["message"],
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    );
    assert_eq!(close.unwrap().code, CloseCode::from(4000));
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let rec = sim.session(0).unwrap();
    assert!(rec.beta_header);
    assert!(matches!(rec.ended, Some(SessionEnd::ServerClosed { code: 4000, .. })));
    sim.shutdown().await;
}

#[tokio::test]
async fn model_parameter_is_required_and_other_paths_are_404() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let r = upgrade_attempt(sim.addr(), "", &[("authorization", "Bearer sk-test")]).await;
    assert_eq!(r.status, 400);
    assert_rest_error(&r.json, "invalid_request_error", Some("missing_required_parameter"));
    assert_eq!(r.json["error"]["param"], "model");

    let r = http(
        sim.addr(),
        "GET",
        "/v1/realtime?model=gpt-realtime",
        &[("authorization", "Bearer sk-test")],
        "",
    )
    .await;
    assert_eq!(r.status, 400, "a GET without upgrade is not a session");

    let r = http(sim.addr(), "GET", "/v1/models", &[("authorization", "Bearer sk-test")], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["error"]["message"], "Invalid URL (GET /v1/models)");
    sim.shutdown().await;
}

#[tokio::test]
async fn handshake_refusals_on_demand_count_down_then_let_through() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![
            Fault::RefuseHandshake { refusal: Refusal::RateLimited, times: Some(1) },
            Fault::RefuseHandshake { refusal: Refusal::ServerError, times: Some(1) },
        ],
        ..fast_config()
    })
    .await
    .unwrap();
    let auth = [("authorization", "Bearer sk-test")];
    let r = upgrade_attempt(sim.addr(), "?model=gpt-realtime", &auth).await;
    assert_eq!(r.status, 429);
    assert_rest_error(&r.json, "requests", Some("rate_limit_exceeded"));
    let r = upgrade_attempt(sim.addr(), "?model=gpt-realtime", &auth).await;
    assert_eq!(r.status, 500);
    assert_rest_error(&r.json, "server_error", None);
    let mut c = connect(&sim).await;
    c.expect("session.created").await;

    // Faults can be changed at run time.
    sim.set_faults(vec![Fault::RefuseHandshake { refusal: Refusal::Overloaded, times: None }]);
    for _ in 0..2 {
        assert_eq!(upgrade_attempt(sim.addr(), "?model=gpt-realtime", &auth).await.status, 503);
    }
    assert_eq!(sim.handshakes().iter().map(|h| h.status).collect::<Vec<_>>(), [429, 500, 101, 503, 503]);
    assert_eq!(sim.sessions().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn browsers_may_authenticate_with_the_insecure_subprotocol() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = try_connect(
        sim.addr(),
        &sim.ws_url(),
        &[("sec-websocket-protocol", "realtime, openai-insecure-api-key.sk-test")],
    )
    .await
    .unwrap();
    assert!(c.response_headers.iter().any(|(k, v)| k == "sec-websocket-protocol" && v == "realtime"));
    c.expect("session.created").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_1001() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let watcher = tokio::spawn(async move { c.until_close().await });
    sim.shutdown().await;
    let (events, close) = watcher.await.unwrap();
    assert!(events.is_empty());
    assert_eq!(close.unwrap().code, CloseCode::Away);
}
