//! Responses: the scripted reply streamed with the full GA event sequence after the
//! time-to-first-byte and faster than real time, one active response at a time, cancel by
//! the client or by speech (`interrupt_response`), truncation checked against the audio
//! produced, text-only and out-of-band responses.
//!
//! Tests that involve delays run on a paused tokio clock: the simulator's timers are virtual,
//! the test takes no real time, and the recorded timestamps are exact.

mod common;

use std::time::Duration;

use callway_sim_openai::audio::tone_ulaw;
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig};
use common::*;
use serde_json::{Value, json};

/// A long reply, so that a response is surely still streaming when the client acts.
fn long_reply_config() -> SimConfig {
    SimConfig {
        script: Script::replies([Reply::tone(
            300.0,
            30_000,
            "Une très longue réponse qui dure trente secondes.",
        )]),
        ttfb: Duration::from_millis(200),
        speed: Some(1.0),
        ..SimConfig::default()
    }
}

async fn pcmu_session(sim: &callway_sim_openai::SimHandle, turn_detection: Value) -> Client {
    let mut c = connect(sim).await;
    c.expect("session.created").await;
    c.send(session_update(turn_detection, false)).await;
    c.expect("session.updated").await;
    c
}

#[tokio::test(start_paused = true)]
async fn a_scripted_reply_streams_the_full_ga_sequence_after_ttfb_faster_than_real_time() {
    let voice = tone_ulaw(523.0, 1_000, 0.3);
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::mulaw(voice.clone(), "Bonjour, je suis Claire de Callway.")]),
        ttfb: Duration::from_millis(700),
        speed: Some(4.0),
        chunk_ms: 100,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = pcmu_session(&sim, Value::Null).await;
    c.send(json!({"type":"response.create","response":{"instructions":"Présente-toi."}})).await;
    let ev = c.response_done().await;
    let k = kinds(&ev);
    let n = k.len();
    assert_eq!(
        k[..4],
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added"
        ]
    );
    assert!(
        k[4..n - 6]
            .iter()
            .all(|t| t == "response.output_audio.delta" || t == "response.output_audio_transcript.delta"),
        "{k:?}"
    );
    assert_eq!(
        k[n - 6..],
        [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done"
        ]
    );
    // The audio is the script's, byte for byte, in 100 ms deltas.
    assert_eq!(audio_of(&ev), voice);
    assert_eq!(k.iter().filter(|t| *t == "response.output_audio.delta").count(), 10);
    assert_eq!(
        deltas_of(&ev, "response.output_audio_transcript.delta"),
        "Bonjour, je suis Claire de Callway."
    );
    // Ids tie together.
    let resp_id = ev[0]["response"]["id"].as_str().unwrap();
    let item_id = ev[1]["item"]["id"].as_str().unwrap();
    for e in &ev[1..n - 1] {
        if let Some(r) = e.get("response_id") {
            assert_eq!(r, resp_id);
        }
        if let Some(i) = e.get("item_id") {
            assert_eq!(i, item_id);
        }
    }
    let done = &ev[n - 1]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["transcript"], "Bonjour, je suis Claire de Callway.");
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(done["audio"]["output"]["format"], json!({"type": "audio/pcmu"}));

    // Timing on the simulator's (virtual) clock: first audio after the TTFB, 1 s of audio
    // streamed in 225 ms (4× real time).
    let rec = sim.session(0).unwrap();
    let at = |kind: &str| rec.sent.iter().find(|e| e.kind == kind).unwrap().at;
    let last_delta = rec.sent.iter().rev().find(|e| e.kind == "response.output_audio.delta").unwrap().at;
    assert_eq!(at("response.output_item.added") - at("response.created"), Duration::from_millis(700));
    assert_eq!(last_delta - at("response.output_audio.delta"), Duration::from_millis(225));
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn deltas_have_the_exact_ga_wire_layout() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = pcmu_session(&sim, Value::Null).await;
    c.send(json!({"type":"response.create"})).await;
    c.response_done().await;
    let rec = sim.session(0).unwrap();
    let delta = rec.sent.iter().find(|e| e.kind == "response.output_audio.delta").unwrap();
    let v = delta.json();
    let expected = format!(
        r#"{{"type":"response.output_audio.delta","event_id":"{}","response_id":"{}","item_id":"{}","output_index":0,"content_index":0,"delta":"{}"}}"#,
        v["event_id"].as_str().unwrap(),
        v["response_id"].as_str().unwrap(),
        v["item_id"].as_str().unwrap(),
        v["delta"].as_str().unwrap()
    );
    assert_eq!(&*delta.text, expected);
    assert!(
        rec.sent.iter().all(|e| e.text.starts_with(&format!(r#"{{"type":"{}","event_id":"event_"#, e.kind)))
    );
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn only_one_active_response_and_cancel_rules() {
    let sim = OpenAiSim::spawn(long_reply_config()).await.unwrap();
    let mut c = pcmu_session(&sim, Value::Null).await;
    // Both in one write: the second is read while the first is surely active.
    c.send_all(&[json!({"type":"response.create"}), json!({"type":"response.create","event_id":"evt_2"})])
        .await;
    let created = c.expect("response.created").await;
    let resp_id = created["response"]["id"].as_str().unwrap().to_owned();
    let err = c.expect("error").await;
    assert_error_event(&err, "conversation_already_has_active_response", Some("evt_2"));
    assert_eq!(
        err["error"]["message"],
        format!(
            "Conversation already has an active response in progress: {resp_id}. Wait until the response is finished before creating a new one."
        )
    );
    c.until("response.output_audio.delta").await;
    c.send(json!({"type":"response.cancel","response_id":"resp_other","event_id":"evt_x"})).await;
    assert_error_event(&c.until("error").await.pop().unwrap(), "response_cancel_not_active", Some("evt_x"));
    c.send(json!({"type":"response.cancel"})).await;
    let ev = c.response_done().await;
    let done = &ev.last().unwrap()["response"];
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["status_details"]["reason"], "client_cancelled");
    assert_eq!(done["output"][0]["status"], "incomplete");
    assert!(
        ev.iter().any(|e| e["type"] == "response.output_item.done" && e["item"]["status"] == "incomplete")
    );
    let heard = done["output"][0]["content"][0]["transcript"].as_str().unwrap();
    assert!(heard.len() < "Une très longue réponse qui dure trente secondes.".len(), "partial: {heard}");

    c.send(json!({"type":"response.cancel","event_id":"evt_idle"})).await;
    let e = c.expect("error").await;
    assert_error_event(&e, "response_cancel_not_active", Some("evt_idle"));
    assert_eq!(e["error"]["message"], "Cancellation failed: no active response found");
    // The session goes on: a new response may start.
    c.send(json!({"type":"response.create"})).await;
    c.expect("response.created").await;
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn speech_cancels_the_response_when_interrupt_response_is_on() {
    let sim = OpenAiSim::spawn(long_reply_config()).await.unwrap();
    let mut c = pcmu_session(&sim, server_vad(500, false, true)).await;
    c.send(json!({"type":"response.create"})).await;
    c.until("response.output_audio.delta").await;
    c.append_ulaw(&tone_ulaw(250.0, 100, 0.4), 160).await;
    c.until("input_audio_buffer.speech_started").await;
    let after = c.response_done().await;
    assert!(
        !after.iter().any(|e| e["type"] == "response.output_audio.delta"),
        "no audio after speech started: {:?}",
        kinds(&after)
    );
    let done = &after.last().unwrap()["response"];
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["status_details"]["reason"], "turn_detected");
    let item_id = done["output"][0]["id"].as_str().unwrap().to_owned();

    // The gateway then truncates to what was played; the audio produced bounds it.
    let produced_ms = audio_of(&c.log).len() as u64 / 8;
    assert!(produced_ms >= 100, "at least the first 100 ms chunk went out");
    c.send(json!({"type":"conversation.item.truncate","item_id":item_id,"content_index":0,"audio_end_ms":produced_ms + 20}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(
        e["error"]["message"],
        format!("Audio content of {produced_ms}ms is already shorter than {}ms", produced_ms + 20)
    );
    c.send(
        json!({"type":"conversation.item.truncate","item_id":item_id,"content_index":0,"audio_end_ms":60}),
    )
    .await;
    let t = c.expect("conversation.item.truncated").await;
    assert_eq!((t["item_id"].as_str(), t["audio_end_ms"].as_u64()), (Some(&*item_id), Some(60)));
    // Truncated to 60 ms: 100 ms is now beyond the audio.
    c.send(
        json!({"type":"conversation.item.truncate","item_id":item_id,"content_index":0,"audio_end_ms":100}),
    )
    .await;
    c.expect("error").await;
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn speech_does_not_cancel_when_interrupt_response_is_off() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(300.0, 2_000, "Deux secondes.")]),
        ..long_reply_config()
    })
    .await
    .unwrap();
    let mut c = pcmu_session(&sim, server_vad(500, false, false)).await;
    c.send(json!({"type":"response.create"})).await;
    c.until("response.output_audio.delta").await;
    c.append_ulaw(&tone_ulaw(250.0, 100, 0.4), 160).await;
    c.until("input_audio_buffer.speech_started").await;
    let after = c.response_done().await;
    assert!(after.iter().any(|e| e["type"] == "response.output_audio.delta"));
    assert_eq!(after.last().unwrap()["response"]["status"], "completed");
    assert_eq!(audio_of(&c.log).len(), 16_000, "all 2 s of audio");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn truncate_is_checked() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(300.0, 1_000, "Une seconde.")]),
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = pcmu_session(&sim, Value::Null).await;
    c.append_ulaw(&tone_ulaw(250.0, 200, 0.4), 160).await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    let user_item = c.expect("input_audio_buffer.committed").await["item_id"].as_str().unwrap().to_owned();
    c.send(json!({"type":"response.create"})).await;
    let ev = c.response_done().await;
    let item = ev.last().unwrap()["response"]["output"][0]["id"].as_str().unwrap().to_owned();
    let truncate = |id: &str, idx: i64, ms: i64| json!({"type":"conversation.item.truncate","item_id":id,"content_index":idx,"audio_end_ms":ms,"event_id":"evt_t"});

    c.send(truncate(&item, 0, 1_200)).await;
    let e = c.expect("error").await;
    assert_error_event(&e, "invalid_value", Some("evt_t"));
    assert_eq!(e["error"]["message"], "Audio content of 1000ms is already shorter than 1200ms");
    c.send(truncate(&user_item, 0, 10)).await;
    let e = c.expect("error").await;
    assert_error_event(&e, "unsupported_content_type", Some("evt_t"));
    assert_eq!(e["error"]["message"], "Only model output audio messages can be truncated");
    c.send(truncate("item_nope", 0, 10)).await;
    assert_eq!(c.expect("error").await["error"]["param"], "item_id");
    c.send(truncate(&item, 1, 10)).await;
    assert_eq!(c.expect("error").await["error"]["param"], "content_index");
    c.send(truncate(&item, 0, 1_000)).await;
    assert_eq!(c.expect("conversation.item.truncated").await["audio_end_ms"], 1_000);
    c.send(json!({"type":"conversation.item.retrieve","item_id":item})).await;
    let got = c.expect("conversation.item.retrieved").await;
    assert_eq!(got["item"]["content"][0]["transcript"], Value::Null, "truncation drops the transcript");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn text_only_and_out_of_band_responses() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(300.0, 500, "Votre rendez-vous est confirmé pour demain.")]),
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = pcmu_session(&sim, Value::Null).await;
    c.send(json!({"type":"response.create","response":{"output_modalities":["text"]}})).await;
    let ev = c.response_done().await;
    assert!(!ev.iter().any(|e| e["type"] == "response.output_audio.delta"));
    assert_eq!(deltas_of(&ev, "response.output_text.delta"), "Votre rendez-vous est confirmé pour demain.");
    let done = &ev.last().unwrap()["response"];
    assert_eq!(done["output_modalities"], json!(["text"]));
    assert_eq!(done["output"][0]["content"][0]["type"], "output_text");

    c.send(
        json!({"type":"response.create","response":{"conversation":"none","metadata":{"purpose":"summary"}}}),
    )
    .await;
    let ev = c.response_done().await;
    assert!(!ev.iter().any(|e| e["type"].as_str().unwrap().starts_with("conversation.")), "{:?}", kinds(&ev));
    let done = &ev.last().unwrap()["response"];
    assert_eq!(done["metadata"], json!({"purpose": "summary"}));
    assert_eq!(done["conversation_id"], Value::Null);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn configuration_changes_apply_to_sessions_accepted_afterwards() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(300.0, 100, "Avant.")]),
        ..fast_config()
    })
    .await
    .unwrap();
    let mut first = pcmu_session(&sim, Value::Null).await;
    sim.configure(|c| c.script = Script::replies([Reply::tone(300.0, 100, "Après.")]));
    let mut second = pcmu_session(&sim, Value::Null).await;
    for (c, said) in [(&mut first, "Avant."), (&mut second, "Après.")] {
        c.send(json!({"type":"response.create"})).await;
        let ev = c.response_done().await;
        assert_eq!(deltas_of(&ev, "response.output_audio_transcript.delta"), said);
    }
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn usage_counts_the_callers_audio_and_what_an_earlier_response_already_read_as_cached() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(440.0, 200, "Bonjour."), Reply::tone(440.0, 200, "Oui.")]),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut c = pcmu_session(&sim, server_vad(500, true, true)).await;
    // The caller speaks three seconds, then is silent: server VAD commits and answers.
    c.append_ulaw(&tone_ulaw(300.0, 3_000, 0.3), 160).await;
    c.append_ulaw(&vec![0xFF; 8 * 800], 160).await;
    let first = c.response_done().await.last().unwrap()["response"]["usage"].clone();
    // One more second, another answer.
    c.append_ulaw(&tone_ulaw(300.0, 1_000, 0.3), 160).await;
    c.append_ulaw(&vec![0xFF; 8 * 800], 160).await;
    let next = c.response_done().await.last().unwrap()["response"]["usage"].clone();

    let d = &first["input_token_details"];
    let audio = d["audio_tokens"].as_u64().unwrap();
    assert!((30..=40).contains(&audio), "ten tokens per second of the caller's audio: {first}");
    assert_eq!(d["cached_tokens"], 0, "nothing read before: {first}");
    let sum = |u: &Value| {
        let d = &u["input_token_details"];
        d["text_tokens"].as_u64().unwrap() + d["audio_tokens"].as_u64().unwrap()
    };
    assert_eq!(first["input_tokens"].as_u64(), Some(sum(&first)));
    let d = &next["input_token_details"];
    assert!(d["audio_tokens"].as_u64().unwrap() >= audio + 10, "{next}");
    let cached = &d["cached_tokens_details"];
    assert_eq!(cached["audio_tokens"].as_u64(), Some(audio), "the first response's audio is cached: {next}");
    assert!(cached["text_tokens"].as_u64().unwrap() > 0, "{next}");
    assert_eq!(
        d["cached_tokens"].as_u64(),
        Some(cached["audio_tokens"].as_u64().unwrap() + cached["text_tokens"].as_u64().unwrap())
    );
}
