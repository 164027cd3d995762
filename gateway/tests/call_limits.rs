//! The message limits, exactly as documented (`core::ws::Limits`): a Twilio frame of 64 KiB is
//! taken, one byte more closes the stream with 1009; an OpenAI message of 1 MiB is taken, one
//! byte more closes that connection with 1009 (and the call reconnects). The shell's receive
//! buffers grow to these limits (`RecvBuf::fit`), so no smaller cap hides behind them.

mod call_support;

use call_support::{Control, Pair, config};
use callway_gateway::core::call::{CallState, CloseReason};
use callway_gateway::core::ws::Limits;

/// A Twilio text message of exactly `len` bytes (valid JSON; an event Twilio does not send,
/// padded).
fn twilio_message(len: usize) -> String {
    let head = r#"{"event":"unknown_padding","pad":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

/// An OpenAI server event of exactly `len` bytes (a transcript delta, padded).
fn openai_message(len: usize) -> String {
    let head = r#"{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[test]
fn a_twilio_frame_of_64_kib_is_taken_one_byte_more_is_refused_with_1009() {
    assert_eq!(Limits::TWILIO.max_frame, 64 * 1024);
    let mut p = Pair::live(config());
    p.twilio_send(&twilio_message(64 * 1024));
    assert_eq!(*p.call.state(), CallState::Live);
    assert_eq!(p.call.stats().twilio_bad_messages, 1, "read whole, then refused as an unknown event");
    p.twilio_send(&twilio_message(64 * 1024 + 1));
    assert_eq!(*p.call.state(), CallState::Closed(CloseReason::TwilioProtocol { code: 1009 }));
    assert_eq!(p.twilio.control, [Control::Close(Some(1009))]);
}

#[test]
fn an_openai_message_of_1_mib_is_taken_one_byte_more_is_refused_with_1009() {
    assert_eq!(Limits::OPENAI.max_frame, 1024 * 1024);
    let mut p = Pair::live(config());
    p.openai_send(&openai_message(1024 * 1024));
    assert_eq!(p.call.stats().reconnects, 0);
    assert!(p.openai.control.is_empty(), "{:?}", p.openai.control);
    p.openai_send(&openai_message(1024 * 1024 + 1));
    assert_eq!(p.openai.control.last(), Some(&Control::Close(Some(1009))));
    assert_eq!(p.call.stats().reconnects, 1, "the call goes on with a new session");
    assert_eq!(*p.call.state(), CallState::Live);
}
