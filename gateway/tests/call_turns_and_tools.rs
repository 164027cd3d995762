//! Turn taking without server VAD (the gateway's commit policy) and the tool round trip: the
//! shell runs the tool, the model hears the result, a slow or failed tool is never silence,
//! `end_call` hangs up after the goodbye has played.

mod call_support;

use std::time::Duration;

use call_support::{Answer, Pair, config, context, silence_b64, tone_b64};
use callway_gateway::core::call::{
    CallConfig, CallContext, CallEvent, CallState, CloseReason, Event, Side, TurnTaking,
};

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

/// A live call, past its greeting, whose context allows the warm transfer.
fn idle_with_transfer() -> Pair {
    let mut p =
        Pair::with_context(config(), CallContext { transfer: true, ..context() }, Answer::Accept, true);
    p.twilio_start();
    p.response_created("resp_g");
    p.response_done("resp_g", "completed");
    p.openai.clear();
    p.twilio.clear();
    p.events.clear();
    p
}

const TRANSFER_ARGS: &str =
    r#"{"reason":"asked_for_human","summary":"Veut parler du tarif pro à un conseiller."}"#;

fn transfer_requests(p: &Pair) -> Vec<&Event> {
    p.events_where(|e| matches!(e, Event::ToolCall { name, .. } if name == "transfer_to_human"))
}

#[test]
fn the_transfer_tool_is_offered_only_when_the_context_allows_it() {
    let tools = |p: &Pair| -> Vec<String> {
        p.openai.of("session.update")[0]["session"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(tools(&Pair::new(config())), ["save_lead", "end_call"]);
    let p = Pair::with_context(config(), CallContext { transfer: true, ..context() }, Answer::Accept, true);
    assert_eq!(tools(&p), ["save_lead", "end_call", "transfer_to_human"]);

    // Not offered, yet called: an error for the model, nothing for the control plane.
    let mut p = idle(config());
    p.function_call("call_t", "transfer_to_human", TRANSFER_ARGS);
    assert!(transfer_requests(&p).is_empty());
    let out = p.openai.of("conversation.item.create");
    assert_eq!(out[0]["item"]["output"], r#"{"error":"unknown_tool"}"#);
    assert_eq!(*p.call.state(), CallState::Live);
}

#[test]
fn a_transfer_runs_once_the_announcement_has_played_and_ends_with_twilios_stop() {
    let mut p = idle_with_transfer();
    p.response_created("resp_t");
    p.delta("resp_t", "item_t", &tone_b64(200));
    p.function_call("call_t", "transfer_to_human", TRANSFER_ARGS);
    p.response_done("resp_t", "completed");
    assert_eq!(*p.call.state(), CallState::Draining);
    assert!(transfer_requests(&p).is_empty(), "the announcement is still playing");
    p.echo_mark("r1-c1-200");
    assert_eq!(
        transfer_requests(&p),
        [&Event::ToolCall {
            call_id: "call_t".into(),
            name: "transfer_to_human".into(),
            arguments: TRANSFER_ARGS.into()
        }]
    );
    assert!(!p.events.iter().any(|e| matches!(e, Event::HangUp { .. })), "moved, not hung up");
    p.call.tool_result("call_t", true, r#"{"ok":true}"#, p.now);
    p.drive();
    // Twilio's <Dial> ends the media stream.
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::Transferred));
    assert_eq!(p.call.stats().transfers, 1);
    assert!(p.events.iter().any(|e| matches!(
        e,
        Event::Report(CallEvent::Ended { side: Side::ControlPlane, reason, .. }) if reason == "transferred"
    )));
}

#[test]
fn a_refused_transfer_resumes_the_conversation_and_the_model_is_told() {
    let mut p = idle_with_transfer();
    p.response_created("resp_t");
    p.function_call("call_t", "transfer_to_human", TRANSFER_ARGS);
    p.response_done("resp_t", "completed");
    assert_eq!(transfer_requests(&p).len(), 1, "nothing to play: run at once");
    let refusal = r#"{"ok":false,"error":"twilio_refused","message":"the transfer could not be made; tell the caller"}"#;
    p.call.tool_result("call_t", false, refusal, p.now);
    p.drive();
    assert_eq!(*p.call.state(), CallState::Live, "the caller is still there");
    let out = p.openai.of("conversation.item.create");
    assert_eq!(
        (out[0]["item"]["call_id"].as_str(), out[0]["item"]["output"].as_str()),
        (Some("call_t"), Some(refusal))
    );
    assert_eq!(p.openai.of("response.create").len(), 1, "the model says so");
    assert_eq!(p.call.stats().transfers_refused, 1);
    // The call goes on as any other: a hang-up is the caller's.
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::CallerHungUp));
}

#[test]
fn twilios_stop_before_the_tools_answer_is_the_transfer_taking_the_call() {
    // The control plane's update ends the stream before its HTTP answer reaches the gateway.
    let mut p = idle_with_transfer();
    p.response_created("resp_t");
    p.function_call("call_t", "transfer_to_human", TRANSFER_ARGS);
    p.response_done("resp_t", "completed");
    assert_eq!(transfer_requests(&p).len(), 1);
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::Transferred));
}

#[test]
fn a_caller_hanging_up_during_the_announcement_is_not_a_transfer() {
    let mut p = idle_with_transfer();
    p.response_created("resp_t");
    p.delta("resp_t", "item_t", &tone_b64(200));
    p.function_call("call_t", "transfer_to_human", TRANSFER_ARGS);
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::CallerHungUp));
    assert!(transfer_requests(&p).is_empty(), "nobody to transfer");
}
