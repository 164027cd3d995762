//! The frame path allocates nothing after setup: 10 000 Twilio `media` frames in → OpenAI
//! `append` frames out, and 10 000 OpenAI `delta` frames in → Twilio `media` + `mark` out,
//! through the real codecs, under a counting global allocator.
//!
//! Allocations are counted per thread (`counting_alloc/`).

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::openai::{self, ServerEvent};
use callway_gateway::core::relay::{self, AgentAudioClock};
use callway_gateway::core::twilio::{self, TwilioEvent};
use callway_gateway::core::ws::{Decoded, Decoder, Encoder, Limits, Role};
use callway_gateway::samples;

mod counting_alloc;
use counting_alloc::allocations_during;

const FRAMES: usize = 10_000;

#[test]
fn the_counter_counts() {
    let n = allocations_during(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}

#[test]
fn twilio_media_to_openai_append_allocates_nothing() {
    // Setup: frames as they arrive on the socket, buffers, codecs.
    let payload = samples::base64(&samples::ulaw_tone(160));
    let wire: Vec<Vec<u8>> = (0..FRAMES as u64)
        .map(|i| samples::client_text_frame(&samples::twilio_media(i + 2, i + 1, &payload)))
        .collect();
    let mut recv = RecvBuf::with_capacity(16 * 1024);
    let mut dec = Decoder::new(Role::Server, Limits::TWILIO);
    let mut upstream = Encoder::client_with_seed([9; 32]);
    let mut out = vec![0u8; 64 * 1024];
    let mut out_len = 0;
    let mut forwarded = 0;

    let n = allocations_during(|| {
        for frame in &wire {
            recv.push(frame);
            let consumed = match relay::read_frame(&mut dec, &mut recv).expect("valid frame") {
                Decoded::Frame { consumed, message: Some(mut m) } => {
                    let text = relay::as_text(&mut m).expect("text");
                    match twilio::parse_event(text).expect("valid event") {
                        TwilioEvent::Media(media) => {
                            if out.len() - out_len < 512 {
                                out_len = 0; // the shell would have written it to the socket
                            }
                            out_len += relay::write_append(&mut upstream, &mut out[out_len..], media.payload)
                                .expect("room");
                            forwarded += 1;
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    consumed
                }
                other => panic!("unexpected {other:?}"),
            };
            recv.consume(consumed);
        }
    });
    assert_eq!(forwarded, FRAMES);
    assert_eq!(n, 0, "{n} allocations on the Twilio → OpenAI frame path");
}

#[test]
fn openai_delta_to_twilio_media_and_mark_allocates_nothing() {
    let audio = samples::base64(&samples::ulaw_tone(800)); // 100 ms deltas
    let wire: Vec<Vec<u8>> =
        (0..FRAMES as u64).map(|i| samples::server_text_frame(&samples::openai_delta(i, &audio))).collect();
    let mut recv = RecvBuf::with_capacity(64 * 1024);
    let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
    let mut downstream = Encoder::server();
    let mut out = vec![0u8; 64 * 1024];
    let mut out_len = 0;
    let mut clock = AgentAudioClock::default();
    clock.start_response();
    let sid = samples::STREAM_SID.as_bytes();

    let n = allocations_during(|| {
        for frame in &wire {
            recv.push(frame);
            let consumed = match relay::read_frame(&mut dec, &mut recv).expect("valid frame") {
                Decoded::Frame { consumed, message: Some(mut m) } => {
                    let text = relay::as_text(&mut m).expect("text");
                    match openai::parse_server_event(text).expect("valid event") {
                        ServerEvent::AudioDelta(d) => {
                            if out.len() - out_len < 4096 {
                                out_len = 0;
                            }
                            let label = clock.next_chunk(relay::audio_ms(d.delta));
                            out_len += relay::write_media_with_mark(
                                &mut downstream,
                                &mut out[out_len..],
                                sid,
                                d.delta,
                                label,
                            )
                            .expect("room");
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    consumed
                }
                other => panic!("unexpected {other:?}"),
            };
            recv.consume(consumed);
        }
    });
    assert_eq!(clock.sent_ms(), 100 * FRAMES as u32);
    assert_eq!(n, 0, "{n} allocations on the OpenAI → Twilio frame path");
}

#[test]
fn the_last_frames_written_are_what_twilio_and_openai_expect() {
    // The frames the zero-allocation loops write are decodable and carry the audio unchanged.
    let audio = samples::base64(&samples::ulaw_tone(160));
    let mut downstream = Encoder::server();
    let mut out = vec![0u8; 4096];
    let mut clock = AgentAudioClock::default();
    clock.start_response();
    let n = relay::write_media_with_mark(
        &mut downstream,
        &mut out,
        b"MZ1",
        audio.as_bytes(),
        clock.next_chunk(20),
    )
    .unwrap();
    let mut recv = RecvBuf::with_capacity(4096);
    recv.push(&out[..n]);
    let mut dec = Decoder::new(Role::Client, Limits::TWILIO);
    let mut texts = Vec::new();
    while let Decoded::Frame { consumed, message: Some(mut m) } = dec.decode(&mut recv).unwrap() {
        texts.push(String::from_utf8(relay::as_text(&mut m).unwrap().to_vec()).unwrap());
        recv.consume(consumed);
    }
    let media: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(media["media"]["payload"], audio.as_str());
    let mark: serde_json::Value = serde_json::from_str(&texts[1]).unwrap();
    assert_eq!(mark["mark"]["name"], "r1-c1-20");
}
