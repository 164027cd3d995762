//! Frame-path benchmarks (criterion): what one frame costs in the gateway core.
//!
//! - `twilio_media_to_append`: a masked Twilio `media` WebSocket frame arrives in the receive
//!   buffer → decoded and unmasked in place → `payload` found by the fast path → written,
//!   unchanged, into an `input_audio_buffer.append` client frame, masked. The copy of the frame
//!   into the receive buffer (what the socket read does) is included.
//! - `openai_delta_to_media_mark/{20,100}ms`: an OpenAI `response.output_audio.delta` frame →
//!   decoded → `delta` found by the fast path → Twilio `media` frame + `mark` frame written.
//! - `unmask_256`, `twilio_signature_verify`, `stream_token_verify`, and the slow paths for
//!   comparison (`twilio_media_simd_json`, `openai_delta_simd_json`).

use std::hint::black_box;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::openai::{self, ServerEvent};
use callway_gateway::core::relay::{self, AgentAudioClock};
use callway_gateway::core::twilio::{self, TwilioEvent};
use callway_gateway::core::ws::mask::apply_mask;
use callway_gateway::core::ws::{Decoded, Decoder, Encoder, Limits, Role};
use callway_gateway::samples;
use contract::stream_token::{StreamClaims, StreamTokenMinter, StreamTokenVerifier};
use contract::twilio_signature::TwilioSigner;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn twilio_to_openai(c: &mut Criterion) {
    let payload = samples::base64(&samples::ulaw_tone(160));
    let frame = samples::client_text_frame(&samples::twilio_media(4, 2, &payload));
    let mut recv = RecvBuf::with_capacity(16 * 1024);
    let mut dec = Decoder::new(Role::Server, Limits::TWILIO);
    let mut upstream = Encoder::client_with_seed([9; 32]);
    let mut out = vec![0u8; 4096];
    let mut g = c.benchmark_group("frame_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("twilio_media_to_append", |b| {
        b.iter(|| {
            recv.push(black_box(&frame));
            let Ok(Decoded::Frame { consumed, message: Some(mut m) }) =
                relay::read_frame(&mut dec, &mut recv)
            else {
                unreachable!()
            };
            let Ok(TwilioEvent::Media(media)) = twilio::parse_event(relay::as_text(&mut m).unwrap()) else {
                unreachable!()
            };
            let n = relay::write_append(&mut upstream, &mut out, media.payload).unwrap();
            black_box(&out[..n]);
            recv.consume(consumed);
        })
    });
    g.finish();
}

fn openai_to_twilio(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_path/openai_delta_to_media_mark");
    g.throughput(Throughput::Elements(1));
    for ms in [20usize, 100] {
        let audio = samples::base64(&samples::ulaw_tone(ms * 8));
        let frame = samples::server_text_frame(&samples::openai_delta(1, &audio));
        let mut recv = RecvBuf::with_capacity(64 * 1024);
        let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
        let mut downstream = Encoder::server();
        let mut out = vec![0u8; 8192];
        let mut clock = AgentAudioClock::default();
        clock.start_response();
        g.bench_function(format!("{ms}ms"), |b| {
            b.iter(|| {
                recv.push(black_box(&frame));
                let Ok(Decoded::Frame { consumed, message: Some(mut m) }) =
                    relay::read_frame(&mut dec, &mut recv)
                else {
                    unreachable!()
                };
                let Ok(ServerEvent::AudioDelta(d)) =
                    openai::parse_server_event(relay::as_text(&mut m).unwrap())
                else {
                    unreachable!()
                };
                let label = clock.next_chunk(relay::audio_ms(d.delta));
                let n = relay::write_media_with_mark(
                    &mut downstream,
                    &mut out,
                    samples::STREAM_SID.as_bytes(),
                    d.delta,
                    label,
                )
                .unwrap();
                black_box(&out[..n]);
                recv.consume(consumed);
            })
        });
    }
    g.finish();
}

fn pieces(c: &mut Criterion) {
    let mut g = c.benchmark_group("pieces");
    let mut buf = [0x55u8; 256];
    g.bench_function("unmask_256", |b| b.iter(|| apply_mask(black_box(&mut buf), [1, 2, 3, 4], 0)));

    let signer = TwilioSigner::new(b"12345");
    let url = "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def";
    g.bench_function("twilio_signature_verify", |b| {
        b.iter(|| signer.verify_upgrade(black_box(url), black_box(b"24fy8gg1vgNB/teYcvsiUvJw6Zo=")))
    });

    let secret = b"bench-stream-token-secret-0123456789abcdef";
    let claims = StreamClaims { call_id: [1; 16], lead_id: [2; 16], expires_at: u64::MAX, nonce: [3; 12] };
    let token = StreamTokenMinter::new(secret).unwrap().mint(&claims);
    let verifier = StreamTokenVerifier::new(&[secret], 30).unwrap();
    g.bench_function("stream_token_verify", |b| b.iter(|| verifier.verify(black_box(token.as_bytes()), 1)));

    let media = samples::twilio_media(4, 2, &samples::base64(&samples::ulaw_tone(160)));
    g.bench_function("twilio_media_fast_path", |b| {
        b.iter(|| twilio::parse_fast(black_box(media.as_bytes())))
    });
    let mut scratch = media.clone().into_bytes();
    g.bench_function("twilio_media_simd_json", |b| {
        b.iter(|| {
            scratch.copy_from_slice(media.as_bytes());
            black_box(twilio::parse_slow(&mut scratch).is_ok());
        })
    });
    let delta = samples::openai_delta(1, &samples::base64(&samples::ulaw_tone(160)));
    g.bench_function("openai_delta_fast_path", |b| {
        b.iter(|| openai::parse_delta_fast(black_box(delta.as_bytes())))
    });
    let mut scratch = delta.clone().into_bytes();
    g.bench_function("openai_delta_simd_json", |b| {
        b.iter(|| {
            scratch.copy_from_slice(delta.as_bytes());
            black_box(openai::parse_slow(&mut scratch).is_ok());
        })
    });
    g.finish();
}

criterion_group!(benches, twilio_to_openai, openai_to_twilio, pieces);
criterion_main!(benches);
