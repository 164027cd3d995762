//! A call from upgrade to `stop`: pre-warm, session configuration, greeting, the frame path
//! both ways, agent audio held until `start`, DTMF, reports.

mod call_support;

use call_support::{Answer, Pair, STREAM_SID, config, silence_b64, tone_b64};
use callway_gateway::core::call::{
    CallConfig, CallEvent, CallState, CloseReason, DEFAULT_MODEL, Eagerness, Event, Handled, Side, Speaker,
    TurnTaking,
};
use callway_gateway::samples;

fn decode(b64: &str) -> Vec<u8> {
    base64_simd::STANDARD.decode_to_vec(b64).expect("base64")
}

#[test]
fn semantic_vad_is_configured_with_its_eagerness_and_the_model_named_once() {
    // Every event Pair sees is checked against the official client-events schema.
    let p = Pair::new(CallConfig {
        turn_detection: TurnTaking::SemanticVad { eagerness: Eagerness::High },
        ..config()
    });
    let s = &p.openai.got[0]["session"];
    let td = &s["audio"]["input"]["turn_detection"];
    assert_eq!((td["type"].as_str(), td["eagerness"].as_str()), (Some("semantic_vad"), Some("high")), "{td}");
    assert_eq!(
        (td["create_response"].as_bool(), td["interrupt_response"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(s["model"], DEFAULT_MODEL);
}

#[test]
fn upgrade_opens_openai_with_the_key_then_configures_the_session_and_greets_once_twilio_starts() {
    let mut p = Pair::new(config());
    assert_eq!(p.events[0], Event::OpenUpstream, "pre-warm: OpenAI is opened before Twilio's start");
    assert_eq!(p.upgrades.len(), 1);
    let head = &p.upgrades[0];
    assert!(head.starts_with("GET /v1/realtime?model=gpt-realtime-2.1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Host: api.openai.com\r\n") && head.contains("Authorization: Bearer sk-test\r\n"));
    assert_eq!(p.openai_types(), ["session.update"], "pre-warmed, but no response before Twilio's start");
    p.twilio_start();
    assert_eq!(
        p.openai_types(),
        ["session.update", "response.create"],
        "configure, then the agent speaks first, once the stream started"
    );
    let s = &p.openai.got[0]["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["instructions"], call_support::context().instructions);
    assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(s["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad");
    assert_eq!(s["audio"]["input"]["transcription"]["language"], "fr");
    let tools: Vec<&str> =
        s["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["save_lead", "end_call"]);
    for t in s["tools"].as_array().unwrap() {
        let params = &t["parameters"];
        assert_eq!(params["additionalProperties"], false, "strict schema");
        let props: Vec<&String> = params["properties"].as_object().unwrap().keys().collect();
        let required: Vec<&str> =
            params["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert_eq!(props.len(), required.len(), "strict: every property required");
    }
    assert_eq!(*p.call.state(), CallState::Live);
}

#[test]
fn before_start_the_call_waits_upgraded_and_sends_twilio_nothing() {
    let p = Pair::new(config());
    assert!(p.twilio.got.is_empty(), "nothing goes to Twilio before start");
    assert_eq!(*p.call.state(), CallState::Upgraded);
}

#[test]
fn debug_output_never_shows_the_api_key() {
    let p = Pair::new(config());
    let shown = format!("{:?} {:?}", p.call, config());
    assert!(!shown.contains("sk-test"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn start_makes_the_call_live_and_caller_audio_goes_out_unchanged() {
    let mut p = Pair::new(config());
    p.twilio_start();
    assert_eq!(*p.call.state(), CallState::Live);
    assert_eq!(p.call.stream_sid(), Some(STREAM_SID));
    assert_eq!(p.call.call_sid(), Some("CA0000000000000000000000000000000a"), "for the shell's log lines");
    p.openai.clear();
    let payload = tone_b64(20);
    p.caller_audio(&payload);
    assert_eq!(p.openai.got, [serde_json::json!({"type":"input_audio_buffer.append","audio":payload})]);
    assert_eq!(p.call.stats().media_forwarded, 1);
}

#[test]
fn caller_audio_before_openai_is_ready_is_held_then_sent_as_appends() {
    let mut p = Pair::with(config(), Answer::Accept, false);
    p.twilio_start();
    assert_eq!(*p.call.state(), CallState::Started, "start seen, OpenAI not configured");
    let chunks: Vec<Vec<u8>> = (0..5).map(|i| samples::ulaw_tone(160 + i)).collect();
    for c in &chunks {
        p.caller_audio(&samples::base64(c));
    }
    assert_eq!(p.call.held_ms(), chunks.iter().map(Vec::len).sum::<usize>() / 8);
    assert!(p.openai.got.is_empty());
    p.connect_openai();
    p.drive();
    assert_eq!(*p.call.state(), CallState::Live);
    let types = p.openai_types();
    assert_eq!(types.first().map(String::as_str), Some("session.update"), "configured before any audio");
    assert_eq!(types.last().map(String::as_str), Some("response.create"), "greeting after the held audio");
    let appended: Vec<u8> = p
        .openai
        .of("input_audio_buffer.append")
        .iter()
        .flat_map(|a| decode(a["audio"].as_str().unwrap()))
        .collect();
    assert_eq!(appended, chunks.concat(), "held audio arrives whole and in order");
    assert_eq!(p.call.held_ms(), 0);
    assert_eq!(p.call.hold_dropped().bytes, 0);
}

#[test]
fn held_caller_audio_larger_than_the_send_buffer_goes_out_whole_and_in_order() {
    let mut p = Pair::with(CallConfig { openai_send_capacity: 16 * 1024, ..config() }, Answer::Accept, false);
    p.twilio_start();
    let chunks: Vec<Vec<u8>> = (0..140).map(|i| samples::ulaw_tone(160 + i % 7)).collect(); // 2.9 s
    for c in &chunks {
        p.caller_audio(&samples::base64(c));
    }
    p.connect_openai();
    p.drive();
    p.caller_audio(&tone_b64(20));
    let appended: Vec<u8> = p
        .openai
        .of("input_audio_buffer.append")
        .iter()
        .flat_map(|a| decode(a["audio"].as_str().unwrap()))
        .collect();
    let expected = [chunks.concat(), samples::ulaw_tone(160)].concat();
    assert_eq!(appended.len(), expected.len());
    assert!(appended == expected, "the held audio, then the new, in order");
    assert_eq!(p.call.stats().send_overflows, 0);
    assert_eq!(p.call.hold_dropped().bytes, 0);
}

#[test]
fn a_full_hold_ring_drops_the_oldest_audio_and_counts_it() {
    let mut p = Pair::with(config(), Answer::Accept, false);
    p.twilio_start();
    let slots = callway_gateway::core::call::HOLD_SLOTS;
    for _ in 0..slots + 10 {
        p.caller_audio(&tone_b64(20)); // 200 ms more than the ring holds
    }
    assert_eq!(p.call.held_ms() as u64, callway_gateway::core::call::HOLD_MS);
    assert_eq!(p.call.hold_dropped().bytes, 200 * 8);
}

#[test]
fn agent_audio_before_start_is_held_then_sent_after_start() {
    let mut p = Pair::new(config());
    p.response_created("resp_1");
    let audio = samples::ulaw_tone(800);
    p.delta("resp_1", "item_a", &samples::base64(&audio));
    assert!(p.twilio.got.is_empty(), "streamSid unknown: nothing may be sent");
    p.twilio_start();
    let media = p.twilio.of("media");
    assert_eq!(media.len(), 1);
    assert_eq!(media[0]["streamSid"], STREAM_SID);
    assert_eq!(decode(media[0]["media"]["payload"].as_str().unwrap()), audio);
    assert_eq!(p.marks(), ["r1-c1-100"]);
}

#[test]
fn agent_audio_held_before_start_larger_than_the_send_buffer_still_arrives_whole() {
    let mut p = Pair::new(config());
    p.response_created("resp_1");
    let audio: Vec<Vec<u8>> = (0..12).map(|i| samples::ulaw_tone(4000 + i)).collect(); // 6 s
    for a in &audio {
        p.delta("resp_1", "item_a", &samples::base64(a));
    }
    p.twilio_start();
    p.delta("resp_1", "item_a", &tone_b64(100));
    let played: Vec<u8> =
        p.twilio.of("media").iter().flat_map(|m| decode(m["media"]["payload"].as_str().unwrap())).collect();
    assert_eq!(played, [audio.concat(), samples::ulaw_tone(800)].concat(), "all of it, in order");
    assert_eq!(p.marks().last().unwrap(), "r1-c27-6108");
    assert_eq!(p.call.stats().send_overflows, 0);
    assert_eq!(p.call.stats().agent_hold_dropped_bytes, 0);
}

#[test]
fn agent_deltas_become_twilio_media_unchanged_each_followed_by_a_mark() {
    let mut p = Pair::live(config());
    p.response_created("resp_1");
    let d1 = tone_b64(100);
    p.delta("resp_1", "item_a", &d1);
    p.delta("resp_1", "item_a", &tone_b64(60));
    assert_eq!(p.twilio_events(), ["media", "mark", "media", "mark"]);
    assert_eq!(
        p.twilio.got[0],
        serde_json::json!({"event":"media","streamSid":STREAM_SID,"media":{"payload":d1}})
    );
    assert_eq!(p.marks(), ["r1-c1-100", "r1-c2-160"]);
    p.response_created("resp_2");
    p.delta("resp_2", "item_b", &tone_b64(20));
    assert_eq!(p.marks().last().unwrap(), "r2-c1-20", "a new response restarts the audio clock");
}

#[test]
fn long_deltas_are_split_at_240_ms_without_decoding_with_a_mark_each() {
    let mut p = Pair::live(config());
    p.response_created("resp_1");
    let audio = samples::ulaw_tone(4800); // 600 ms
    let b64 = samples::base64(&audio);
    p.delta("resp_1", "item_a", &b64);
    let payloads: Vec<&str> =
        p.twilio.of("media").iter().map(|m| m["media"]["payload"].as_str().unwrap()).collect();
    assert_eq!(payloads.iter().map(|s| s.len()).collect::<Vec<_>>(), [2560, 2560, 1280]);
    assert_eq!(payloads.concat(), b64, "pieces of the original base64");
    assert_eq!(p.marks(), ["r1-c1-240", "r1-c2-480", "r1-c3-600"]);
}

#[test]
fn a_burst_of_agent_audio_waits_for_send_room_instead_of_being_dropped() {
    let mut p = Pair::live(CallConfig { twilio_send_capacity: 16 * 1024, ..config() });
    p.response_created("resp_1");
    let audio: Vec<Vec<u8>> = (0..10).map(|i| samples::ulaw_tone(4000 + i)).collect();
    let burst: Vec<u8> = audio
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            p.openai_frame(
                &samples::openai_delta(i as u64, &samples::base64(a)).replace("resp_CAbc123", "resp_1"),
            )
        })
        .collect();
    assert_eq!(p.openai_bytes_once(&burst), Handled::SendBufferFull, "10 × 500 ms do not fit 16 KiB");
    p.drive(); // the shell writes to Twilio and calls again
    let played: Vec<u8> =
        p.twilio.of("media").iter().flat_map(|m| decode(m["media"]["payload"].as_str().unwrap())).collect();
    assert_eq!(played, audio.concat(), "all of it, in order");
    assert_eq!(p.call.stats().send_overflows, 0);
}

#[test]
fn dtmf_is_told_to_the_model_as_user_text() {
    let mut p = Pair::live(config());
    p.response_created("resp_g");
    p.response_done("resp_g", "completed");
    p.openai.clear();
    p.twilio_send(&format!(
        r#"{{"event":"dtmf","streamSid":"{STREAM_SID}","sequenceNumber":"5","dtmf":{{"track":"inbound_track","digit":"5"}}}}"#
    ));
    assert_eq!(p.openai_types(), ["conversation.item.create", "response.create"]);
    let item = &p.openai.got[0]["item"];
    assert_eq!((&item["type"], &item["role"]), (&"message".into(), &"user".into()));
    assert_eq!(item["content"][0]["text"], "L'appelant a tapé 5");
}

#[test]
fn transcripts_and_usage_are_reported_for_the_control_plane() {
    let mut p = Pair::live(config());
    p.advance(std::time::Duration::from_millis(1500));
    p.openai_send(r#"{"type":"conversation.item.input_audio_transcription.completed","event_id":"e","item_id":"item_u","content_index":0,"transcript":"Oui, c'est moi."}"#);
    p.openai_send(r#"{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"resp_1","item_id":"item_a","output_index":0,"content_index":0,"transcript":"Bonjour Zoé !"}"#);
    p.response_done("resp_1", "completed");
    let reports: Vec<&CallEvent> =
        p.events.iter().filter_map(|e| if let Event::Report(r) = e { Some(r) } else { None }).collect();
    assert_eq!(
        reports,
        [
            &CallEvent::Transcript { speaker: Speaker::Caller, text: "Oui, c'est moi.".into(), at_ms: 1500 },
            &CallEvent::Transcript { speaker: Speaker::Agent, text: "Bonjour Zoé !".into(), at_ms: 1500 },
            &CallEvent::Usage {
                response_id: "resp_1".into(),
                input_tokens: 20,
                output_tokens: 10,
                details: None
            },
        ]
    );
}

#[test]
fn stop_closes_the_call_as_hung_up_by_the_caller() {
    let mut p = Pair::live(config());
    p.advance(std::time::Duration::from_secs(2));
    p.caller_audio(&silence_b64(20));
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::CallerHungUp));
    assert!(p.events.contains(&Event::Report(CallEvent::Ended {
        side: Side::Twilio,
        reason: "caller_hung_up".into(),
        duration_ms: 2000
    })));
    assert_eq!(p.events.last(), Some(&Event::Closed { reason: CloseReason::CallerHungUp }));
    assert_eq!(p.twilio.control, [call_support::Control::Close(Some(1000))]);
    assert_eq!(p.openai.control, [call_support::Control::Close(Some(1000))]);
    assert_eq!(p.call.poll_timeout(), None, "no timer after the end");
    p.openai.clear();
    p.caller_audio(&tone_b64(20));
    assert!(p.openai.got.is_empty(), "nothing forwarded after the end");
}
