//! GPT-Live audio: the output stream is continuous and real time (silence included) and only
//! advances while the caller's audio comes; audio is never acknowledged; the greeting by
//! commentary; the agent stops talking by itself when the caller turns loud; transcripts on
//! the session timeline; mute. Paused tokio clock: times are read from the simulator's
//! record, never measured.

mod common;
mod live_client;

use std::time::Duration;

use callway_sim_openai::audio::{silence_ulaw, tone_ulaw};
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig};
use live_client::*;
use serde_json::json;

fn script(replies: Vec<Reply>) -> SimConfig {
    SimConfig {
        script: Script::replies(replies).with_user_transcripts(["Oui c'est moi"]),
        ..SimConfig::default()
    }
}

fn call_audio(lead_ms: u32, loud_ms: u32, tail_ms: u32) -> Vec<u8> {
    let mut a = silence_ulaw(lead_ms);
    a.extend(tone_ulaw(250.0, loud_ms, 0.4));
    a.extend(silence_ulaw(tail_ms));
    a
}

#[tokio::test(start_paused = true)]
async fn output_streams_silence_in_real_time_only_while_audio_comes_and_audio_is_never_acked() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.append(&silence_ulaw(1000), 160).await;
    // Up to 200 ms ahead of the 1000 ms appended: chunks at 0, 100, ..., 1200 ms.
    let events = c.deltas(13).await;
    assert!(events.is_empty(), "nothing answers an append: {events:?}");
    // Then the stream waits for audio: the next thing, a minute later, is the usage report.
    let usage = c.next().await;
    assert_eq!(usage["type"], "session.usage.updated", "{usage}");
    assert_eq!(c.chunk_sizes.len(), 13, "no audio without input");
    assert!(c.chunk_sizes.iter().all(|&n| n == 800), "100 ms of µ-law each: {:?}", c.chunk_sizes);
    assert!(c.audio.iter().all(|&b| b == 0xFF), "µ-law silence");
    let rec = sim.session(0).unwrap();
    let at: Vec<Duration> =
        rec.sent.iter().filter(|e| e.kind == "session.output_audio.delta").map(|e| e.at).collect();
    for (k, t) in at.iter().enumerate() {
        assert_eq!(*t - at[0], Duration::from_millis(100) * k as u32, "real-time pace on the sim's clock");
    }
    assert_eq!(rec.audio_deltas_sent, 13);
    assert_eq!((rec.appends, rec.appended_bytes), (50, 8000));
    // More audio, more stream: resumed at real-time pace, not in a burst to catch up.
    c.append(&silence_ulaw(500), 160).await;
    c.deltas(18).await;
    let rec = sim.session(0).unwrap();
    let at: Vec<Duration> =
        rec.sent.iter().filter(|e| e.kind == "session.output_audio.delta").map(|e| e.at).collect();
    assert!(at[13] >= Duration::from_secs(60), "{:?}", at[13]);
    for k in 14..18 {
        assert_eq!(at[k] - at[k - 1], Duration::from_millis(100));
    }
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_commentary_is_acknowledged_and_spoken_with_its_transcript_on_the_timeline() {
    let sim = OpenAiSim::spawn(script(vec![Reply::tone(440.0, 500, "Bonjour, ici Claire.")])).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "session.commentary.append", "event_id": "evt_c", "content": "Salue Zoé.",
        "delegation_id": null}))
        .await;
    let ack = c.expect("session.commentary.appended").await;
    assert_eq!(ack["client_event_id"], "evt_c");
    let at = ack["start_ms"].as_u64().unwrap();
    assert_eq!(ack["end_ms"], at);
    c.append(&silence_ulaw(2000), 160).await;
    let events = c.deltas(23).await;
    assert_eq!(text_of(&events, "session.output_transcript.delta"), "Bonjour, ici Claire.");
    let first = events.iter().find(|e| e["type"] == "session.output_transcript.delta").unwrap();
    let speak_ms = at + 200;
    assert_eq!(first["start_ms"], speak_ms, "after the 200 ms time to first byte");
    let last = events.iter().rfind(|e| e["type"] == "session.output_transcript.delta").unwrap();
    let end = last["end_ms"].as_u64().unwrap();
    assert!(end > speak_ms && end <= speak_ms + 500, "words go with the audio that says them: {end}");
    let s = speak_ms as usize * 8;
    assert!(c.audio[..s].iter().all(|&b| b == 0xFF));
    assert_eq!(c.audio[s..s + 4000], tone_ulaw(440.0, 500, 0.3)[..], "the reply, byte for byte");
    assert!(c.audio[s + 4000..].iter().all(|&b| b == 0xFF), "silence again after it");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_agent_stops_talking_when_the_caller_turns_loud_then_answers_the_turn() {
    let sim = OpenAiSim::spawn(script(vec![
        Reply::tone(440.0, 3000, "Un deux trois quatre cinq six sept huit neuf dix"),
        Reply::tone(600.0, 500, "Pardon, je vous écoute."),
    ]))
    .await
    .unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "session.commentary.append", "content": "Salue.", "delegation_id": null})).await;
    let at = c.expect("session.commentary.appended").await["start_ms"].as_u64().unwrap();
    assert!(at < 800, "{at}");
    // The caller talks over the greeting from 1000 to 2000 ms.
    c.append(&call_audio(1000, 1000, 2500), 160).await;
    let events = c.deltas(((4500 + 200) / 100) + 1).await;
    let a = &c.audio;
    let speak = (at + 200) as usize * 8;
    assert_eq!(
        a[speak..8000],
        tone_ulaw(440.0, 3000, 0.3)[..8000 - speak],
        "the greeting until the caller is loud"
    );
    // The turn ends at 2500 ms (500 ms of silence); the answer starts 200 ms later.
    assert!(a[8000..2700 * 8].iter().all(|&b| b == 0xFF), "silent from the caller's first loud frame");
    assert_eq!(a[2700 * 8..3200 * 8], tone_ulaw(600.0, 500, 0.3)[..], "then the next reply");
    let input: Vec<_> = events.iter().filter(|e| e["type"] == "session.input_transcript.delta").collect();
    assert_eq!(text_of(&events, "session.input_transcript.delta"), "Oui c'est moi");
    assert_eq!(
        (input[0]["start_ms"].as_u64(), input.last().unwrap()["end_ms"].as_u64()),
        (Some(1000), Some(2000))
    );
    let said = text_of(&events, "session.output_transcript.delta");
    assert!(said.starts_with("Un deux ") && said.ends_with("Pardon, je vous écoute."), "{said}");
    assert!(!said.contains("dix"), "the rest of the greeting was never said: {said}");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_muted_caller_is_heard_as_silence() {
    let sim = OpenAiSim::spawn(script(vec![Reply::tone(440.0, 300, "Oui ?")])).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "session.input_audio.mute", "event_id": "evt_m"})).await;
    assert_eq!(c.expect("session.input_audio.muted").await["client_event_id"], "evt_m");
    c.append(&call_audio(500, 800, 700), 160).await;
    let events = c.deltas(23).await;
    assert!(events.is_empty(), "no turn while muted: {events:?}");
    c.send(json!({"type": "session.input_audio.unmute"})).await;
    c.expect("session.input_audio.unmuted").await;
    c.append(&call_audio(500, 800, 700), 160).await;
    let events = c.until("session.output_transcript.delta").await;
    assert_eq!(text_of(&events, "session.input_transcript.delta"), "Oui c'est moi");
    assert_eq!(sim.session(0).unwrap().appends, 2 * 100);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn other_formats_stream_their_own_silence_and_chunk_size() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    for (format, silence, chunk) in [
        (json!({"type": "audio/pcma", "rate": 8000}), vec![0xD5u8; 4000], 800),
        (json!({"type": "audio/pcm", "rate": 16000}), vec![0u8; 16000], 3200),
        (json!({"type": "audio/pcm", "rate": 24000}), vec![0u8; 24000], 4800),
    ] {
        let mut c = connect(&sim).await;
        let started = c.start(start_with_format(format.clone())).await;
        assert_eq!(started["session"]["audio"]["format"], format);
        c.append(&silence, silence.len()).await;
        c.deltas(8).await;
        assert!(c.chunk_sizes.iter().all(|&n| n == chunk), "{format}: {:?}", c.chunk_sizes);
        assert!(c.audio.iter().all(|&b| b == silence[0]), "{format}");
        c.close_socket().await;
    }
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_audio_is_an_error_and_the_session_goes_on() {
    let sim = OpenAiSim::spawn(SimConfig::default()).await.unwrap();
    let mut c = connect(&sim).await;
    c.start(phone_start()).await;
    c.send(json!({"type": "session.input_audio.append", "audio": "not base64!", "event_id": "evt_b"})).await;
    let e = c.expect("error").await;
    assert_live_error(&e, "invalid_value", Some("evt_b"));
    assert_eq!(e["error"]["param"], "audio");
    c.send(json!({"type": "session.thinking.append", "content": "Le prospect hésite.", "event_id": "evt_t",
        "delegation_id": null}))
        .await;
    let ack = c.expect("session.thinking.appended").await;
    assert_eq!(ack["client_event_id"], "evt_t");
    assert_eq!(sim.session(0).unwrap().appends, 0);
    sim.shutdown().await;
}
