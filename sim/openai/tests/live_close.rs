//! GPT-Live endings and usage: `session.close`, the session cap, a dropped or closed socket,
//! cumulative `session.usage.updated`, and the faults (drop, close, transient error). Paused
//! tokio clock: a minute of session takes no time.

mod common;
mod live_client;

use std::time::Duration;

use callway_sim_openai::audio::silence_ulaw;
use callway_sim_openai::{Fault, OpenAiSim, SessionEnd, SimConfig, StallMode};
use live_client::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn ended(sim: &callway_sim_openai::SimHandle) -> (SessionEnd, String, f64) {
    let rec = sim.session(0).unwrap();
    let live = rec.live.unwrap();
    (rec.ended.unwrap(), live.closed_reason.unwrap_or_default(), live.usage_seconds)
}

#[tokio::test(start_paused = true)]
async fn session_close_says_session_closed_with_usage_then_closes_1000() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    let started = c.start(phone_start()).await;
    c.append(&silence_ulaw(1500), 160).await;
    c.deltas(17).await;
    c.send(json!({"type": "session.close", "event_id": "evt_close"})).await;
    let (events, close) = c.until_close().await;
    assert_eq!(kinds(&events), ["session.closed"]);
    let closed = &events[0];
    assert_eq!(closed["reason"], "close_requested");
    assert_eq!(closed["session"]["id"], started["session"]["id"]);
    let seconds = closed["usage"]["seconds"].as_f64().unwrap();
    assert!((1.6..1.8).contains(&seconds), "the session's time so far: {seconds}");
    assert_eq!(close.unwrap().code, CloseCode::Normal);
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let (end, reason, usage) = ended(&sim);
    assert!(matches!(end, SessionEnd::ServerClosed { code: 1000, .. }), "{end:?}");
    assert_eq!((reason.as_str(), usage), ("close_requested", seconds));
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn usage_is_cumulative_every_minute_and_the_cap_closes_with_expired() {
    let sim = OpenAiSim::spawn(SimConfig { session_cap: Duration::from_secs(150), ..SimConfig::default() })
        .await
        .unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    let first = c.expect("session.usage.updated").await;
    let second = c.expect("session.usage.updated").await;
    assert_eq!(
        (first["usage"]["seconds"].as_f64(), second["usage"]["seconds"].as_f64()),
        (Some(60.0), Some(120.0))
    );
    let (events, close) = c.until_close().await;
    assert_eq!(kinds(&events), ["session.closed"]);
    assert_eq!(events[0]["reason"], "expired");
    assert_eq!(events[0]["usage"]["seconds"].as_f64(), Some(150.0), "silence and idle time are billed");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let rec = sim.session(0).unwrap();
    let at: Vec<Duration> =
        rec.sent.iter().filter(|e| e.kind != "session.output_audio.delta").map(|e| e.at).collect();
    assert_eq!(
        at[1..],
        [Duration::from_secs(60), Duration::from_secs(120), Duration::from_secs(150)],
        "{at:?}"
    );
    assert_eq!(ended(&sim).1, "expired");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_socket_closed_without_session_close_is_connection_lost() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.append(&silence_ulaw(500), 160).await;
    c.deltas(8).await;
    c.close_socket().await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let (end, reason, usage) = ended(&sim);
    assert_eq!(end, SessionEnd::ClientClosed(Some(1000)));
    assert_eq!(reason, "connection_lost");
    assert!(usage > 0.0);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_connection_lost() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::DropAfter { after: Duration::from_secs(2) }],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    loop {
        match c.next_frame().await {
            Next::Gone(_) => break,
            Next::Event(v) => assert_eq!(v["type"], "session.output_audio.delta", "{v}"),
            Next::Close(f) => panic!("a drop sends no close frame: {f:?}"),
        }
    }
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let (end, reason, usage) = ended(&sim);
    assert_eq!((end, reason.as_str()), (SessionEnd::Dropped, "connection_lost"));
    assert!((1.9..=2.0).contains(&usage), "billed until the drop: {usage}");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_error_is_reported_and_the_session_goes_on_and_close_after_closes() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![
            Fault::ErrorAfter { after: Duration::from_secs(1) },
            Fault::CloseAfter { after: Duration::from_secs(5), code: 1011 },
        ],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    let e = c.expect("error").await;
    assert_live_error(&e, "server_error", None);
    assert_eq!(e["error"]["type"], "server_error");
    c.send(json!({"type": "session.instructions.append", "content": "Continue.", "event_id": "evt_i",
        "delegation_id": null}))
        .await;
    assert_eq!(c.expect("session.instructions.appended").await["client_event_id"], "evt_i");
    let (events, close) = c.until_close().await;
    assert!(events.is_empty(), "no session.closed on an abrupt close: {events:?}");
    assert_eq!(close.unwrap().code, CloseCode::Error);
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert_eq!(ended(&sim).1, "connection_lost");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_stall_withholds_everything_session_closed_included() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::StallAfter { after: Duration::from_secs(1), mode: StallMode::Silent }],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.append(&silence_ulaw(3000), 160).await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.stalled)).await;
    c.send(json!({"type": "session.close"})).await;
    sim.wait_until(|s| {
        s.session(0)
            .is_some_and(|r| r.withheld > 0 && r.live.as_ref().is_some_and(|l| l.closed_reason.is_some()))
    })
    .await;
    let rec = c.record();
    assert!(rec.ended.is_none(), "no close frame from a stalled session");
    assert!(rec.sent_kinds().iter().all(|k| *k != "session.closed"));
    let sent_deltas = rec.audio_deltas_sent;
    assert!(sent_deltas <= 11, "nothing after the first second: {sent_deltas}");
    c.close_socket().await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert_eq!(sim.session(0).unwrap().ended, Some(SessionEnd::ClientClosed(Some(1000))));
    sim.shutdown().await;
}
