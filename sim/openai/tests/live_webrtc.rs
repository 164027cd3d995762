//! `POST /v1/live/sessions` with a WebRTC transport, against a real WebRTC client (str0m, as a
//! browser would be): the session created with the project key and started by the request,
//! `session.started` on the `oai-events` channel once it opens, the agent's voice (silence
//! included) on the Opus track and never as audio deltas, the transcripts on the channel,
//! the agent yielding when the caller's audio turns loud, Responses delegation (the function
//! call in the Responses stream, its output answered by the client), the page's data channel
//! narrowed by `session.client.data_channel` both ways, `session.close`, and the creation's
//! refusals in OpenAI's error shape. Every event received is checked against the Live server
//! schema.

mod common;
mod rtc_peer;

use std::time::Duration;

use callway_sim_openai::live::schema::validate_live_server_event;
use callway_sim_openai::{Auth, OpenAiSim, Reply, Script, SimConfig, SimHandle, ToolCall};
use common::*;
use rtc_peer::*;
use serde_json::{Value, json};

fn config() -> SimConfig {
    SimConfig {
        script: Script::replies([
            Reply::tone(440.0, 3000, "Bonjour, je suis Claire, de Callway."),
            Reply::tone(440.0, 600, "C'est noté."),
        ])
        .with_user_transcripts(["Je m'appelle Zoé."])
        .with_tool_call(ToolCall::new(1, "save_lead", r#"{"first_name":"Zoé"}"#)),
        ttfb: Duration::from_millis(50),
        ..SimConfig::default()
    }
}

/// A page's session: Responses delegation with one tool, the channel narrowed as Callway's
/// control plane narrows it.
fn page_session() -> Value {
    json!({
        "model": "gpt-live-1.1",
        "instructions": "Tu es Claire.",
        "audio": {"output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5-mini",
            "tools": [{"type": "function", "name": "save_lead", "parameters": {"type": "object"}}]}},
        "client": {"data_channel": {
            "allowed_client_events": ["session.commentary.append", "response.item.create", "response.create", "session.close"],
            "allowed_server_events": [{"type": "session.started"}, {"type": "session.closed"}, {"type": "error"},
                {"type": "session.input_transcript.delta"}, {"type": "session.output_transcript.delta"},
                {"type": "response.event", "response_event": "response.output_item.done"}]
        }}
    })
}

async fn create(sim: &SimHandle, key: &str, body: &Value) -> Reply201 {
    let bearer = format!("Bearer {key}");
    post(
        sim.addr(),
        "/v1/live/sessions",
        &[("authorization", &bearer), ("content-type", "application/json")],
        &body.to_string(),
    )
    .await
}

/// Creates a session for a new peer with `session` and waits for `session.started`.
async fn started_peer(sim: &SimHandle, session: Value) -> (Peer, Value) {
    let (mut peer, offer) = Peer::new(validate_live_server_event).await;
    let r =
        create(sim, "sk-test", &json!({"session": session, "transport": {"type": "webrtc", "sdp": offer}}))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let created = r.json();
    peer.accept(created["transport"]["sdp"].as_str().unwrap());
    peer.until(Duration::from_secs(10), "session.started", |p| p.count("session.started") == 1).await;
    (peer, created)
}

#[tokio::test]
async fn a_session_created_for_a_page_starts_on_the_channel_and_speaks_on_the_track() {
    let _w = Watchdog::new("live webrtc call", 60);
    let sim = OpenAiSim::spawn(config()).await.unwrap();
    let (mut peer, created) = started_peer(&sim, page_session()).await;

    // The creation answer: the session's id and the SDP answer (ICE-lite, loopback).
    let id = created["session"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["transport"]["type"], "webrtc");
    let answer = created["transport"]["sdp"].as_str().unwrap();
    assert!(answer.starts_with("v=0") && answer.contains("a=ice-lite") && answer.contains("127.0.0.1"));
    let started = &peer.events[0];
    assert_eq!(started["type"], "session.started", "the first event on the channel");
    assert_eq!(started["session"]["id"], id.as_str());
    assert_eq!(started["session"]["model"], "gpt-live-1.1");
    assert_eq!(started["session"]["audio"]["format"], Value::Null, "WebRTC negotiates the media format");
    assert_eq!(started["session"]["audio"]["output"]["voice"], "marin");

    // The greeting: the voice on the track, the words on the channel, never audio deltas.
    peer.send(
        json!({"type": "session.commentary.append", "content": "Salue le visiteur.", "delegation_id": null}),
    );
    peer.until(Duration::from_secs(10), "a second of the agent's voice", |p| {
        p.heard.iter().filter(|(_, l)| *l > LOUD).count() >= 50
    })
    .await;
    assert_eq!(peer.count("session.output_audio.delta"), 0, "audio travels on the track");
    let words: String = peer
        .events
        .iter()
        .filter(|e| e["type"] == "session.output_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(words.starts_with("Bonjour, "), "{words:?}");
    assert_eq!(peer.count("session.commentary.appended"), 0, "not among the page's server events");

    // Outside the page's client events: refused, not acted on.
    peer.send(json!({"type": "session.instructions.append", "event_id": "evt_policy", "content": "Parle anglais.", "delegation_id": null}));
    peer.until(Duration::from_secs(5), "the refusal", |p| p.count("error") == 1).await;
    let (_, e) = peer.first("error").unwrap();
    assert_eq!(e["error"]["code"], "client_event_not_allowed", "{e}");
    assert_eq!(e["client_event_id"], "evt_policy");

    // Goodbye: session.closed with the reason, the session over.
    peer.send(json!({"type": "session.close"}));
    peer.until(Duration::from_secs(5), "session.closed", |p| p.count("session.closed") == 1).await;
    let (_, closed) = peer.first("session.closed").unwrap();
    assert_eq!(closed["reason"], "close_requested");
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.call_id.as_deref(), Some(id.as_str()), "a WebRTC call");
    assert_eq!(rec.auth, Auth::ApiKey);
    assert_eq!(rec.model, "gpt-live-1.1");
    let live = rec.live.clone().unwrap();
    assert!(live.started);
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    assert!(rec.withheld >= 1, "the commentary's acknowledgement was held back");
    assert_eq!(rec.received_of("session.instructions.append").len(), 1, "recorded, refused");
    assert!(rec.media_frames_in > 30 && rec.media_frames_out > 50, "{rec:?}");
    assert!(sim.schema_violations().is_empty(), "{:?}", sim.schema_violations());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_agent_yields_to_the_caller_and_delegates_the_tool_to_the_page() {
    let _w = Watchdog::new("live webrtc barge-in and tool", 60);
    let sim = OpenAiSim::spawn(config()).await.unwrap();
    let (mut peer, _) = started_peer(&sim, page_session()).await;
    peer.send(
        json!({"type": "session.commentary.append", "content": "Salue le visiteur.", "delegation_id": null}),
    );
    peer.until(Duration::from_secs(10), "half a second of the agent's voice", |p| {
        p.heard.iter().filter(|(_, l)| *l > LOUD).count() >= 25
    })
    .await;

    // The caller speaks over the agent: her voice stops by itself (no event says so).
    peer.speak(300.0, 800, 0.4);
    let spoke_at = peer.heard.len();
    peer.until(Duration::from_secs(10), "the caller's turn to end", |p| {
        p.count("session.input_transcript.delta") > 0
    })
    .await;
    let after: Vec<f32> = peer.heard[spoke_at..].iter().map(|(_, l)| *l).collect();
    let first_quiet = after.iter().position(|l| *l < 0.01).expect("the agent went quiet");
    assert!(first_quiet < 25, "quiet {} frames after the caller spoke: {after:?}", first_quiet);
    assert!(after[first_quiet..].iter().all(|l| *l < LOUD), "the greeting did not resume: {after:?}");
    let said: String = peer
        .events
        .iter()
        .filter(|e| e["type"] == "session.input_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(said, "Je m'appelle Zoé.");

    // Turn 1 carries the tool call: it reaches the page as the one Responses event it may see.
    peer.until(Duration::from_secs(10), "the function call", |p| p.count("response.event") == 1).await;
    let (_, call) = peer.first("response.event").unwrap();
    let item = &call["event"]["item"];
    assert_eq!(
        (call["event"]["type"].as_str(), item["type"].as_str()),
        (Some("response.output_item.done"), Some("function_call"))
    );
    assert_eq!(item["name"], "save_lead");
    peer.send(json!({"type": "response.item.create", "item": {"type": "function_call_output",
        "call_id": item["call_id"], "output": "{\"lead_id\":\"l1\"}"}}));
    peer.send(json!({"type": "response.create"}));
    // The result is worded by Responses (held back from the page) and said by the agent.
    let heard = peer.heard.len();
    peer.until(Duration::from_secs(10), "the agent's answer", |p| {
        p.heard[heard..].iter().filter(|(_, l)| *l > LOUD).count() >= 20
    })
    .await;
    peer.until(Duration::from_secs(5), "its words", |p| {
        p.events.iter().any(|e| e["type"] == "session.output_transcript.delta" && e["delta"] == "noté.")
    })
    .await;
    // Of the Responses stream the page sees finished items only: the call, then the message.
    let items: Vec<(&str, &str)> = peer
        .events
        .iter()
        .filter(|e| e["type"] == "response.event")
        .map(|e| (e["event"]["type"].as_str().unwrap(), e["event"]["item"]["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        items,
        [("response.output_item.done", "function_call"), ("response.output_item.done", "message")]
    );
    assert_eq!(peer.count("error"), 0, "{:?}", peer.kinds());
    let rec = sim.session(0).unwrap();
    assert!(rec.withheld > 10, "the rest of the Responses stream was held back: {}", rec.withheld);
    assert!(sim.schema_violations().is_empty(), "{:?}", sim.schema_violations());
    sim.shutdown().await;
}

#[tokio::test]
async fn creations_are_refused_with_openai_error_bodies() {
    let _w = Watchdog::new("live webrtc refusals", 60);
    let sim = OpenAiSim::spawn(config()).await.unwrap();
    let (_, offer) = Peer::new(validate_live_server_event).await;
    let body =
        |session: Value, sdp: &str| json!({"session": session, "transport": {"type": "webrtc", "sdp": sdp}});
    let check = |r: &Reply201, status: u16, code: Option<&str>, param: Option<&str>| {
        assert_eq!(r.status, status, "{}", r.body);
        let e = &r.json()["error"];
        assert_eq!((e["code"].as_str(), e["param"].as_str()), (code, param), "{}", r.body);
        assert_eq!(e["type"], "invalid_request_error");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    };

    // The key: the project's only (GPT-Live has no ephemeral keys).
    let r = create(&sim, "sk-wrong-key-1234", &body(page_session(), &offer)).await;
    check(&r, 401, Some("invalid_api_key"), None);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("sk-**********1234"));
    let r = create(&sim, "ek_68af0123456789", &body(page_session(), &offer)).await;
    check(&r, 401, Some("invalid_api_key"), None);

    // The configuration, as session.start's.
    let mut s = page_session();
    s["temperature"] = json!(0.8);
    check(
        &create(&sim, "sk-test", &body(s, &offer)).await,
        400,
        Some("unknown_parameter"),
        Some("session.temperature"),
    );
    let mut s = page_session();
    s["audio"]["format"] = json!({"type": "audio/pcmu", "rate": 8000});
    check(
        &create(&sim, "sk-test", &body(s, &offer)).await,
        400,
        Some("invalid_value"),
        Some("session.audio.format"),
    );
    let mut s = page_session();
    s["model"] = json!("gpt-realtime-2.1");
    check(
        &create(&sim, "sk-test", &body(s, &offer)).await,
        400,
        Some("invalid_model"),
        Some("session.model"),
    );
    let r =
        create(&sim, "sk-test", &json!({"session": page_session(), "transport": {"type": "webrtc"}})).await;
    check(&r, 400, Some("missing_required_parameter"), Some("transport.sdp"));

    // The offer.
    check(&create(&sim, "sk-test", &body(page_session(), "hello")).await, 400, Some("invalid_offer"), None);
    let no_channel: String =
        offer.split_inclusive("\r\n").take_while(|l| !l.starts_with("m=application")).collect();
    check(
        &create(&sim, "sk-test", &body(page_session(), &no_channel)).await,
        400,
        Some("invalid_offer"),
        None,
    );
    assert!(sim.sessions().is_empty(), "no session for a refused creation");
    sim.shutdown().await;
}
