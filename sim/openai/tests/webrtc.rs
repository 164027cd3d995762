//! `POST /v1/realtime/calls` against a real WebRTC client (str0m, as a browser would be):
//! offer/answer, ICE, DTLS-SRTP, the `oai-events` data channel carrying the GA events, Opus
//! audio both ways, turn detection on the caller's decoded audio, barge-in that clears the
//! output audio buffer, and the refusals (keys, bodies, offers) in OpenAI's error shape.

mod common;
mod rtc_peer;

use std::time::Duration;

use callway_sim_openai::schema::validate_server_event;
use callway_sim_openai::{Auth, OpenAiSim, Reply, Script, SimConfig, SimHandle};
use common::*;
use rtc_peer::*;
use serde_json::json;

async fn ephemeral_key(sim: &SimHandle, seconds: u64) -> String {
    let body = json!({"expires_after": {"anchor": "created_at", "seconds": seconds},
        "session": {"type": "realtime", "model": "gpt-realtime-2.1", "instructions": "Tu es Claire."}});
    let r = post(
        sim.addr(),
        "/v1/realtime/client_secrets",
        &[("authorization", "Bearer sk-test"), ("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["value"].as_str().unwrap().to_owned()
}

async fn post_offer(sim: &SimHandle, key: &str, sdp: &str) -> Reply201 {
    let bearer = format!("Bearer {key}");
    post(
        sim.addr(),
        "/v1/realtime/calls",
        &[("authorization", &bearer), ("content-type", "application/sdp")],
        sdp,
    )
    .await
}

fn config(reply_ms: u32) -> SimConfig {
    SimConfig {
        script: Script::replies([Reply::tone(440.0, reply_ms, "Bonjour, ici Claire.")])
            .with_user_transcripts(["Je m'appelle Zoé."]),
        ttfb: Duration::from_millis(50),
        ..SimConfig::default()
    }
}

/// Connects a peer with a fresh ephemeral key and waits for `session.created`.
async fn connected_peer(sim: &SimHandle) -> (Peer, Reply201) {
    let key = ephemeral_key(sim, 600).await;
    let (mut peer, offer) = Peer::new(validate_server_event).await;
    let r = post_offer(sim, &key, &offer).await;
    assert_eq!(r.status, 201, "{}", r.body);
    peer.accept(&r.body);
    peer.until(Duration::from_secs(10), "session.created", |p| p.open && p.count("session.created") == 1)
        .await;
    (peer, r)
}

#[tokio::test]
async fn a_call_gets_an_sdp_answer_events_on_the_channel_and_audio_both_ways() {
    let _w = Watchdog::new("webrtc call", 60);
    let sim = OpenAiSim::spawn(config(1000)).await.unwrap();
    let (mut peer, r) = connected_peer(&sim).await;

    assert_eq!(r.header("content-type"), Some("application/sdp"));
    // Readable from a page on another origin (the control plane's), Location included.
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-expose-headers"), Some("Location"));
    assert!(r.body.starts_with("v=0"), "{}", r.body);
    assert!(r.body.contains("a=ice-lite"), "ICE-lite answer: {}", r.body);
    assert!(r.body.contains("127.0.0.1"), "loopback host candidate: {}", r.body);
    let location = r.header("location").unwrap().to_owned();
    let call_id = location.strip_prefix("/v1/realtime/calls/").unwrap();
    assert!(call_id.starts_with("rtc_"), "{location}");
    let created = &peer.events[0];
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["model"], "gpt-realtime-2.1", "the key's session");
    assert_eq!(created["session"]["instructions"], "Tu es Claire.");

    // The agent speaks: events on the channel, its audio on the track, never as deltas.
    peer.send(json!({"type": "response.create", "event_id": "evt_go"}));
    peer.until(Duration::from_secs(10), "the reply to play out", |p| {
        p.count("output_audio_buffer.stopped") == 1
    })
    .await;
    assert_eq!(peer.count("response.output_audio.delta"), 0, "audio travels on the track");
    let (started_at, started) = peer.first("output_audio_buffer.started").unwrap();
    let (done_at, done) = peer.first("response.done").unwrap();
    let (stopped_at, stopped) = peer.first("output_audio_buffer.stopped").unwrap();
    let rid = done["response"]["id"].as_str().unwrap();
    assert_eq!((started["response_id"].as_str(), stopped["response_id"].as_str()), (Some(rid), Some(rid)));
    assert!(done_at < stopped_at, "stopped comes once the buffer drained: {:?}", peer.kinds());
    assert!(peer.first("response.output_audio_transcript.done").is_some());
    let loud: Vec<usize> = peer.heard.iter().filter(|(_, level)| *level > LOUD).map(|(at, _)| *at).collect();
    // 1000 ms of tone = 50 frames; allow for the codec's ramp at both ends.
    assert!((45..=55).contains(&loud.len()), "{} loud frames", loud.len());
    assert!(loud.iter().all(|&at| at >= started_at), "nothing loud before output_audio_buffer.started");

    // Silence is sent while the agent is quiet.
    let heard = peer.heard.len();
    peer.until(Duration::from_secs(5), "half a second of silence", |p| p.heard.len() >= heard + 25).await;
    // (`stopped` goes out with the last frame, so that frame and the codec's tail come after it.)
    assert!(peer.heard[heard + 2..].iter().all(|(_, l)| *l < 0.01), "{:?}", &peer.heard[heard..]);

    // The caller speaks: turn detection on the decoded Opus, then a reply of its own.
    peer.speak(300.0, 600, 0.4);
    peer.until(Duration::from_secs(10), "the caller's turn and a reply", |p| {
        p.count("output_audio_buffer.stopped") == 2
    })
    .await;
    assert_eq!(peer.count("input_audio_buffer.speech_started"), 1, "{:?}", peer.kinds());
    assert_eq!(peer.count("input_audio_buffer.speech_stopped"), 1);
    assert_eq!(peer.count("input_audio_buffer.committed"), 1);
    assert_eq!(peer.count("response.done"), 2);

    let rec = sim.session(0).unwrap();
    assert_eq!(rec.call_id.as_deref(), Some(call_id));
    assert!(matches!(rec.auth, Auth::Ephemeral(_)));
    assert!(rec.media_frames_in > 30, "{} frames in", rec.media_frames_in);
    assert!(rec.media_frames_out > 100, "{} frames out", rec.media_frames_out);
    assert_eq!(rec.received_of("response.create").len(), 1);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn speaking_over_the_agent_clears_its_audio_and_truncates_at_what_was_heard() {
    let _w = Watchdog::new("webrtc barge-in", 60);
    let sim = OpenAiSim::spawn(config(4000)).await.unwrap();
    let (mut peer, _) = connected_peer(&sim).await;
    peer.send(json!({"type": "response.create"}));
    peer.until(Duration::from_secs(10), "a second of the agent's voice", |p| {
        p.heard.iter().filter(|(_, l)| *l > LOUD).count() >= 50
    })
    .await;
    peer.speak(300.0, 600, 0.4);
    peer.until(Duration::from_secs(10), "the buffer to be cleared", |p| {
        p.count("output_audio_buffer.cleared") == 1
    })
    .await;
    let (speech_at, _) = peer.first("input_audio_buffer.speech_started").unwrap();
    let (cleared_at, cleared) = peer.first("output_audio_buffer.cleared").unwrap();
    assert!(speech_at < cleared_at);
    let (_, truncated) = peer.first("conversation.item.truncated").expect("the server truncates on WebRTC");
    let played = truncated["audio_end_ms"].as_u64().unwrap();
    assert!((1000..4000).contains(&played), "truncated at {played} ms");
    assert_eq!(peer.count("output_audio_buffer.stopped"), 0, "cleared, not drained");
    let rid = peer.first("response.created").unwrap().1["response"]["id"].as_str().unwrap().to_owned();
    assert_eq!(cleared["response_id"], rid.as_str());

    // Playback stops at once: a frame or two of codec tail after the clear, then silence
    // until the reply to the caller's turn starts.
    peer.until(Duration::from_secs(10), "the reply to the caller", |p| {
        p.count("output_audio_buffer.started") == 2
    })
    .await;
    let next_started = peer.events.iter().rposition(|e| e["type"] == "output_audio_buffer.started").unwrap();
    let between: Vec<f32> = peer
        .heard
        .iter()
        .filter(|(at, _)| (cleared_at + 1..next_started).contains(at))
        .map(|(_, l)| *l)
        .collect();
    assert!(between.len() > 10, "{} frames between the clear and the next reply", between.len());
    let loud_after = between.iter().filter(|l| **l > LOUD).count();
    assert!(loud_after <= 2, "{loud_after} loud frames after output_audio_buffer.cleared: {between:?}");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn output_audio_buffer_clear_from_the_client_stops_playback() {
    let _w = Watchdog::new("webrtc client clear", 60);
    let sim = OpenAiSim::spawn(config(3000)).await.unwrap();
    let (mut peer, _) = connected_peer(&sim).await;
    peer.send(json!({"type": "response.create"}));
    peer.until(Duration::from_secs(10), "the agent's voice", |p| p.count("output_audio_buffer.started") == 1)
        .await;
    peer.send(json!({"type": "output_audio_buffer.clear", "event_id": "evt_clear"}));
    peer.until(Duration::from_secs(10), "cleared", |p| p.count("output_audio_buffer.cleared") == 1).await;
    assert_eq!(peer.count("error"), 0, "{:?}", peer.kinds());
    assert_eq!(sim.session(0).unwrap().received_of("output_audio_buffer.clear").len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn calls_are_refused_with_openai_error_bodies() {
    let _w = Watchdog::new("webrtc refusals", 60);
    let sim = OpenAiSim::spawn(config(500)).await.unwrap();
    let (_, offer) = Peer::new(validate_server_event).await;

    // The browser's CORS preflight.
    let r = request(
        sim.addr(),
        "OPTIONS",
        "/v1/realtime/calls",
        &[
            ("origin", "http://127.0.0.1:8080"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-headers").unwrap().contains("authorization"));

    // No key, a wrong key.
    let r = post(sim.addr(), "/v1/realtime/calls", &[("content-type", "application/sdp")], &offer).await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json(), "invalid_request_error", None);
    let r = post_offer(&sim, "ek_0123456789abcdef0123456789abcdef", &offer).await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json(), "invalid_request_error", Some("invalid_api_key"));

    // Bad offers and bodies do not use the key up.
    let key = ephemeral_key(&sim, 600).await;
    let r = post_offer(&sim, &key, "hello").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_rest_error(&r.json(), "invalid_request_error", Some("invalid_offer"));
    let audio_only: String = offer.split("m=application").next().unwrap().to_owned();
    let r = post_offer(&sim, &key, &audio_only).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("data channel"), "{}", r.body);
    let bearer = format!("Bearer {key}");
    let r = post(
        sim.addr(),
        "/v1/realtime/calls",
        &[("authorization", &bearer), ("content-type", "application/json")],
        &json!({"sdp": offer}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_rest_error(&r.json(), "invalid_request_error", Some("unsupported_content_type"));

    // The key starts one call, not two.
    let r = post_offer(&sim, &key, &offer).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (_, offer2) = Peer::new(validate_server_event).await;
    let r = post_offer(&sim, &key, &offer2).await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json(), "invalid_request_error", Some("invalid_api_key"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("already been used"));
    assert_eq!(sim.sessions().len(), 1, "refused calls start no session");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_ephemeral_key_cannot_start_a_call() {
    let _w = Watchdog::new("webrtc expired key", 60);
    let sim = OpenAiSim::spawn(config(500)).await.unwrap();
    let key = ephemeral_key(&sim, 10).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    let (_, offer) = Peer::new(validate_server_event).await;
    let r = post_offer(&sim, &key, &offer).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_rest_error(&r.json(), "invalid_request_error", Some("invalid_api_key"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("expired"));
    assert!(sim.sessions().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_multipart_form_sets_the_session_server_side() {
    let _w = Watchdog::new("webrtc multipart", 60);
    let sim = OpenAiSim::spawn(config(500)).await.unwrap();
    let (mut peer, offer) = Peer::new(validate_server_event).await;
    let session = json!({"type": "realtime", "model": "gpt-realtime-2.1-mini", "instructions": "Sois brève.",
        "audio": {"output": {"voice": "cedar"}}});
    let body = format!(
        "--B0und\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n{offer}\r\n--B0und\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{session}\r\n--B0und--\r\n"
    );
    let r = post(
        sim.addr(),
        "/v1/realtime/calls",
        &[("authorization", "Bearer sk-test"), ("content-type", "multipart/form-data; boundary=B0und")],
        &body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    peer.accept(&r.body);
    peer.until(Duration::from_secs(10), "session.created", |p| p.count("session.created") == 1).await;
    let s = &peer.events[0]["session"];
    assert_eq!(
        (s["model"].as_str(), s["instructions"].as_str()),
        (Some("gpt-realtime-2.1-mini"), Some("Sois brève."))
    );
    assert_eq!(s["audio"]["output"]["voice"], "cedar");
    assert_eq!(sim.session(0).unwrap().auth, Auth::ApiKey);

    // A session the schema refuses is refused before any call starts.
    let (_, offer) = Peer::new(validate_server_event).await;
    let bad = json!({"type": "realtime", "temperature": 0.8});
    let body = format!(
        "--B\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n{offer}\r\n--B\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{bad}\r\n--B--\r\n"
    );
    let r = post(
        sim.addr(),
        "/v1/realtime/calls",
        &[("authorization", "Bearer sk-test"), ("content-type", "multipart/form-data; boundary=B")],
        &body,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_rest_error(&r.json(), "invalid_request_error", Some("unknown_parameter"));
    assert_eq!(sim.sessions().len(), 1);
    sim.shutdown().await;
}
