//! A live [`Call`] allocates nothing on the frame path: 10 000 Twilio `media` frames in →
//! `append` frames out, 10 000 OpenAI deltas in → Twilio `media` + `mark` out, and 10 000 mark
//! echoes, through the whole state machine (decode, dispatch, playback accounting, send
//! buffers, timers), under a counting global allocator.
//!
//! The same on GPT-Live (`session.input_audio.append` out, `session.output_audio.delta` in,
//! silent deltas held back).
//!
//! Allocations are counted per thread (`counting_alloc/`).

use std::time::Instant;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::call::{Call, CallState, Handled, Peer, VoiceApi};
use callway_gateway::samples::{self, flush};

mod counting_alloc;
use counting_alloc::allocations_during;

const FRAMES: usize = 10_000;

/// A call past `start`, its OpenAI session configured, the greeting response created.
fn live_call(now: Instant) -> (Call, RecvBuf, RecvBuf) {
    call_on(VoiceApi::Realtime, now)
}

fn call_on(api: VoiceApi, now: Instant) -> (Call, RecvBuf, RecvBuf) {
    let (call, down, up) = samples::call_in_conversation(api, now);
    assert_eq!(*call.state(), CallState::Live);
    (call, down, up)
}

/// The frames of one relay run: caller media, agent audio (100 ms deltas), the marks Twilio
/// echoes as it plays, and on GPT-Live the silence that follows once all was played.
struct Run {
    media: Vec<Vec<u8>>,
    deltas: Vec<Vec<u8>>,
    marks: Vec<Vec<u8>>,
    silent: Vec<Vec<u8>>,
}

impl Run {
    fn new(api: VoiceApi) -> Self {
        let payload = samples::base64(&samples::ulaw_tone(160));
        let voiced = samples::base64(&samples::ulaw_tone(800));
        let silence = samples::base64(&[0xFF; 800]);
        let server = |json: String| samples::server_text_frame(&json);
        Run {
            media: (0..FRAMES as u64)
                .map(|i| samples::client_text_frame(&samples::twilio_media(i + 2, i + 1, &payload)))
                .collect(),
            deltas: (0..FRAMES as u64)
                .map(|i| match api {
                    VoiceApi::Realtime => server(samples::openai_delta(i, &voiced)),
                    VoiceApi::Live => server(samples::live_delta(&voiced)),
                })
                .collect(),
            marks: (0..FRAMES as u64)
                .map(|i| {
                    let name = format!("r1-c{}-{}", i + 1, (i + 1) * 100);
                    samples::client_text_frame(&samples::twilio_mark(i + 20_000, &name))
                })
                .collect(),
            silent: match api {
                VoiceApi::Realtime => Vec::new(),
                VoiceApi::Live => (0..FRAMES).map(|_| server(samples::live_delta(&silence))).collect(),
            },
        }
    }

    /// Feeds everything through `call`: (allocations, bytes to OpenAI, bytes to Twilio).
    fn relay(
        &self,
        call: &mut Call,
        down: &mut RecvBuf,
        up: &mut RecvBuf,
        now: Instant,
    ) -> (u64, usize, usize) {
        let (mut to_openai, mut to_twilio) = (0, 0);
        let n = allocations_during(|| {
            for frame in &self.media {
                down.push(frame);
                assert_eq!(call.handle_downstream(down, now), Handled::Done);
                to_openai += flush(call, Peer::OpenAi);
                std::hint::black_box(call.poll_timeout());
            }
            for frame in &self.deltas {
                up.push(frame);
                assert_eq!(call.handle_upstream(up, now), Handled::Done);
                to_twilio += flush(call, Peer::Twilio);
                std::hint::black_box(call.poll_timeout());
            }
            for frame in &self.marks {
                down.push(frame);
                assert_eq!(call.handle_downstream(down, now), Handled::Done);
            }
            for frame in &self.silent {
                up.push(frame);
                assert_eq!(call.handle_upstream(up, now), Handled::Done);
                to_twilio += flush(call, Peer::Twilio);
            }
        });
        (n, to_openai, to_twilio)
    }
}

#[test]
fn a_live_call_relays_10000_frames_each_way_without_allocating() {
    let now = Instant::now();
    let (mut call, mut down, mut up) = live_call(now);
    let (n, to_openai, to_twilio) = Run::new(VoiceApi::Realtime).relay(&mut call, &mut down, &mut up, now);

    assert_eq!(n, 0, "{n} allocations on a live call's frame path");
    let stats = call.stats();
    assert_eq!(stats.media_forwarded, FRAMES as u64);
    assert_eq!(stats.agent_chunks_sent, FRAMES as u64);
    assert_eq!(stats.marks_ignored, 0, "every echoed mark was ours and counted as played");
    assert_eq!(stats.send_overflows, 0);
    assert!(to_openai > FRAMES * 216 && to_twilio > FRAMES * 1068, "the frames really went out");
    assert!(call.poll_event().is_none(), "no events on the hot path");

    // The counter sees through the call: a transcript (an owned String for the control plane)
    // does allocate.
    up.push(&samples::server_text_frame(
        r#"{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"transcript":"Bonjour"}"#,
    ));
    assert!(
        allocations_during(|| {
            let _ = call.handle_upstream(&mut up, now);
        }) > 0
    );
}

#[test]
fn a_call_on_gpt_live_relays_10000_frames_each_way_without_allocating() {
    let now = Instant::now();
    let (mut call, mut down, mut up) = call_on(VoiceApi::Live, now);
    let (n, to_openai, to_twilio) = Run::new(VoiceApi::Live).relay(&mut call, &mut down, &mut up, now);

    assert_eq!(n, 0, "{n} allocations on a GPT-Live call's frame path");
    let stats = call.stats();
    assert_eq!(stats.media_forwarded, FRAMES as u64);
    assert_eq!(stats.agent_chunks_sent, FRAMES as u64, "voiced chunks go out");
    assert_eq!(stats.live_silence_held_back, FRAMES as u64, "silence after everything played is held back");
    assert_eq!(stats.marks_ignored, 0);
    assert_eq!(stats.send_overflows, 0);
    assert!(to_openai > FRAMES * 216 && to_twilio > FRAMES * 1068, "the frames really went out");
    assert!(call.poll_event().is_none(), "no events on the hot path");
}

#[test]
fn lost_duplicate_and_late_caller_frames_cost_no_allocation_either() {
    let now = Instant::now();
    let (mut call, mut down, _up) = live_call(now);
    let payload = samples::base64(&samples::ulaw_tone(160));
    // Every fourth frame is lost (filled with silence), every seventh arrives twice.
    let mut media = Vec::new();
    for i in 0..FRAMES as u64 {
        if i % 4 == 3 {
            continue;
        }
        let frame = samples::client_text_frame(&samples::twilio_media(i + 2, i + 1, &payload));
        if i % 7 == 0 {
            media.push(frame.clone());
        }
        media.push(frame);
    }
    let n = allocations_during(|| {
        for frame in &media {
            down.push(frame);
            assert_eq!(call.handle_downstream(&mut down, now), Handled::Done);
            flush(&mut call, Peer::OpenAi);
        }
    });
    assert_eq!(n, 0, "{n} allocations filling gaps and dropping duplicates");
    let stats = call.stats();
    assert!(stats.gaps_filled > 2000 && stats.gap_fill_ms == stats.gaps_filled * 20, "{stats:?}");
    assert!(stats.media_dropped_late > 1000, "{stats:?}");
}
