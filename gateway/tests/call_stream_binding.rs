//! A call belongs to the stream of its Twilio `start` (`streamSid`, `callSid`, `accountSid`):
//! events naming another stream are ignored, counted and reported once; nothing but
//! `connected` counts before `start`. A foreign `stop` must not hang up this call.

mod call_support;

use call_support::{CALL_SID, Pair, config, tone_b64};
use callway_gateway::core::call::{CallState, CloseReason, Event};
use callway_gateway::samples::{self, STREAM_SID};

const OTHER_STREAM: &str = "MZ00000000000000000000000000000bad";

fn foreign_media() -> String {
    samples::twilio_media(7, 7, &tone_b64(20)).replace(STREAM_SID, OTHER_STREAM)
}

#[test]
fn a_stop_for_another_stream_does_not_end_the_call() {
    let mut p = Pair::live(config());
    p.twilio_send(&format!(
        r#"{{"event":"stop","sequenceNumber":"9","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"CA0000000000000000000000000000000b"}},"streamSid":"{OTHER_STREAM}"}}"#
    ));
    assert_eq!(*p.call.state(), CallState::Live);
    // Same stream, another call or another account: not ours either.
    p.twilio_send(&format!(
        r#"{{"event":"stop","sequenceNumber":"10","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"CA0000000000000000000000000000000b"}},"streamSid":"{STREAM_SID}"}}"#
    ));
    p.twilio_send(&format!(
        r#"{{"event":"stop","sequenceNumber":"11","stop":{{"accountSid":"AC11111111111111111111111111111111","callSid":"{CALL_SID}"}},"streamSid":"{STREAM_SID}"}}"#
    ));
    assert_eq!(*p.call.state(), CallState::Live);
    assert_eq!(p.call.stats().twilio_foreign_stream, 3);
    p.twilio_stop();
    assert!(matches!(p.call.state(), CallState::Closed(CloseReason::CallerHungUp)), "{:?}", p.call.state());
}

#[test]
fn media_marks_and_digits_of_another_stream_are_ignored_and_reported_once() {
    let mut p = Pair::live(config());
    p.openai.clear();
    p.twilio_send(&foreign_media());
    p.twilio_send(&foreign_media());
    p.twilio_send(&samples::twilio_mark(8, "r1-c1-100").replace(STREAM_SID, OTHER_STREAM));
    p.twilio_send(&format!(
        r#"{{"event":"dtmf","streamSid":"{OTHER_STREAM}","sequenceNumber":"9","dtmf":{{"track":"inbound_track","digit":"5"}}}}"#
    ));
    assert!(p.openai.got.is_empty(), "nothing of another stream reaches OpenAI: {:?}", p.openai_types());
    assert_eq!(p.call.stats().twilio_foreign_stream, 4);
    assert_eq!(p.call.stats().media_forwarded, 0);
    let reported = p.events_where(|e| matches!(e, Event::ForeignStream { .. }));
    assert_eq!(reported, [&Event::ForeignStream { stream_sid: OTHER_STREAM.into() }], "logged once per call");
    p.caller_audio(&tone_b64(20));
    assert_eq!(p.openai_types(), ["input_audio_buffer.append"], "this stream's audio still flows");
}

#[test]
fn before_start_only_connected_counts() {
    let mut p = Pair::new(config());
    p.openai.clear();
    p.twilio_send(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#);
    p.twilio_send(&samples::twilio_media(2, 1, &tone_b64(20)));
    p.twilio_send(&samples::twilio_mark(3, "r1-c1-100"));
    p.twilio_stop();
    assert_eq!(p.call.stats().twilio_before_start, 3);
    assert_eq!(p.call.stats().media_forwarded + p.call.stats().media_held, 0);
    assert!(!matches!(p.call.state(), CallState::Closed(_)), "a stop before start is not this call's stop");
    p.twilio_send(&samples::twilio_start(CALL_SID, "tok"));
    assert_eq!(p.call.stream_sid(), Some(STREAM_SID));
    p.twilio_stop();
    assert!(matches!(p.call.state(), CallState::Closed(_)));
}

#[test]
fn a_second_start_for_another_stream_does_not_rebind_the_call() {
    let mut p = Pair::live(config());
    p.twilio_send(
        &samples::twilio_start("CA0000000000000000000000000000000b", "tok").replace(STREAM_SID, OTHER_STREAM),
    );
    assert_eq!(p.call.stream_sid(), Some(STREAM_SID));
    assert_eq!(p.call.call_sid(), Some(CALL_SID));
    assert_eq!(p.call.stats().twilio_foreign_stream, 1);
}
