//! Drives the two relay paths N times for `valgrind --tool=callgrind`, which counts
//! instructions (repeatable on a busy machine, unlike wall-clock time).
//!
//! ```text
//! cargo build --release -p callway-benches --example frame_path_callgrind
//! valgrind --tool=callgrind target/release/examples/frame_path_callgrind twilio 100000
//! valgrind --tool=callgrind target/release/examples/frame_path_callgrind openai 100000
//! ```
//! Instructions per frame = (total with N) − (total with 0), divided by N.
//!
//! The `call-*` paths run the same frames through the whole call core ([`Call`]: stream
//! binding, media clock, playback accounting, marks), on Realtime or GPT-Live. Their frames
//! differ from one to the next (sequence numbers, timestamps, mark names), so they are built
//! first and only [`relay`] is counted:
//! ```text
//! valgrind --tool=callgrind --toggle-collect='frame_path_callgrind::relay' \
//!   target/release/examples/frame_path_callgrind call-realtime 20000
//! ```
//! Instructions per frame = refs / N (each of the N steps is one caller frame in, one agent
//! delta out and its mark echoed back).

use std::hint::black_box;

use std::time::Instant;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::call::{Call, Handled, Peer, VoiceApi};
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
        "call-realtime" => whole_call(VoiceApi::Realtime, n),
        "call-live" => whole_call(VoiceApi::Live, n),
        other => {
            eprintln!("usage: frame_path_callgrind twilio|openai|call-realtime|call-live [N]  (got {other})");
            std::process::exit(2);
        }
    }
}

/// The frames of `n` conversation steps on `api`: a caller frame, a 20 ms agent delta, the
/// echo of the delta's mark.
fn whole_call(api: VoiceApi, n: usize) {
    let now = Instant::now();
    let (mut call, mut down, mut up) = samples::call_in_conversation(api, now);
    let caller = samples::base64(&samples::ulaw_tone(160));
    let agent = samples::base64(&samples::ulaw_tone(160));
    let mut steps = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let media = samples::client_text_frame(&samples::twilio_media(i + 2, i + 1, &caller));
        let delta = match api {
            VoiceApi::Realtime => samples::openai_delta(i, &agent),
            VoiceApi::Live => samples::live_delta(&agent),
        };
        let mark = format!("r1-c{}-{}", i + 1, (i + 1) * 20);
        steps.push([
            media,
            samples::server_text_frame(&delta),
            samples::client_text_frame(&samples::twilio_mark(i + 1_000_000, &mark)),
        ]);
    }
    relay(&mut call, &mut down, &mut up, &steps, now);
    let stats = call.stats();
    assert_eq!((stats.media_forwarded, stats.agent_chunks_sent), (n as u64, n as u64), "{stats:?}");
    assert_eq!(stats.marks_ignored, 0, "{stats:?}");
}

/// What callgrind counts for the `call-*` paths: the frames through the call, the bytes out.
#[inline(never)]
fn relay(call: &mut Call, down: &mut RecvBuf, up: &mut RecvBuf, steps: &[[Vec<u8>; 3]], now: Instant) {
    for [media, delta, mark] in steps {
        down.push(black_box(media));
        assert_eq!(call.handle_downstream(down, now), Handled::Done);
        black_box(samples::flush(call, Peer::OpenAi));
        up.push(black_box(delta));
        assert_eq!(call.handle_upstream(up, now), Handled::Done);
        black_box(samples::flush(call, Peer::Twilio));
        down.push(black_box(mark));
        assert_eq!(call.handle_downstream(down, now), Handled::Done);
        black_box(call.poll_timeout());
    }
}
