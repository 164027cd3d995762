//! Timeouts, the OpenAI connection's losses and reconnects, and the WebSocket control frames
//! on both sides: every way a call can end names the side at fault.

mod call_support;

use std::time::Duration;

use call_support::{Answer, Control, Pair, config, tone_b64};
use callway_gateway::core::call::{CallConfig, CallEvent, CallState, CloseReason, Event, Side};
use callway_gateway::core::ws::{Control as Ctl, OpCode};
use callway_gateway::samples;

fn closed(p: &Pair) -> Option<CloseReason> {
    match p.call.state() {
        CallState::Closed(r) => Some(*r),
        _ => None,
    }
}

fn ended(p: &Pair) -> Option<(Side, String)> {
    p.events.iter().find_map(|e| match e {
        Event::Report(CallEvent::Ended { side, reason, .. }) => Some((*side, reason.clone())),
        _ => None,
    })
}

fn upgrades_asked(p: &Pair) -> usize {
    p.events.iter().filter(|e| **e == Event::OpenUpstream).count()
}

/// Caller audio every second for `secs` seconds (so the media timeout stays quiet).
fn talk_for(p: &mut Pair, secs: u64) {
    for _ in 0..secs {
        p.advance(Duration::from_secs(1));
        p.caller_audio(&tone_b64(20));
    }
}

#[test]
fn no_start_within_the_timeout_closes_the_call_for_twilio() {
    let mut p = Pair::new(config());
    p.advance(Duration::from_millis(4999));
    assert_eq!(closed(&p), None);
    p.advance(Duration::from_millis(1));
    assert_eq!(closed(&p), Some(CloseReason::NoStart));
    assert_eq!(ended(&p), Some((Side::Twilio, "no_start".into())));
    assert_eq!(p.twilio.control, [Control::Close(Some(1000))]);
    assert_eq!(
        p.openai.control.last(),
        Some(&Control::Close(Some(1000))),
        "the pre-warmed session closed at once"
    );
    assert_eq!(p.openai_types(), ["session.update"], "no response was ever asked for: nothing billed");
}

#[test]
fn a_stream_that_never_starts_costs_no_response_even_while_the_caller_line_sends_media() {
    let mut p = Pair::new(CallConfig { start_timeout: Duration::from_secs(2), ..config() });
    for _ in 0..50 {
        p.caller_audio(&tone_b64(20));
        p.advance(Duration::from_millis(20));
    }
    assert_eq!(p.openai_types(), ["session.update"], "no greeting, no appends before start");
    p.advance(Duration::from_secs(2));
    assert_eq!(closed(&p), Some(CloseReason::NoStart));
}

#[test]
fn no_caller_media_for_the_timeout_closes_the_call() {
    let mut p = Pair::live(CallConfig { openai_silence_timeout: Duration::from_secs(60), ..config() });
    p.advance(Duration::from_secs(5));
    p.caller_audio(&tone_b64(20));
    p.advance(Duration::from_millis(9999));
    assert_eq!(closed(&p), None, "media 10 s ago resets the clock");
    p.advance(Duration::from_millis(1));
    assert_eq!(closed(&p), Some(CloseReason::TwilioSilent));
    assert_eq!(ended(&p), Some((Side::Twilio, "no_media".into())));
}

#[test]
fn max_call_length_hangs_up_then_closes_for_the_gateway() {
    let cfg = CallConfig {
        max_call: Duration::from_secs(30),
        openai_silence_timeout: Duration::from_secs(600),
        ..config()
    };
    let mut p = Pair::live(cfg);
    talk_for(&mut p, 30);
    assert_eq!(
        p.events_where(|e| matches!(e, Event::HangUp { .. })),
        [&Event::HangUp { tool_call_id: None, arguments: None }]
    );
    assert_eq!(*p.call.state(), CallState::Draining);
    talk_for(&mut p, 5);
    assert_eq!(closed(&p), Some(CloseReason::MaxDuration));
    assert_eq!(ended(&p), Some((Side::Gateway, "max_duration".into())));
}

#[test]
fn openai_silence_is_probed_with_a_ping_then_replaced_by_a_new_session() {
    let mut p = Pair::live(config());
    talk_for(&mut p, 5);
    assert_eq!(p.openai.control, [Control::Ping(b"callway".to_vec())]);
    talk_for(&mut p, 9);
    assert_eq!(upgrades_asked(&p), 0);
    p.openai.clear();
    talk_for(&mut p, 1);
    assert_eq!(upgrades_asked(&p), 1, "15 s without a byte: a new connection");
    assert_eq!(p.upgrades.len(), 2);
    assert_eq!(p.openai_types()[0], "session.update");
    assert_eq!(*p.call.state(), CallState::Live, "the caller stays on the line");
}

#[test]
fn openai_silence_with_no_reconnect_left_ends_the_call_for_openai() {
    let mut p = Pair::live(CallConfig { max_reconnects: 0, ..config() });
    talk_for(&mut p, 15);
    assert_eq!(closed(&p), Some(CloseReason::OpenAiSilent));
    assert_eq!(ended(&p), Some((Side::Openai, "openai_silent".into())));
    assert!(p.openai.control.contains(&Control::Close(Some(1001))), "going away from a silent peer");
}

#[test]
fn a_call_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    send(&Pair::new(config()).call);
}

#[test]
fn a_pong_keeps_openai_alive() {
    let mut p = Pair::live(config());
    talk_for(&mut p, 5);
    p.openai_control(OpCode::Control(Ctl::Pong), b"callway");
    talk_for(&mut p, 12);
    assert_eq!(upgrades_asked(&p), 0);
}

#[test]
fn an_openai_drop_holds_the_caller_and_resumes_with_a_summary() {
    let mut p = Pair::live(config());
    p.response_created("resp_g");
    p.openai_send(r#"{"type":"conversation.item.input_audio_transcription.completed","event_id":"e","item_id":"item_u","content_index":0,"transcript":"Je préfère être rappelée demain."}"#);
    p.openai_send(r#"{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"resp_1","item_id":"item_a","output_index":0,"content_index":0,"transcript":"Très bien, demain matin ?"}"#);
    p.auto_connect = false;
    p.drop_openai();
    assert_eq!(upgrades_asked(&p), 1);
    assert_eq!(*p.call.state(), CallState::Live);
    let held: Vec<Vec<u8>> = (0..3).map(|i| samples::ulaw_tone(160 + i)).collect();
    for c in &held {
        p.caller_audio(&samples::base64(c));
    }
    assert_eq!(p.call.held_ms(), 60);
    p.openai.clear();
    p.connect_openai();
    p.drive();
    let types = p.openai_types();
    assert_eq!(types[0], "session.update");
    assert!(!types.contains(&"response.create".to_owned()), "no second greeting");
    let instructions = p.openai.got[0]["session"]["instructions"].as_str().unwrap();
    assert!(instructions.starts_with(&call_support::context().instructions));
    assert!(instructions.contains(&config().resume_preamble));
    assert!(instructions.contains("- Prospect : Je préfère être rappelée demain."), "{instructions}");
    assert!(instructions.contains("- Agent : Très bien, demain matin ?"), "{instructions}");
    let appended: Vec<u8> = p
        .openai
        .of("input_audio_buffer.append")
        .iter()
        .flat_map(|a| base64_simd::STANDARD.decode_to_vec(a["audio"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(appended, held.concat());
}

#[test]
fn a_drop_before_the_greeting_started_greets_on_the_new_session() {
    let mut p = Pair::live(config());
    p.openai.clear();
    p.drop_openai();
    assert_eq!(p.openai_types(), ["session.update", "response.create"]);
}

#[test]
fn session_expired_opens_a_new_session() {
    let mut p = Pair::live(config());
    p.openai_send(r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}"#);
    assert!(p.events.contains(&Event::OpenAiError {
        code: Some("session_expired".into()),
        message: "Your session hit the maximum duration of 60 minutes.".into()
    }));
    assert_eq!(upgrades_asked(&p), 1);
    assert_eq!(p.upgrades.len(), 2);
    assert_eq!(*p.call.state(), CallState::Live);
}

#[test]
fn an_openai_close_frame_is_answered_then_a_new_session_opens() {
    let mut p = Pair::live(config());
    p.openai_control(OpCode::Control(Ctl::Close), &1001u16.to_be_bytes());
    assert_eq!(p.openai.control, [Control::Close(Some(1001))], "the close is echoed");
    assert!(
        !p.call.peer_closed(callway_gateway::core::call::Peer::OpenAi),
        "a new connection, a new decoder"
    );
    assert_eq!(p.upgrades.len(), 2);
}

#[test]
fn reconnects_are_bounded_then_the_call_ends_for_openai() {
    let mut p = Pair::live(CallConfig { max_reconnects: 1, ..config() });
    p.drop_openai();
    assert_eq!(closed(&p), None);
    p.drop_openai();
    assert_eq!(closed(&p), Some(CloseReason::OpenAiClosed { code: None }));
    assert_eq!(ended(&p), Some((Side::Openai, "openai_closed".into())));
    assert_eq!(p.twilio.control, [Control::Close(Some(1000))]);
}

#[test]
fn an_upgrade_refused_for_a_bad_key_ends_the_call_without_retrying() {
    let p = Pair::with(config(), Answer::Refuse(401), true);
    assert_eq!(closed(&p), Some(CloseReason::OpenAiHandshake { status: 401 }));
    assert_eq!(upgrades_asked(&p), 1);
}

#[test]
fn an_upgrade_refused_for_load_is_retried() {
    let mut p = Pair::with(config(), Answer::Refuse(503), true);
    assert_eq!(upgrades_asked(&p), 2, "the first retry is immediate");
    p.advance(Duration::from_millis(999));
    assert_eq!(upgrades_asked(&p), 2);
    p.advance(Duration::from_millis(1));
    assert_eq!(upgrades_asked(&p), 3, "then 1 s later");
    p.advance(Duration::from_secs(2));
    assert_eq!(upgrades_asked(&p), 4, "then 2 s later");
    assert_eq!(closed(&p), Some(CloseReason::OpenAiHandshake { status: 503 }), "3 retries, all refused");
    assert_eq!(p.upgrades.len(), 4);
}

#[test]
fn an_unanswered_upgrade_times_out_and_is_retried() {
    let mut p =
        Pair::with(CallConfig { media_timeout: Duration::from_secs(60), ..config() }, Answer::Hold, true);
    p.twilio_start();
    p.advance(Duration::from_millis(14_999));
    assert_eq!(upgrades_asked(&p), 1);
    p.advance(Duration::from_millis(1));
    assert_eq!(upgrades_asked(&p), 2);
    p.answer = Answer::Accept;
    p.drive();
    assert!(p.call.upstream_ready());
}

#[test]
fn pings_are_answered_on_both_sides() {
    let mut p = Pair::live(config());
    p.twilio_control(OpCode::Control(Ctl::Ping), b"t-1");
    p.openai_control(OpCode::Control(Ctl::Ping), b"o-1");
    assert_eq!(p.twilio.control, [Control::Pong(b"t-1".to_vec())]);
    assert_eq!(p.openai.control, [Control::Pong(b"o-1".to_vec())]);
}

#[test]
fn a_twilio_close_is_echoed_and_ends_the_call() {
    let mut p = Pair::live(config());
    p.twilio_control(OpCode::Control(Ctl::Close), &1000u16.to_be_bytes());
    assert_eq!(p.twilio.control, [Control::Close(Some(1000))]);
    assert!(p.call.peer_closed(callway_gateway::core::call::Peer::Twilio));
    assert_eq!(closed(&p), Some(CloseReason::TwilioClosed { code: Some(1000) }));
    assert_eq!(p.openai.control, [Control::Close(Some(1000))]);
}

#[test]
fn an_unmasked_twilio_frame_closes_with_a_protocol_error() {
    let mut p = Pair::live(config());
    p.twilio_bytes(&samples::server_text_frame(&samples::twilio_media(2, 1, &tone_b64(20))));
    assert_eq!(p.twilio.control, [Control::Close(Some(1002))]);
    assert_eq!(closed(&p), Some(CloseReason::TwilioProtocol { code: 1002 }));
    assert_eq!(ended(&p), Some((Side::Twilio, "twilio_protocol_error".into())));
}

#[test]
fn a_binary_twilio_message_closes_with_unsupported_data() {
    let mut p = Pair::live(config());
    p.twilio_control(OpCode::Data(callway_gateway::core::ws::Data::Binary), b"\x00\x01");
    assert_eq!(p.twilio.control, [Control::Close(Some(1003))]);
}

#[test]
fn a_masked_openai_frame_closes_that_connection_with_a_protocol_error_and_reconnects() {
    let mut p = Pair::live(config());
    p.openai_bytes(&samples::client_text_frame(r#"{"type":"session.updated"}"#));
    assert_eq!(p.openai.control, [Control::Close(Some(1002))]);
    assert_eq!(upgrades_asked(&p), 1);
    assert_eq!(closed(&p), None);
}

#[test]
fn shutdown_closes_both_sides_with_going_away() {
    let mut p = Pair::live(config());
    let now = p.now;
    p.call.shutdown(now);
    p.drive();
    assert_eq!(p.twilio.control, [Control::Close(Some(1001))]);
    assert_eq!(p.openai.control, [Control::Close(Some(1001))]);
    assert_eq!(ended(&p), Some((Side::Gateway, "shutdown".into())));
}

#[test]
fn garbage_from_either_side_is_counted_not_fatal() {
    let mut p = Pair::live(config());
    p.twilio_send(r#"{"event":"nonsense"}"#);
    p.openai_send(r#"{"type":"response.done"}"#);
    assert_eq!((p.call.stats().twilio_bad_messages, p.call.stats().openai_bad_messages), (1, 1));
    assert_eq!(*p.call.state(), CallState::Live);
}
