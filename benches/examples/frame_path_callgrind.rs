//! Drives the two relay paths N times for `valgrind --tool=callgrind`, which counts
//! instructions (repeatable on a busy machine, unlike wall-clock time).
//!
//! ```text
//! cargo build --release -p callway-benches --example frame_path_callgrind
//! valgrind --tool=callgrind target/release/examples/frame_path_callgrind twilio 100000
//! valgrind --tool=callgrind target/release/examples/frame_path_callgrind openai 100000
//! ```
//! Instructions per frame = (total with N) − (total with 0), divided by N.

use std::hint::black_box;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::openai::{self, ServerEvent};
use callway_gateway::core::relay::{self, AgentAudioClock};
use callway_gateway::core::twilio::{self, TwilioEvent};
use callway_gateway::core::ws::{Decoded, Decoder, Encoder, Limits, Role};
use callway_gateway::samples;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "twilio".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match which.as_str() {
        "twilio" => {
            let payload = samples::base64(&samples::ulaw_tone(160));
            let frame = samples::client_text_frame(&samples::twilio_media(4, 2, &payload));
            let mut recv = RecvBuf::with_capacity(16 * 1024);
            let mut dec = Decoder::new(Role::Server, Limits::TWILIO);
            let mut up = Encoder::client_with_seed([9; 32]);
            let mut out = vec![0u8; 4096];
            for _ in 0..n {
                recv.push(black_box(&frame));
                let Ok(Decoded::Frame { consumed, message: Some(mut m) }) =
                    relay::read_frame(&mut dec, &mut recv)
                else {
                    panic!("frame")
                };
                let Ok(TwilioEvent::Media(media)) = twilio::parse_event(relay::as_text(&mut m).unwrap())
                else {
                    panic!("media")
                };
                let w = relay::write_append(&mut up, &mut out, media.payload).unwrap();
                black_box(&out[..w]);
                recv.consume(consumed);
            }
        }
        "openai" => {
            let audio = samples::base64(&samples::ulaw_tone(160));
            let frame = samples::server_text_frame(&samples::openai_delta(1, &audio));
            let mut recv = RecvBuf::with_capacity(64 * 1024);
            let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
            let mut down = Encoder::server();
            let mut out = vec![0u8; 8192];
            let mut clock = AgentAudioClock::default();
            clock.start_response();
            for _ in 0..n {
                recv.push(black_box(&frame));
                let Ok(Decoded::Frame { consumed, message: Some(mut m) }) =
                    relay::read_frame(&mut dec, &mut recv)
                else {
                    panic!("frame")
                };
                let Ok(ServerEvent::AudioDelta(d)) =
                    openai::parse_server_event(relay::as_text(&mut m).unwrap())
                else {
                    panic!("delta")
                };
                let label = clock.next_chunk(relay::audio_ms(d.delta));
                let w = relay::write_media_with_mark(
                    &mut down,
                    &mut out,
                    samples::STREAM_SID.as_bytes(),
                    d.delta,
                    label,
                )
                .unwrap();
                black_box(&out[..w]);
                recv.consume(consumed);
            }
        }
        other => {
            eprintln!("usage: frame_path_callgrind twilio|openai [N]  (got {other})");
            std::process::exit(2);
        }
    }
}
