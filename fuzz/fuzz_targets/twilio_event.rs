//! `core::twilio::parse_event` on any bytes (the slow path's simd-json included).
//!
//! Checks: for UTF-8 input (all the WebSocket decoder lets through) the answer, event or
//! error, is the full parser's (`parse_slow`); an accepted `media` has a base64 payload that
//! the relay forwards unchanged in an `input_audio_buffer.append` frame which decodes back to
//! exactly `append_parts`; mark labels that parse write back to the same label.
#![no_main]

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::json_scan::is_base64;
use callway_gateway::core::twilio::{MARK_LABEL_MAX, MarkLabel, TwilioEvent, parse_event, parse_slow};
use callway_gateway::core::ws::{Decoded, Decoder, Encoder, Limits, Message, Role};
use callway_gateway::core::{openai, relay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut a = data.to_vec();
    let result = parse_event(&mut a);
    if std::str::from_utf8(data).is_ok() {
        let mut b = data.to_vec();
        assert_eq!(result, parse_slow(&mut b), "parse_event and the full parser disagree");
    }
    match result {
        Ok(TwilioEvent::Media(m)) => {
            assert!(is_base64(m.payload), "accepted a non-base64 payload");
            let audio = base64_simd::STANDARD.decode_to_vec(m.payload).expect("checked base64 decodes");
            assert_eq!(relay::audio_ms(m.payload) as usize, audio.len() / 8, "audio length without decoding");
            // Twilio -> OpenAI, as the frame path does it.
            let mut out = vec![0u8; m.payload.len() + 128];
            let n = relay::write_append(&mut Encoder::client_with_seed([1; 32]), &mut out, m.payload)
                .expect("sized for the frame");
            let mut buf = RecvBuf::with_capacity(n);
            buf.push(&out[..n]);
            let mut dec = Decoder::new(Role::Server, Limits { max_frame: n, max_message: n });
            match dec.decode(&mut buf) {
                Ok(Decoded::Frame { consumed, message: Some(Message::Text(t)) }) => {
                    assert_eq!(consumed, n);
                    assert_eq!(&t[..], &openai::append_parts(m.payload).concat()[..]);
                }
                other => panic!("append frame decodes as {other:?}"),
            }
        }
        Ok(TwilioEvent::Mark { name, .. }) => {
            if let Some(label) = MarkLabel::parse(name) {
                let mut b = [0u8; MARK_LABEL_MAX];
                assert_eq!(MarkLabel::parse(label.write(&mut b)), Some(label));
            }
        }
        _ => {}
    }
});
