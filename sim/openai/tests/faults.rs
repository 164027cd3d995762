//! Faults on demand and the session cap, on a paused tokio clock: a 60-minute cap or a
//! 5-second close takes no real time, and nothing is waited for but events.

mod common;

use std::time::Duration;

use callway_sim_openai::{Fault, OpenAiSim, SessionEnd, SimConfig, StallMode};
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(start_paused = true)]
async fn the_default_60_minute_cap_expires_with_session_expired_then_1001() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let (events, close) = c.until_close().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_error_event(&events[0], "session_expired", None);
    assert_eq!(events[0]["error"]["message"], "Your session hit the maximum duration of 60 minutes.");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.sent.last().unwrap().at, Duration::from_secs(3600), "on the simulator's clock");
    assert!(matches!(rec.ended, Some(SessionEnd::ServerClosed { code: 1001, .. })));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_cap_is_configurable() {
    let sim =
        OpenAiSim::spawn(SimConfig { session_cap: Duration::from_secs(90), ..fast_config() }).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    // The session works until then.
    c.send(json!({"type":"response.create"})).await;
    c.response_done().await;
    let (events, close) = c.until_close().await;
    assert_eq!(events[0]["error"]["message"], "Your session hit the maximum duration of 90 seconds.");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn close_after_sends_a_close_frame_with_the_chosen_code() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::CloseAfter { after: Duration::from_secs(5), code: 1011 }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let (events, close) = c.until_close().await;
    assert!(events.is_empty());
    assert_eq!(close.unwrap().code, CloseCode::Error);
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert!(matches!(sim.session(0).unwrap().ended, Some(SessionEnd::ServerClosed { code: 1011, .. })));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn drop_after_ends_the_connection_without_a_close_frame() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::DropAfter { after: Duration::from_secs(2) }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    match c.next_frame().await {
        Next::Gone(_) => {}
        other => panic!("expected the connection to drop, got {other:?}"),
    }
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert_eq!(sim.session(0).unwrap().ended, Some(SessionEnd::Dropped));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn drop_mid_message_leaves_a_message_unfinished_then_ends_the_connection() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::DropMidMessage { after: Duration::from_secs(2) }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let rest = c.raw_rest().await;
    // A text frame announcing 200 bytes (16-bit length), then fewer than that, then the end.
    assert_eq!(rest[..4], [0x81, 0x7e, 0x00, 200], "{rest:?}");
    assert!(rest.len() - 4 < 200, "the message is unfinished: {} payload bytes", rest.len() - 4);
    assert!(rest[4..].starts_with(b"{\"type\":"), "{rest:?}");
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert_eq!(sim.session(0).unwrap().ended, Some(SessionEnd::Dropped));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_stall_reads_and_records_but_sends_nothing() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::StallAfter { after: Duration::from_secs(1), mode: StallMode::Silent }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.stalled)).await;
    c.send(json!({"type":"response.create","event_id":"evt_s"})).await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.withheld > 0)).await;
    let rec = sim.session(0).unwrap();
    assert_eq!(rec.received.last().unwrap().kind, "response.create", "still reading");
    // Nothing was sent: after the client's close, the next frame is the close reply.
    let events = c.close().await;
    assert!(events.is_empty(), "{events:?}");
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.ended.is_some())).await;
    assert_eq!(sim.session(0).unwrap().ended, Some(SessionEnd::ClientClosed(Some(1000))));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_stall_still_answers_pings() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::StallAfter { after: Duration::from_secs(1), mode: StallMode::Silent }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.stalled)).await;
    c.send(json!({"type":"response.create"})).await;
    c.send_raw(Message::Ping(b"alive?".to_vec().into())).await;
    match c.next_message().await {
        Some(Ok(Message::Pong(p))) => assert_eq!(&p[..], b"alive?"),
        other => panic!("expected a pong, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_frozen_stall_neither_reads_nor_answers_pings() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![Fault::StallAfter { after: Duration::from_secs(1), mode: StallMode::Frozen }],
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    sim.wait_until(|s| s.session(0).is_some_and(|r| r.stalled)).await;
    c.send(json!({"type":"response.create"})).await;
    c.send_raw(Message::Ping(b"alive?".to_vec().into())).await;
    let reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(Ok(m)) = c.next_message().await {
            frames.push(m);
        }
        frames
    });
    sim.shutdown().await;
    // No pong, no event, not even a close frame: the connection just goes.
    let frames = reader.await.unwrap();
    assert!(frames.is_empty(), "{frames:?}");
    let rec = sim.session(0).unwrap();
    assert!(rec.received.is_empty(), "nothing was read: {:?}", rec.received);
    assert_eq!(rec.ended, Some(SessionEnd::Shutdown));
    // The port is closed after shutdown.
    assert!(tokio::net::TcpStream::connect(sim.addr()).await.is_err());
}
