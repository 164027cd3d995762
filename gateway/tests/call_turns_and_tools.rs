//! Turn taking without server VAD (the gateway's commit policy) and the tool round trip: the
//! shell runs the tool, the model hears the result, a slow or failed tool is never silence,
//! `end_call` hangs up after the goodbye has played.

mod call_support;

use std::time::Duration;

use call_support::{Pair, config, silence_b64, tone_b64};
use callway_gateway::core::call::{CallConfig, CallEvent, CallState, CloseReason, Event, Side, TurnTaking};

fn no_vad() -> CallConfig {
    CallConfig { turn_detection: TurnTaking::Off, ..config() }
}

/// A live call whose greeting response is over.
fn idle(cfg: CallConfig) -> Pair {
    let mut p = Pair::live(cfg);
    p.response_created("resp_g");
    p.response_done("resp_g", "completed");
    p.openai.clear();
    p.events.clear();
    p
}

#[test]
fn without_server_vad_the_session_has_no_turn_detection() {
    let p = Pair::new(no_vad());
    assert!(p.openai.got[0]["session"]["audio"]["input"]["turn_detection"].is_null());
}

#[test]
fn without_server_vad_the_gateway_commits_on_silence_then_asks_for_a_response() {
    let mut p = idle(no_vad());
    for _ in 0..3 {
        p.caller_audio(&tone_b64(20));
    }
    for _ in 0..2 {
        p.caller_audio(&silence_b64(20));
    }
    assert!(p.openai.of("input_audio_buffer.commit").is_empty(), "100 ms appended: under the 120 ms minimum");
    p.caller_audio(&silence_b64(20));
    let types = p.openai_types();
    assert_eq!(
        types[types.len() - 3..],
        ["input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]
    );
    assert_eq!(p.call.stats().commits, 1);
}

#[test]
fn without_server_vad_a_minimum_under_100_ms_still_never_commits_under_100_ms() {
    let mut p = idle(CallConfig { min_commit_ms: 20, ..no_vad() });
    p.caller_audio(&tone_b64(20));
    for _ in 0..3 {
        p.caller_audio(&silence_b64(20));
    }
    assert!(p.openai.of("input_audio_buffer.commit").is_empty(), "80 ms");
    p.caller_audio(&silence_b64(20));
    assert_eq!(p.openai.of("input_audio_buffer.commit").len(), 1, "at 100 ms");
}

#[test]
fn without_server_vad_long_speech_is_committed_at_the_maximum() {
    let mut p = idle(no_vad());
    for _ in 0..40 {
        p.caller_audio(&tone_b64(20));
    }
    assert_eq!(p.openai.of("input_audio_buffer.commit").len(), 1, "at 800 ms");
    assert!(p.openai.of("response.create").is_empty(), "the caller is still speaking");
}

#[test]
fn without_server_vad_a_response_asked_for_during_another_waits_for_it() {
    let mut p = Pair::live(no_vad()); // the greeting's response.create is in flight
    p.openai.clear();
    p.caller_audio(&tone_b64(60));
    p.caller_audio(&silence_b64(60));
    assert_eq!(p.openai.of("input_audio_buffer.commit").len(), 1);
    assert!(p.openai.of("response.create").is_empty(), "one response at a time");
    p.response_created("resp_g");
    p.response_done("resp_g", "completed");
    assert_eq!(p.openai.of("response.create").len(), 1);
}

#[test]
fn a_refused_response_create_does_not_block_later_turns() {
    let mut p = idle(no_vad());
    p.caller_audio(&tone_b64(60));
    p.caller_audio(&silence_b64(60));
    assert_eq!(p.openai.of("response.create").len(), 1);
    p.openai_send(r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"invalid_value","message":"bad","param":null,"event_id":null}}"#);
    p.caller_audio(&tone_b64(60));
    p.caller_audio(&silence_b64(60));
    assert_eq!(p.openai.of("response.create").len(), 2, "the next turn is answered");
}

#[test]
fn a_tool_call_goes_to_the_shell_and_its_answer_back_to_the_model() {
    let mut p = idle(config());
    p.response_created("resp_t");
    p.function_call("call_1", "save_lead", r#"{"first_name":"Zoé","last_name":null,"phone":null}"#);
    assert_eq!(
        p.events,
        [Event::ToolCall {
            call_id: "call_1".into(),
            name: "save_lead".into(),
            arguments: r#"{"first_name":"Zoé","last_name":null,"phone":null}"#.into()
        }]
    );
    let now = p.now;
    p.call.tool_result("call_1", true, r#"{"saved":true}"#, now);
    p.drive();
    assert_eq!(
        p.openai.got,
        [
            serde_json::json!({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"saved\":true}"}})
        ],
        "response.create waits: the response that called the tool is still active"
    );
    p.response_done("resp_t", "completed");
    assert_eq!(p.openai_types().last().unwrap(), "response.create");
}

#[test]
fn a_slow_tool_gets_a_spoken_fallback_not_silence() {
    let mut p = idle(config());
    p.response_created("resp_t");
    p.function_call("call_1", "save_lead", "{}");
    p.response_done("resp_t", "completed");
    p.openai.clear();
    p.advance(Duration::from_millis(3999));
    assert!(p.openai.of("response.create").is_empty());
    p.advance(Duration::from_millis(1));
    let fallback = p.openai.of("response.create");
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["response"]["instructions"], config().tool_slow_instructions);
    assert_eq!(p.call.stats().tool_fallbacks, 1);
    // The answer comes while the fallback is being spoken: the model hears it, then speaks.
    p.response_created("resp_f");
    let now = p.now;
    p.call.tool_result("call_1", true, r#"{"saved":true}"#, now);
    p.drive();
    assert_eq!(p.openai.of("conversation.item.create").len(), 1);
    assert_eq!(p.openai.of("response.create").len(), 1);
    p.response_done("resp_f", "completed");
    assert_eq!(p.openai.of("response.create").len(), 2);
    p.advance(Duration::from_secs(5));
    assert_eq!(p.openai.of("response.create").len(), 2, "one fallback per tool call");
}

#[test]
fn a_failed_tool_is_spoken_about() {
    let mut p = idle(config());
    p.function_call("call_1", "save_lead", "{}");
    let now = p.now;
    p.call.tool_result("call_1", false, r#"{"error":"phone_invalid"}"#, now);
    p.drive();
    assert_eq!(p.openai_types(), ["conversation.item.create", "response.create"]);
    assert_eq!(p.openai.got[1]["response"]["instructions"], config().tool_failed_instructions);
}

#[test]
fn a_tool_we_did_not_offer_is_answered_by_the_gateway() {
    let mut p = idle(config());
    p.function_call("call_x", "delete_everything", "{}");
    assert!(p.events.is_empty(), "not forwarded to the shell");
    assert_eq!(p.openai_types(), ["conversation.item.create", "response.create"]);
    assert_eq!(p.openai.got[0]["item"]["output"], r#"{"error":"unknown_tool"}"#);
}

#[test]
fn end_call_hangs_up_after_the_goodbye_has_played() {
    let mut p = idle(config());
    p.response_created("resp_bye");
    p.delta("resp_bye", "item_bye", &tone_b64(200));
    p.function_call("call_end", "end_call", r#"{"reason":"completed"}"#);
    assert_eq!(*p.call.state(), CallState::Draining);
    p.response_done("resp_bye", "completed");
    assert!(!p.events.iter().any(|e| matches!(e, Event::HangUp { .. })), "the goodbye is still playing");
    p.echo_mark("r1-c1-200");
    assert_eq!(
        p.events.iter().filter(|e| matches!(e, Event::HangUp { .. })).collect::<Vec<_>>(),
        [&Event::HangUp {
            tool_call_id: Some("call_end".into()),
            arguments: Some(r#"{"reason":"completed"}"#.into())
        }]
    );
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::AgentEndedCall));
    assert!(
        p.events
            .iter()
            .any(|e| matches!(e, Event::Report(CallEvent::Ended { side: Side::ControlPlane, .. })))
    );
}

#[test]
fn end_call_hangs_up_anyway_when_the_goodbye_never_finishes_playing() {
    let mut p = idle(CallConfig { media_timeout: Duration::from_secs(60), ..config() });
    p.response_created("resp_bye");
    p.delta("resp_bye", "item_bye", &tone_b64(200));
    p.function_call("call_end", "end_call", r#"{"reason":"completed"}"#);
    p.response_done("resp_bye", "completed");
    p.advance(Duration::from_secs(10));
    assert!(p.events.iter().any(|e| matches!(e, Event::HangUp { .. })));
    assert_eq!(*p.call.state(), CallState::Draining);
    p.advance(Duration::from_secs(5));
    assert_eq!(
        *p.call.state(),
        CallState::Closed(CloseReason::AgentEndedCall),
        "no stop came: closed ourselves"
    );
    assert!(p.twilio.control.contains(&call_support::Control::Close(Some(1000))));
}

#[test]
fn a_failed_hang_up_closes_the_stream_itself() {
    let mut p = idle(config());
    p.function_call("call_end", "end_call", r#"{"reason":"completed"}"#);
    assert!(p.events.iter().any(|e| matches!(e, Event::HangUp { .. })), "nothing to play: at once");
    let now = p.now;
    p.call.tool_result("call_end", false, r#"{"error":"call_not_connected"}"#, now);
    p.drive();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::AgentEndedCall));
}
