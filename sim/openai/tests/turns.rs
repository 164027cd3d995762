//! The caller's turns: server VAD on μ-law energy with the session's parameters, manual
//! commits and the 100 ms rule, clearing, input transcription.

mod common;

use callway_sim_openai::audio::{silence_ulaw, tone_ulaw};
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig};
use common::*;
use serde_json::{Value, json};

fn speech_then_silence(lead_ms: u32, speech_ms: u32, tail_ms: u32) -> Vec<u8> {
    let mut a = silence_ulaw(lead_ms);
    a.extend(tone_ulaw(250.0, speech_ms, 0.4));
    a.extend(silence_ulaw(tail_ms));
    a
}

#[tokio::test]
async fn a_server_vad_turn_gives_the_ga_sequence_transcript_and_response() {
    let sim = OpenAiSim::spawn(SimConfig {
        script: Script::replies([Reply::tone(440.0, 300, "Bonjour Zoé.")])
            .with_user_transcripts(["Bonjour, c'est Zoé."]),
        ..fast_config()
    })
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(500, true, true), true)).await;
    c.expect("session.updated").await;
    // 1 s silence, 800 ms speech, 700 ms silence, in 20 ms Twilio-sized chunks.
    c.append_ulaw(&speech_then_silence(1000, 800, 700), 160).await;

    let started = c.expect("input_audio_buffer.speech_started").await;
    assert_eq!(started["audio_start_ms"], 700, "speech at 1000 ms minus 300 ms prefix padding");
    let item = started["item_id"].as_str().unwrap().to_owned();
    let stopped = c.expect("input_audio_buffer.speech_stopped").await;
    assert_eq!(stopped["audio_end_ms"], 2300, "end of speech (1800) plus 500 ms of silence");
    assert_eq!(stopped["item_id"], *item);
    let committed = c.expect("input_audio_buffer.committed").await;
    assert_eq!((committed["item_id"].as_str(), &committed["previous_item_id"]), (Some(&*item), &Value::Null));
    let added = c.expect("conversation.item.added").await;
    assert_eq!(added["item"]["role"], "user");
    assert_eq!(added["item"]["content"][0]["type"], "input_audio");
    c.expect("conversation.item.done").await;
    c.expect("conversation.item.input_audio_transcription.delta").await;
    let t = c.expect("conversation.item.input_audio_transcription.completed").await;
    assert_eq!(
        (t["item_id"].as_str(), t["transcript"].as_str()),
        (Some(&*item), Some("Bonjour, c'est Zoé."))
    );
    // create_response: the model answers by itself.
    let rest = c.response_done().await;
    assert_eq!(rest[0]["type"], "response.created");
    assert_eq!(deltas_of(&rest, "response.output_audio_transcript.delta"), "Bonjour Zoé.");
    assert_eq!(rest.last().unwrap()["response"]["status"], "completed");

    let rec = sim.session(0).unwrap();
    assert_eq!(rec.appends, 125);
    assert_eq!(rec.appended_bytes, 20_000);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn vad_follows_silence_duration_and_threshold_from_the_session() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    // 400 ms speech, 500 ms pause, 400 ms speech, 1.2 s silence.
    let mut audio = tone_ulaw(250.0, 400, 0.4);
    audio.extend(speech_then_silence(500, 400, 1200));
    let count = |events: &[Value], kind: &str| events.iter().filter(|e| e["type"] == kind).count();

    // Short silence duration: the pause ends a turn, two turns.
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(200, false, false), false)).await;
    c.expect("session.updated").await;
    c.append_ulaw(&audio, 160).await;
    c.send(json!({"type":"input_audio_buffer.clear"})).await;
    let ev = c.until("input_audio_buffer.cleared").await;
    assert_eq!(count(&ev, "input_audio_buffer.speech_started"), 2, "{:?}", kinds(&ev));
    assert_eq!(count(&ev, "input_audio_buffer.committed"), 2);
    assert_eq!(count(&ev, "response.created"), 0, "create_response false");

    // Long silence duration: one turn.
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(1000, false, false), false)).await;
    c.expect("session.updated").await;
    c.append_ulaw(&audio, 160).await;
    c.send(json!({"type":"input_audio_buffer.clear"})).await;
    let ev = c.until("input_audio_buffer.cleared").await;
    assert_eq!(count(&ev, "input_audio_buffer.speech_started"), 1, "{:?}", kinds(&ev));
    let stopped: Vec<&Value> =
        ev.iter().filter(|e| e["type"] == "input_audio_buffer.speech_stopped").collect();
    assert_eq!(stopped[0]["audio_end_ms"], 2300);

    // A high threshold hears quiet speech as silence.
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    let mut strict = server_vad(200, false, false);
    strict["threshold"] = json!(0.95);
    c.send(session_update(strict, false)).await;
    c.expect("session.updated").await;
    // Speech is RMS ≥ threshold / 10 = 0.095: a 0.4 tone (RMS ≈ 0.28) is heard, a 0.1 tone
    // (RMS ≈ 0.07) is not.
    c.append_ulaw(&speech_then_silence(0, 400, 400), 160).await;
    c.append_ulaw(&tone_ulaw(250.0, 400, 0.1), 160).await;
    c.send(json!({"type":"input_audio_buffer.clear"})).await;
    let ev = c.until("input_audio_buffer.cleared").await;
    assert_eq!(count(&ev, "input_audio_buffer.speech_started"), 1, "only the loud part: {:?}", kinds(&ev));
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn manual_commit_needs_100_ms_and_does_not_answer_by_itself() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(Value::Null, false)).await;
    c.expect("session.updated").await;

    c.send(json!({"type":"input_audio_buffer.commit","event_id":"evt_c0"})).await;
    let e = c.expect("error").await;
    assert_error_event(&e, "input_audio_buffer_commit_empty", Some("evt_c0"));
    assert_eq!(
        e["error"]["message"],
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has 0.00ms of audio."
    );

    c.append_ulaw(&tone_ulaw(250.0, 50, 0.4), 160).await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    let e = c.expect("error").await;
    assert!(e["error"]["message"].as_str().unwrap().ends_with("buffer only has 50.00ms of audio."), "{e}");

    // The buffer keeps what was appended: 50 + 60 ms is enough.
    c.append_ulaw(&tone_ulaw(250.0, 60, 0.4), 160).await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    let committed = c.expect("input_audio_buffer.committed").await;
    c.expect("conversation.item.added").await;
    c.expect("conversation.item.done").await;

    // Nothing more until the client asks (no VAD, no create_response).
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    assert_error_event(&c.expect("error").await, "input_audio_buffer_commit_empty", None);
    c.send(json!({"type":"response.create"})).await;
    c.expect("response.created").await;
    c.response_done().await;

    // Clear empties the buffer.
    c.append_ulaw(&tone_ulaw(250.0, 200, 0.4), 160).await;
    c.send(json!({"type":"input_audio_buffer.clear"})).await;
    c.expect("input_audio_buffer.cleared").await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    assert_error_event(&c.expect("error").await, "input_audio_buffer_commit_empty", None);

    let rec = sim.session(0).unwrap();
    assert_eq!(rec.sent_of("input_audio_buffer.committed")[0]["item_id"], committed["item_id"]);
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn transcription_events_only_when_transcription_is_configured() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(300, false, false), false)).await;
    c.expect("session.updated").await;
    c.append_ulaw(&speech_then_silence(0, 300, 400), 160).await;
    c.send(json!({"type":"input_audio_buffer.clear"})).await;
    let ev = c.until("input_audio_buffer.cleared").await;
    assert!(ev.iter().any(|e| e["type"] == "input_audio_buffer.committed"));
    assert!(!ev.iter().any(|e| e["type"].as_str().unwrap().contains("transcription")), "{:?}", kinds(&ev));
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn one_large_append_holding_two_turns_gives_two_turns() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let mut c = connect(&sim).await;
    c.expect("session.created").await;
    c.send(session_update(server_vad(500, false, false), false)).await;
    c.expect("session.updated").await;
    let mut audio = speech_then_silence(0, 400, 600);
    audio.extend(speech_then_silence(0, 400, 560));
    c.append_ulaw(&audio, audio.len()).await;
    c.send(json!({"type":"input_audio_buffer.commit"})).await;
    let ev = c.until("error").await; // 60 ms after the second turn: too little to commit
    let marks: Vec<(String, u64)> = ev
        .iter()
        .filter_map(|e| {
            let ms = e.get("audio_start_ms").or_else(|| e.get("audio_end_ms"))?.as_u64()?;
            Some((e["type"].as_str()?.to_owned(), ms))
        })
        .collect();
    assert_eq!(
        marks,
        [
            ("input_audio_buffer.speech_started".to_owned(), 0),
            ("input_audio_buffer.speech_stopped".to_owned(), 900),
            // Padding stops at the start of the buffer, i.e. the end of the first turn.
            ("input_audio_buffer.speech_started".to_owned(), 900),
            ("input_audio_buffer.speech_stopped".to_owned(), 1900),
        ]
    );
    assert!(
        ev.last().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("buffer only has 60.00ms of audio.")
    );
    assert_schema_clean(&sim);
    sim.shutdown().await;
}
