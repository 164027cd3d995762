//! `core::openai::parse_server_event` on any bytes (the slow path's simd-json included).
//!
//! Checks: for UTF-8 input the answer, event or error, is the full parser's (`parse_slow`);
//! an accepted audio delta is base64, and the relay turns it into a Twilio `media` frame and a
//! `mark` frame that decode back to exactly `media_parts` and `mark_parts`, the mark naming
//! the audio time the delta adds; `Other` is never one of the types that have a variant.
#![no_main]

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::json_scan::is_base64;
use callway_gateway::core::openai::{ServerEvent, parse_server_event, parse_slow};
use callway_gateway::core::relay::{self, AgentAudioClock};
use callway_gateway::core::twilio::{self, MARK_LABEL_MAX, MarkLabel};
use callway_gateway::core::ws::{Decoded, Decoder, Encoder, Limits, Message, Role};
use callway_gateway::samples::STREAM_SID;
use libfuzzer_sys::fuzz_target;

const TYPED: &[&str] = &[
    "response.output_audio.delta",
    "session.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "response.created",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "conversation.item.input_audio_transcription.completed",
    "response.function_call_arguments.done",
    "response.done",
    "error",
];

fuzz_target!(|data: &[u8]| {
    let mut a = data.to_vec();
    let result = parse_server_event(&mut a);
    if std::str::from_utf8(data).is_ok() {
        let mut b = data.to_vec();
        assert_eq!(result, parse_slow(&mut b), "parse_server_event and the full parser disagree");
    }
    match result {
        Ok(ServerEvent::AudioDelta(d)) => {
            assert!(is_base64(d.delta), "accepted a non-base64 delta");
            // OpenAI -> Twilio, as the frame path does it.
            let mut clock = AgentAudioClock::default();
            clock.start_response();
            let ms = relay::audio_ms(d.delta);
            let audio = base64_simd::STANDARD.decode_to_vec(d.delta).expect("checked base64 decodes");
            assert_eq!(ms as usize, audio.len() / 8, "audio length without decoding");
            let label = clock.next_chunk(ms);
            assert_eq!(label.end_ms, ms);
            let mut out = vec![0u8; d.delta.len() + 256];
            let n = relay::write_media_with_mark(
                &mut Encoder::server(),
                &mut out,
                STREAM_SID.as_bytes(),
                d.delta,
                label,
            )
            .expect("sized for both frames");
            let mut buf = RecvBuf::with_capacity(n);
            buf.push(&out[..n]);
            let mut dec = Decoder::new(Role::Client, Limits { max_frame: n, max_message: n });
            let mut name = [0u8; MARK_LABEL_MAX];
            let expected = [
                twilio::media_parts(STREAM_SID.as_bytes(), d.delta).concat(),
                twilio::mark_parts(STREAM_SID.as_bytes(), label.write(&mut name)).concat(),
            ];
            for want in expected {
                let consumed = match dec.decode(&mut buf) {
                    Ok(Decoded::Frame { consumed, message: Some(Message::Text(t)) }) => {
                        assert_eq!(&t[..], &want[..]);
                        consumed
                    }
                    other => panic!("relay frame decodes as {other:?}"),
                };
                buf.consume(consumed);
            }
            assert!(buf.is_empty());
            assert_eq!(MarkLabel::parse(label.write(&mut name)), Some(label));
        }
        Ok(ServerEvent::Other { kind }) => assert!(!TYPED.contains(&kind), "{kind} came back as Other"),
        _ => {}
    }
});
