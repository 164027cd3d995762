//! GPT-Live: the handshake, nothing before `session.start`, strict configuration, the resolved
//! session, `session.update`, and the vendored schemas. Paused tokio clock throughout.

mod common;
mod live_client;

use std::time::Duration;

use callway_sim_openai::live::schema::{
    LIVE_CLIENT_EVENTS_SCHEMA, LIVE_SERVER_EVENTS_SCHEMA, validate_live_client_event,
    validate_live_server_event,
};
use callway_sim_openai::{Fault, OpenAiSim, Refusal, SimConfig};
use common::{assert_rest_error, http};
use live_client::*;
use serde_json::{Value, json};

fn upgrade_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    all.extend_from_slice(extra);
    all
}

#[tokio::test(start_paused = true)]
async fn the_handshake_takes_the_server_key_and_answers_openais_error_bodies() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::RefuseHandshake { refusal: Refusal::RateLimited, times: Some(1) }],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let r = http(sim.addr(), "GET", "/v1/live/sessions", &upgrade_headers(&[]), "").await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", None);
    let r = http(
        sim.addr(),
        "GET",
        "/v1/live/sessions",
        &upgrade_headers(&[("authorization", "Bearer sk-wrong-1234")]),
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", Some("invalid_api_key"));
    let r = http(sim.addr(), "GET", "/v1/live/sessions", &[("authorization", "Bearer sk-test")], "").await;
    assert_eq!(r.status, 400, "not an upgrade");
    let ok = upgrade_headers(&[("authorization", "Bearer sk-test")]);
    let r = http(sim.addr(), "GET", "/v1/live/sessions", &ok, "").await;
    assert_eq!(r.status, 429, "the refusal fault applies to Live handshakes too");
    assert_rest_error(&r.json, "requests", Some("rate_limit_exceeded"));
    let r = http(sim.addr(), "GET", "/v1/live/sessions", &ok, "").await;
    assert_eq!(r.status, 101);
    let statuses: Vec<u16> = sim.handshakes().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [401, 401, 400, 429, 101]);
    assert!(sim.handshakes()[4].uri.ends_with("/v1/live/sessions"));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_taken_before_session_start_and_the_session_carries_on() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.send(json!({"type": "session.input_audio.append", "audio": "//8=", "event_id": "evt_early"})).await;
    assert_live_error(&c.next().await, "session_not_started", Some("evt_early"));
    c.send(json!({"type": "session.close"})).await;
    assert_live_error(&c.next().await, "session_not_started", None);
    let started = c.start(phone_start()).await;
    assert_eq!(started["client_event_id"], "evt_start");
    let s = &started["session"];
    assert!(s["id"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(s["status"], "active");
    assert_eq!(s["model"], "gpt-live-1.1");
    assert_eq!(
        s["audio"],
        json!({"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}})
    );
    assert_eq!(s["delegation"]["type"], "responses");
    assert_eq!(s["instructions"], "Tu es Claire, l'assistante de Callway.");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expires = s["expires_at"].as_u64().unwrap();
    assert!(expires > now + 3500 && expires <= now + 3601, "the 60-minute cap: {expires} vs {now}");
    c.send(phone_start()).await;
    assert_live_error(&c.next().await, "session_already_started", Some("evt_start"));
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.model, "gpt-live-1.1");
    assert!(rec.live.as_ref().unwrap().started);
    assert_eq!(sim.sessions().len(), 1);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_config_is_checked_strictly_with_the_real_error_shape() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    let mut bad = phone_start();
    bad["session"]["temperature"] = json!(0.8);
    c.send_unchecked(bad).await;
    let e = c.expect("error").await;
    assert_live_error(&e, "unknown_parameter", Some("evt_start"));
    assert_eq!(e["error"]["param"], "session.temperature");
    assert_eq!(e["error"]["message"], "Unknown parameter: 'session.temperature'.");
    assert_eq!(e["error"]["type"], "invalid_request_error");

    let mut bad = phone_start();
    bad["session"]["audio"]["format"]["item_id"] = json!("x");
    c.send_unchecked(bad).await;
    assert_eq!(c.expect("error").await["error"]["param"], "session.audio.format.item_id");

    let mut realtime = phone_start();
    realtime["session"]["model"] = json!("gpt-realtime-2.1");
    c.send(realtime).await;
    let e = c.expect("error").await;
    assert_live_error(&e, "invalid_model", Some("evt_start"));
    assert_eq!(e["error"]["param"], "session.model");

    let mut rate = phone_start();
    rate["session"]["audio"]["format"]["rate"] = json!(16000);
    c.send(rate).await;
    assert_eq!(c.expect("error").await["error"]["param"], "session.audio.format.rate");

    c.send_unchecked(json!({"type": "input_audio_buffer.append", "audio": "//8="})).await;
    let e = c.expect("error").await;
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
        (Some("invalid_value"), Some("type"))
    );

    // Still not started, and a good start works after the refusals.
    c.start(phone_start()).await;
    let rec = sim.session(0).unwrap();
    let violations = &rec.live.as_ref().unwrap().client_schema_violations;
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].starts_with("session.start: Unknown parameter"), "{violations:?}");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn session_update_changes_the_delegation_only() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(
        json!({"type": "session.update", "event_id": "evt_u1", "session": {"delegation": {"type": "responses",
        "responses": {"instructions": "Sois brève."}}}}),
    )
    .await;
    let u = c.expect("session.updated").await;
    assert_eq!(u["client_event_id"], "evt_u1");
    assert_eq!(u["session"]["delegation"]["responses"]["instructions"], "Sois brève.");
    assert_eq!(u["session"]["delegation"]["responses"]["model"], "gpt-5-mini", "omitted settings are kept");
    assert_eq!(u["session"]["audio"]["format"]["type"], "audio/pcmu");

    c.send_unchecked(
        json!({"type": "session.update", "event_id": "evt_u2", "session": {"instructions": "x"}}),
    )
    .await;
    let e = c.expect("error").await;
    assert_live_error(&e, "immutable_field_update", Some("evt_u2"));
    assert_eq!(e["error"]["param"], "session.instructions");
    c.send(json!({"type": "session.update", "session": {"delegation": {"type": "client"}}})).await;
    let e = c.expect("error").await;
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
        (Some("immutable_field_update"), Some("session.delegation.type"))
    );
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_start_holds_session_started_and_refuses_audio_meanwhile() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::SlowStart { delay: Duration::from_secs(3) }],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.send(phone_start()).await;
    c.send(json!({"type": "session.input_audio.append", "audio": "//8=", "event_id": "evt_a"})).await;
    assert_live_error(&c.next().await, "session_not_started", Some("evt_a"));
    c.expect("session.started").await;
    let rec = sim.session(0).unwrap();
    let started = rec.sent.iter().find(|e| e.kind == "session.started").unwrap();
    let start_received = rec.received.iter().find(|e| e.kind == "session.start").unwrap();
    assert_eq!(started.at - start_received.at, Duration::from_secs(3), "on the simulator's clock");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unsupported_client_events_get_an_error_not_silence() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "decision.create", "event_id": "evt_d"})).await;
    assert_live_error(&c.expect("error").await, "unsupported_by_simulator", Some("evt_d"));
    c.send(json!({"type": "decision.item.delete", "item_id": "item_1"})).await;
    assert_live_error(&c.expect("error").await, "unsupported_by_simulator", None);
    c.send(json!({"type": "session.output_audio.fixture.play", "audio": ""})).await;
    assert_live_error(&c.expect("error").await, "unsupported_by_simulator", None);
    sim.shutdown().await;
}

#[test]
fn vendored_live_schemas_are_the_shared_ones_with_15_client_and_28_server_types() {
    let shared = std::path::Path::new("/work/shared/schemas");
    if shared.is_dir() {
        for (name, vendored) in [
            ("openai-live-client-events.schema.json", LIVE_CLIENT_EVENTS_SCHEMA),
            ("openai-live-server-events.schema.json", LIVE_SERVER_EVENTS_SCHEMA),
        ] {
            let theirs = std::fs::read(shared.join(name)).unwrap();
            assert!(theirs == vendored.as_bytes(), "{name} differs from the shared copy: re-vendor it");
        }
    }
    let count = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["discriminator"]["mapping"].as_object().unwrap().len()
    };
    assert_eq!((count(LIVE_CLIENT_EVENTS_SCHEMA), count(LIVE_SERVER_EVENTS_SCHEMA)), (15, 28));
    // testing.md's checks.
    assert!(validate_live_client_event(&phone_start()).is_ok());
    let mut t = phone_start();
    t["session"]["temperature"] = json!(0.7);
    assert!(validate_live_client_event(&t).is_err());
    assert!(validate_live_client_event(&json!({"type": "input_audio_buffer.append", "audio": ""})).is_err());
    assert!(
        validate_live_server_event(
            &json!({"type": "session.output_audio.delta", "delta": "", "item_id": "i"})
        )
        .is_err()
    );
}
