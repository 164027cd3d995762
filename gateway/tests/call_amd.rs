//! The greeting held while answering-machine detection runs (Realtime; GPT-Live's side is in
//! `call_live.rs`): asked once, released on a person, on no detection or at the gateway's own
//! limit, never on a machine, whose audio is not even sent. Each test states one rule.

mod call_support;

use std::time::Duration;

use call_support::{Pair, config, silence_b64, tone_b64};
use callway_gateway::core::call::{AmdOutcome, CallConfig, CallState, CloseReason, Event, TurnTaking};

const HOLD: Duration = Duration::from_secs(4);

fn with_amd() -> CallConfig {
    CallConfig { amd_hold: HOLD, ..config() }
}

/// `create_response` of each `session.update` sent so far (None: no turn detection).
fn create_response(p: &Pair) -> Vec<Option<bool>> {
    p.openai
        .of("session.update")
        .iter()
        .map(|s| s["session"]["audio"]["input"]["turn_detection"]["create_response"].as_bool())
        .collect()
}

#[test]
fn the_control_plane_is_asked_once_and_only_when_a_hold_is_configured() {
    let p = Pair::new(with_amd());
    let asks = p.events_where(|e| matches!(e, Event::AskAmd { .. }));
    assert_eq!(asks, [&Event::AskAmd { wait_ms: 4000 }], "one long poll, as long as the hold");
    assert_eq!(p.events[0], Event::OpenUpstream, "OpenAI is still opened first (pre-warm)");

    let p = Pair::new(config());
    assert!(p.events_where(|e| matches!(e, Event::AskAmd { .. })).is_empty(), "AMD_HOLD_MS=0: never asked");
}

#[test]
fn while_held_the_session_answers_nothing_and_a_person_releases_the_greeting() {
    let mut p = Pair::new(with_amd());
    assert_eq!(create_response(&p), [Some(false)], "turn detection must not create responses yet");
    p.twilio_start();
    p.caller_audio(&tone_b64(20));
    let types = p.openai_types();
    assert_eq!(types, ["session.update", "input_audio_buffer.append"], "« Allô ? » relayed, no greeting");
    assert_eq!(*p.call.state(), CallState::Live);

    p.advance(Duration::from_millis(2500));
    p.call.amd_result(AmdOutcome::Person, p.now);
    p.drive();
    let types = p.openai_types();
    assert_eq!(types[types.len() - 2..], ["session.update", "response.create"], "{types:?}");
    assert_eq!(create_response(&p), [Some(false), Some(true)], "responses allowed again, then the greeting");

    // A late repeat changes nothing.
    p.call.amd_result(AmdOutcome::Machine, p.now);
    p.drive();
    p.caller_audio(&tone_b64(20));
    assert_eq!(p.openai_types().last().map(String::as_str), Some("input_audio_buffer.append"));
}

#[test]
fn a_call_without_detection_greets_as_soon_as_the_stream_starts() {
    let mut p = Pair::new(with_amd());
    p.call.amd_result(AmdOutcome::NotRunning, p.now);
    p.drive();
    p.twilio_start();
    let types = p.openai_types();
    assert_eq!(types.last().map(String::as_str), Some("response.create"), "{types:?}");
    assert_eq!(p.openai.of("response.create").len(), 1);
}

#[test]
fn a_machine_keeps_the_agent_silent_and_its_greeting_is_not_sent_to_openai() {
    let mut p = Pair::new(with_amd());
    p.twilio_start();
    p.caller_audio(&tone_b64(20));
    p.call.amd_result(AmdOutcome::Machine, p.now);
    p.drive();
    let before = p.openai.got.len();
    for _ in 0..10 {
        p.caller_audio(&tone_b64(20));
    }
    p.advance(HOLD * 2);
    assert!(p.openai.of("response.create").is_empty(), "never greets, even past the hold limit");
    assert_eq!(p.openai.got.len(), before, "the voicemail's greeting is not relayed (no tokens paid for it)");
    assert_eq!(p.call.stats().media_not_sent, 10);
    // The control plane has Twilio play the voicemail message: the stream stops.
    p.twilio_stop();
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::CallerHungUp));
}

#[test]
fn without_an_answer_the_gateway_greets_at_its_own_limit() {
    let mut p = Pair::new(with_amd());
    p.twilio_start();
    p.advance(HOLD - Duration::from_millis(10));
    assert!(p.openai.of("response.create").is_empty());
    p.advance(Duration::from_millis(20));
    assert_eq!(p.openai.of("response.create").len(), 1, "a person never waits longer than the hold");
    // The control plane's answer comes after: nothing more happens here (a machine result
    // ends the call through Twilio).
    p.call.amd_result(AmdOutcome::Undecided, p.now);
    p.drive();
    assert_eq!(p.openai.of("response.create").len(), 1);
    assert_eq!(create_response(&p), [Some(false), Some(true)]);
}

#[test]
fn without_server_vad_the_gateway_commits_but_does_not_ask_for_an_answer_while_held() {
    let mut p = Pair::new(CallConfig { turn_detection: TurnTaking::Off, ..with_amd() });
    p.twilio_start();
    for _ in 0..5 {
        p.caller_audio(&tone_b64(20));
    }
    for _ in 0..5 {
        p.caller_audio(&silence_b64(20));
    }
    assert_eq!(p.openai.of("input_audio_buffer.commit").len(), 1, "« Allô ? » is a turn of the conversation");
    assert!(p.openai.of("response.create").is_empty(), "but the agent does not answer it yet");
    p.call.amd_result(AmdOutcome::Person, p.now);
    p.drive();
    assert_eq!(p.openai.of("response.create").len(), 1);
    assert_eq!(p.openai.of("session.update").len(), 1, "no turn detection to switch back on");
}

#[test]
fn a_new_session_while_held_is_configured_held_too() {
    let mut p = Pair::new(with_amd());
    p.twilio_start();
    p.drop_openai();
    p.advance(Duration::from_millis(10));
    assert_eq!(create_response(&p), [Some(false), Some(false)], "{:?}", p.openai_types());
    assert!(p.openai.of("response.create").is_empty());
    p.call.amd_result(AmdOutcome::Person, p.now);
    p.drive();
    assert_eq!(p.openai.of("response.create").len(), 1);
}
