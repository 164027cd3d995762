//! The caller against a reference server playing the gateway: message shapes and order,
//! the signed upgrade, playback of marks and `clear`, warnings for invalid messages, recording.
//! All under `tokio::time::pause` (start_paused): times are the simulator's virtual clock.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use callway_sim_twilio::caller::{
    CallEnd, Caller, CallerConfig, DtmfPress, EndPolicy, HangupCause, HangupHandle, Pacing, Segment, run_call,
};
use callway_sim_twilio::playback::MarkOutcome;
use callway_sim_twilio::{audio, sids};
use common::{serve_once, within};
use contract::twilio_signature::{TwilioSigner, UpgradeSignature};

const TOKEN: &str = "12345";

/// Distinct, recognisable audio: byte i = i mod 251 (never 0xFF).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn config(url: &str) -> CallerConfig {
    let mut cfg = CallerConfig::new(url, TOKEN);
    cfg.script = vec![Segment::Audio(pattern(480).into())];
    cfg.end = EndPolicy::ScriptEnd;
    cfg
}

#[tokio::test(start_paused = true)]
async fn sends_twilio_messages_in_order_with_a_signed_upgrade() {
    let path = "/api/twilio/media-stream/v1.abc.def";
    let (url, server) = serve_once(path, |mut peer| async move {
        let mut texts = Vec::new();
        while let Some(t) = peer.recv_text().await {
            texts.push(t);
        }
        (peer.request, texts)
    })
    .await;
    let mut cfg = config(&url);
    cfg.custom_parameters = vec![("lead_id".into(), "42".into()), ("token".into(), "v1.x.y".into())];
    cfg.dtmf = vec![DtmfPress { at: Duration::from_millis(20), digit: '7' }];
    let report = within(60, run_call(cfg.clone())).await;
    let (request, texts) = server.await.unwrap();

    // The upgrade: path, lowercase signature header, Twilio's signature of the URL as written.
    assert_eq!(request.request_line, format!("GET {path} HTTP/1.1"));
    let sig_line =
        request.raw.lines().find(|l| l.to_ascii_lowercase().starts_with("x-twilio-signature:")).unwrap();
    assert!(sig_line.starts_with("x-twilio-signature:"), "header name must be lowercase: {sig_line}");
    let sig = request.header("x-twilio-signature").unwrap();
    assert_eq!(sig, TwilioSigner::new(TOKEN.as_bytes()).sign(&url, &[]));
    assert_eq!(
        TwilioSigner::new(TOKEN.as_bytes()).verify_upgrade(&url, sig.as_bytes()),
        UpgradeSignature::Valid
    );
    assert_eq!(report.signature, sig);

    // SIDs of Twilio's shape.
    assert!(
        sids::is_sid(&cfg.call_sid, "CA")
            && sids::is_sid(&cfg.stream_sid, "MZ")
            && sids::is_sid(&cfg.account_sid, "AC")
    );
    let (ac, ca, mz) = (&cfg.account_sid, &cfg.call_sid, &cfg.stream_sid);

    // Exact messages, field order included.
    let frames: Vec<String> = pattern(480).chunks(160).map(|c| STANDARD.encode(c)).collect();
    assert!(frames.iter().all(|f| f.len() == 216));
    let expected = vec![
        r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned(),
        format!(
            r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"{ac}","streamSid":"{mz}","callSid":"{ca}","tracks":["inbound"],"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"customParameters":{{"lead_id":"42","token":"v1.x.y"}}}},"streamSid":"{mz}"}}"#
        ),
        format!(
            r#"{{"event":"media","sequenceNumber":"2","media":{{"track":"inbound","chunk":"1","timestamp":"0","payload":"{}"}},"streamSid":"{mz}"}}"#,
            frames[0]
        ),
        format!(
            r#"{{"event":"dtmf","streamSid":"{mz}","sequenceNumber":"3","dtmf":{{"track":"inbound_track","digit":"7"}}}}"#
        ),
        format!(
            r#"{{"event":"media","sequenceNumber":"4","media":{{"track":"inbound","chunk":"2","timestamp":"20","payload":"{}"}},"streamSid":"{mz}"}}"#,
            frames[1]
        ),
        format!(
            r#"{{"event":"media","sequenceNumber":"5","media":{{"track":"inbound","chunk":"3","timestamp":"40","payload":"{}"}},"streamSid":"{mz}"}}"#,
            frames[2]
        ),
        format!(
            r#"{{"event":"stop","sequenceNumber":"6","stop":{{"accountSid":"{ac}","callSid":"{ca}"}},"streamSid":"{mz}"}}"#
        ),
    ];
    assert_eq!(texts, expected);

    assert_eq!(report.end, CallEnd::CallerHungUp { cause: HangupCause::ScriptEnd });
    assert!(report.close_handshake_completed, "the close handshake completes");
    assert_eq!((report.media_sent, report.dtmf_sent, report.last_sequence_number), (3, 1, 6));
    assert!(report.warnings.is_empty());
}

#[tokio::test(start_paused = true)]
async fn media_paces_at_20ms_of_stream_time_in_real_time_mode() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        let start = tokio::time::Instant::now();
        let mut arrivals = Vec::new();
        while let Some(t) = peer.recv_text().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "media" {
                arrivals.push((
                    v["media"]["timestamp"].as_str().unwrap().parse::<u64>().unwrap(),
                    start.elapsed(),
                ));
            }
        }
        arrivals
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Silence { ms: 200 }];
    within(60, run_call(cfg)).await;
    let arrivals = server.await.unwrap();
    assert_eq!(arrivals.len(), 10);
    for (i, (ts, at)) in arrivals.iter().enumerate() {
        assert_eq!(*ts, 20 * i as u64);
        // Virtual clock: frame i leaves at 20·i ms of stream time, not before.
        assert!(*at >= Duration::from_millis(20 * i as u64), "frame {i} at {at:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn unpaced_mode_sends_the_script_without_waiting() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        let mut ts = Vec::new();
        while let Some(t) = peer.recv_text().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "media" {
                ts.push(v["media"]["timestamp"].as_str().unwrap().parse::<u64>().unwrap());
            }
        }
        ts
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Tone { hz: 440.0, ms: 10_000 }];
    cfg.pacing = Pacing::Unpaced;
    let t0 = tokio::time::Instant::now();
    let report = within(60, run_call(cfg)).await;
    let ts = server.await.unwrap();
    // 10 s of audio, stamped 0, 20, 40 … yet no time passed on tokio's (virtual) clock.
    assert_eq!(ts, (0..500).map(|i| i * 20).collect::<Vec<u64>>());
    assert_eq!(report.duration, Duration::from_secs(10));
    // Yet far less than that passed on tokio's (virtual) clock: only the close handshake waited.
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn accelerated_mode_runs_the_stream_clock_faster() {
    let (url, server) =
        serve_once("/s", |mut peer| async move { while peer.recv_text().await.is_some() {} }).await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Silence { ms: 1000 }];
    cfg.pacing = Pacing::Accelerated(10);
    let t0 = tokio::time::Instant::now();
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();
    assert_eq!(report.media_sent, 50);
    assert_eq!(report.duration, Duration::from_secs(1));
    // One second of stream time in about a tenth of a second of tokio's (virtual) clock.
    assert!(t0.elapsed() < Duration::from_millis(200), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn marks_are_echoed_after_their_audio_and_clear_flushes_them() {
    let a = pattern(1600); // 200 ms
    let b = vec![0x10u8; 1600];
    let (url, server) = serve_once("/s", move |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        let (first, _) = peer.until_event("media").await;
        assert_eq!(first["media"]["timestamp"], "0");
        peer.send_media(&mz, &a).await;
        peer.send_mark(&mz, "a").await;
        peer.send_media(&mz, &b).await;
        peer.send_mark(&mz, "b").await;
        // "a" comes back once its 200 ms have played: the caller has by then sent media up to 180 ms.
        let (echo_a, ts_before_a) = peer.until_event("mark").await;
        assert_eq!(echo_a["mark"]["name"], "a");
        assert_eq!(echo_a["streamSid"], mz.as_str());
        assert!(ts_before_a.last().copied().unwrap_or(0) >= 180, "echoed too early: {ts_before_a:?}");
        // Clear while "b"'s audio is queued: "b" is echoed at once (flushed), long before its 200 ms.
        peer.send_clear(&mz).await;
        let (echo_b, ts_before_b) = peer.until_event("mark").await;
        assert_eq!(echo_b["mark"]["name"], "b");
        assert!(ts_before_b.iter().all(|&t| t < 380), "flushed mark waited for audio: {ts_before_b:?}");
        // Nothing queued: a mark comes straight back.
        peer.send_mark(&mz, "c").await;
        let (echo_c, ts_before_c) = peer.until_event("mark").await;
        assert_eq!(echo_c["mark"]["name"], "c");
        assert!(ts_before_c.len() <= 1, "{ts_before_c:?}");
        // Sequence numbers keep counting across media and echoes.
        let n: u64 = echo_c["sequenceNumber"].as_str().unwrap().parse().unwrap();
        assert!(n > 3);
        while peer.recv_text().await.is_some() {}
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Tone { hz: 440.0, ms: 1000 }];
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();

    let marks: Vec<(&str, MarkOutcome)> = report.marks.iter().map(|m| (m.name.as_str(), m.outcome)).collect();
    assert_eq!(
        marks,
        vec![("a", MarkOutcome::Played), ("b", MarkOutcome::Flushed), ("c", MarkOutcome::Played)]
    );
    assert_eq!((report.marks_played(), report.marks_flushed()), (2, 1));
    // "a" came back exactly when its audio had played: 200 ms after the audio started.
    let a_rec = &report.marks[0];
    let a_start = Duration::from_micros(report.heard_segments[0].start * 125);
    assert_eq!(a_rec.echoed_at, a_start + Duration::from_millis(200));
    assert!(a_rec.received_at <= a_rec.echoed_at);
    let c_rec = &report.marks[2];
    assert_eq!(c_rec.echoed_at, c_rec.received_at);
    // What was heard: all of "a", then part of "b" until the clear; the rest dropped.
    assert_eq!(report.clears.len(), 1);
    let clear = &report.clears[0];
    assert_eq!(report.heard.len() as u64 + clear.dropped_bytes, 3200);
    assert_eq!(&report.heard[..1600], &pattern(1600)[..]);
    assert_eq!(clear.flushed_marks, 1);
    // The caller was talking (tone) when the clear came, and nothing played after it.
    assert!(clear.caller_speaking_until.is_some());
    assert_eq!(report.audio_after_clear(), Duration::ZERO);
    assert_eq!(report.first_agent_audio, Some(Duration::ZERO));
    assert!(report.marks_unanswered.is_empty());
    // Recording timeline: one continuous run starting when the audio arrived.
    assert_eq!(report.heard_segments.len(), 1);
    let track = report.heard_track();
    let s = report.heard_segments[0];
    assert_eq!(&track[s.start as usize..s.start as usize + 1600], &pattern(1600)[..]);
}

#[tokio::test(start_paused = true)]
async fn audio_sent_after_a_clear_while_the_caller_talks_is_measured() {
    // A faulty gateway: clears, then keeps streaming the interrupted response.
    let (url, server) = serve_once("/s", |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        peer.send_media(&mz, &[0x20; 800]).await;
        peer.until_event("media").await;
        peer.send_clear(&mz).await;
        peer.send_media(&mz, &[0x30; 800]).await; // stale audio, 100 ms
        while peer.recv_text().await.is_some() {}
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Tone { hz: 300.0, ms: 1000 }, Segment::Silence { ms: 500 }];
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();
    assert_eq!(report.clears.len(), 1);
    assert_eq!(report.clears[0].played_after_clear_bytes, 800);
    assert_eq!(report.audio_after_clear(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn invalid_messages_become_twilio_warnings_not_crashes() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        // Before `start` (the caller delays it here): the streamSid cannot be known yet.
        let connected = peer.recv_json().await;
        assert_eq!(connected["event"], "connected");
        peer.send_text(r#"{"event":"clear","streamSid":"MZ00000000000000000000000000000000"}"#).await;
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        for bad in [
            "this is not json".to_owned(),
            r#"{"event":"hello","streamSid":"MZ"}"#.to_owned(),
            format!(r#"{{"event":"clear","streamSid":"{mz}","extra":true}}"#),
            format!(r#"{{"event":"mark","streamSid":"{mz}"}}"#),
            r#"{"event":"clear","streamSid":"MZ00000000000000000000000000000000"}"#.to_owned(),
            format!(r#"{{"event":"media","streamSid":"{mz}","media":{{"payload":"@@@"}}}}"#),
        ] {
            peer.send_text(bad).await;
        }
        peer.ws.send_binary_frame().await;
        peer.send_mark(&mz, "sync").await;
        let (echo, _) = peer.until_event("mark").await;
        assert_eq!(echo["mark"]["name"], "sync");
        peer.close().await
    })
    .await;
    let mut cfg = config(&url);
    cfg.start_delay = Duration::from_millis(100);
    cfg.script = vec![Segment::Silence { ms: 5000 }];
    cfg.end = EndPolicy::ServerCloses;
    let report = within(60, run_call(cfg)).await;
    let close_acknowledged = server.await.unwrap();
    assert_eq!(report.warning_codes(), vec![31951, 31951, 31951, 31951, 31951, 31951, 31951, 31950]);
    assert!(report.warnings[0].detail.contains("before `start`"));
    assert!(report.warnings[6].detail.contains("base64"));
    assert!(report.warnings.iter().all(|w| w.title.starts_with("Stream - Protocol")));
    // The stream survived all of it and ended when the server closed.
    assert_eq!(report.end, CallEnd::ServerClosed { code: Some(1000), reason: String::new() });
    assert!(close_acknowledged);
    assert!(report.heard.is_empty());
    assert!(report.media_sent > 0);
}

#[tokio::test(start_paused = true)]
async fn more_than_the_buffer_is_dropped_with_31931() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        peer.send_media(&mz, &[0x40; 1600]).await;
        while peer.recv_text().await.is_some() {}
    })
    .await;
    let mut cfg = config(&url);
    cfg.playback_capacity = 800;
    cfg.script = vec![Segment::Silence { ms: 400 }];
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();
    assert_eq!(report.warning_codes(), vec![31931]);
    assert_eq!(report.heard.len(), 800);
    assert_eq!(report.audio_received_bytes, 1600);
}

#[tokio::test(start_paused = true)]
async fn first_agent_audio_is_measured_from_start_on_the_stream_clock() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        loop {
            let (m, _) = peer.until_event("media").await;
            if m["media"]["timestamp"] == "300" {
                break;
            }
        }
        peer.send_media(&mz, &pattern(400)).await;
        while peer.recv_text().await.is_some() {}
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Silence { ms: 600 }];
    cfg.end = EndPolicy::ScriptEndAndPlayback { max_wait: Duration::from_secs(5) };
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();
    let first = report.first_agent_audio.expect("agent audio");
    assert!(first >= Duration::from_millis(300), "{first:?}");
    let seg = report.heard_segments[0];
    assert_eq!(Duration::from_micros(seg.start * 125), report.started_at + first);
    assert_eq!(report.heard, pattern(400));
    assert_eq!(report.end, CallEnd::CallerHungUp { cause: HangupCause::PlaybackDone });
    // The heard track has the audio at its place on the timeline, silence elsewhere.
    let track = report.heard_track();
    assert!(track[..seg.start as usize].iter().all(|&b| b == audio::SILENCE));
    assert_eq!(&track[seg.start as usize..seg.start as usize + 400], &pattern(400)[..]);
}

#[tokio::test(start_paused = true)]
async fn hang_up_from_outside_sends_stop_then_closes() {
    let hangup = HangupHandle::new();
    let h = hangup.clone();
    let (url, server) = serve_once("/s", move |mut peer| async move {
        peer.until_event("start").await;
        peer.until_event("media").await;
        h.hang_up();
        let (stop, _) = peer.until_event("stop").await;
        // After `stop`, the caller closes the WebSocket.
        let closed = matches!(peer.recv().await, Some(tokio_tungstenite::tungstenite::Message::Close(_)));
        (stop, closed)
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![Segment::Silence { ms: 60_000 }];
    let report = within(60, Caller::new(cfg).with_hangup(hangup).run()).await;
    let (stop, closed) = server.await.unwrap();
    assert_eq!(stop["stop"]["callSid"], report.call_sid.as_str());
    assert!(closed);
    assert_eq!(report.end, CallEnd::CallerHungUp { cause: HangupCause::Requested });
}

#[tokio::test(start_paused = true)]
async fn await_agent_waits_for_the_agent_to_finish_speaking() {
    let (url, server) = serve_once("/s", |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        // Reply to the caller's first frame with 300 ms of speech.
        peer.until_event("media").await;
        peer.send_media(&mz, &audio::tone(200.0, 300, 0.5)).await;
        let mut voiced_ts = Vec::new();
        while let Some(t) = peer.recv_text().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "media" {
                let frame = STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap();
                if audio::is_voiced(&frame) {
                    voiced_ts.push(v["media"]["timestamp"].as_str().unwrap().parse::<u64>().unwrap());
                }
            }
        }
        voiced_ts
    })
    .await;
    let mut cfg = config(&url);
    cfg.script =
        vec![Segment::AwaitAgent { settle_ms: 200, timeout_ms: 5000 }, Segment::Tone { hz: 500.0, ms: 100 }];
    within(60, run_call(cfg)).await;
    let voiced = server.await.unwrap();
    // The caller answers only after the agent's 300 ms and 200 ms of quiet.
    assert_eq!(voiced.len(), 5);
    assert!(voiced[0] >= 500, "{voiced:?}");
}

/// Sends a binary frame (Twilio answers it with 31950).
trait BinaryFrame {
    async fn send_binary_frame(&mut self);
}

impl BinaryFrame for tokio_tungstenite::WebSocketStream<Box<dyn common::Io>> {
    async fn send_binary_frame(&mut self) {
        use futures_util::SinkExt as _;
        self.send(tokio_tungstenite::tungstenite::Message::binary(vec![1u8, 2, 3])).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_speech_fixture_is_sent_verbatim_in_20ms_frames() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/bonjour-claire.ul");
    let speech = audio::load(std::path::Path::new(path)).unwrap();
    let (url, server) = serve_once("/s", |mut peer| async move {
        let mut received = Vec::new();
        let mut voiced = 0;
        while let Some(t) = peer.recv_text().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["event"] == "media" {
                let frame = STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap();
                assert_eq!(frame.len(), 160);
                voiced += usize::from(audio::is_voiced(&frame));
                received.extend_from_slice(&frame);
            }
        }
        (received, voiced)
    })
    .await;
    let mut cfg = config(&url);
    cfg.script = vec![format!("file:{path}").parse::<Segment>().unwrap()];
    let report = within(60, run_call(cfg)).await;
    let (received, voiced) = server.await.unwrap();
    // Every byte, in order; the last frame padded with μ-law silence.
    assert_eq!(&received[..speech.len()], &speech[..]);
    assert!(received[speech.len()..].iter().all(|&b| b == audio::SILENCE));
    assert_eq!(report.media_sent as usize, speech.len().div_ceil(160));
    // It is speech: most frames are above the voice threshold.
    assert!(voiced * 2 > received.len() / 160, "{voiced} voiced frames");
}
