//! Echo mode for benchmarks and load tests: each append is answered at once by one
//! `response.output_audio.delta` carrying the same audio, in the GA wire layout.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use callway_sim_openai::{OpenAiSim, SimConfig};
use common::*;
use serde_json::json;

#[tokio::test]
async fn each_append_comes_back_as_one_delta_with_the_same_audio() {
    let sim = OpenAiSim::spawn(SimConfig { echo: true, ..SimConfig::default() }).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let chunks: Vec<Vec<u8>> =
        (0..200u32).map(|i| (0..160).map(|j| ((i * 7 + j) % 256) as u8).collect()).collect();
    let events: Vec<_> =
        chunks.iter().map(|c| json!({"type":"input_audio_buffer.append","audio":B64.encode(c)})).collect();
    c.send_all(&events).await;
    let mut item = None;
    for chunk in &chunks {
        let d = c.expect("response.output_audio.delta").await;
        assert_eq!(B64.decode(d["delta"].as_str().unwrap()).unwrap(), *chunk);
        let id = d["item_id"].as_str().unwrap().to_owned();
        assert_eq!(item.get_or_insert(id.clone()), &id, "one stream");
    }
    // Other events still behave (no VAD, no automatic response in echo mode).
    c.send(json!({"type":"input_audio_buffer.append","audio":"not base64!"})).await;
    assert_error_event(&c.expect("error").await, "invalid_value", None);

    let rec = sim.session(0).unwrap();
    assert_eq!((rec.appends, rec.appended_bytes, rec.audio_deltas_sent), (200, 32_000, 200));
    let wire = &rec.sent[1].text;
    assert!(wire.starts_with(r#"{"type":"response.output_audio.delta","event_id":"event_"#), "{wire}");
    assert!(wire.contains(r#","output_index":0,"content_index":0,"delta":""#), "{wire}");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_load_configuration_keeps_counters_not_text() {
    let sim = OpenAiSim::spawn(SimConfig::echo_for_load()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.append_ulaw(&[0xffu8; 1600], 160).await;
    for _ in 0..10 {
        c.expect("response.output_audio.delta").await;
    }
    let rec = sim.session(0).unwrap();
    assert!(rec.received.is_empty() && rec.sent.is_empty());
    assert_eq!((rec.appends, rec.audio_deltas_sent), (10, 10));
    sim.shutdown().await;
}
