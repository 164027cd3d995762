//! Lost, duplicated and reordered caller frames (Twilio's `sequenceNumber` and
//! `media.timestamp`): OpenAI's audio clock must stay the call's, so lost audio up to the bound
//! is replaced by silence, longer gaps are counted and left alone, late frames are dropped.

mod call_support;

use std::time::Duration;

use call_support::{Pair, config, tone_b64};
use callway_gateway::core::call::CallConfig;
use callway_gateway::samples;

/// Caller frame `chunk` (timestamp (chunk - 1) × 20 ms) with Twilio sequence number `seq`.
fn frame(p: &mut Pair, seq: u64, chunk: u64) {
    p.twilio_send(&samples::twilio_media(seq, chunk, &tone_b64(20)));
}

/// μ-law bytes OpenAI received in appends, and how many of them were silence (0xFF).
fn appended(p: &Pair) -> (usize, usize) {
    let mut total = 0;
    let mut silence = 0;
    for a in p.openai.of("input_audio_buffer.append") {
        let bytes = base64_simd::STANDARD.decode_to_vec(a["audio"].as_str().unwrap()).unwrap();
        total += bytes.len();
        silence += bytes.iter().filter(|&&b| b == 0xff).count();
    }
    (total, silence)
}

#[test]
fn lost_frames_become_silence_so_openais_clock_keeps_the_calls_time() {
    let mut p = Pair::live(config());
    frame(&mut p, 3, 1);
    frame(&mut p, 4, 2);
    // Frames 3, 4 and 5 (60 ms) never arrive.
    frame(&mut p, 8, 6);
    let (total, silence) = appended(&p);
    assert_eq!(total, 6 * 160, "120 ms of OpenAI audio for 120 ms of call");
    assert!(silence >= 3 * 160, "{silence}");
    let s = p.call.stats();
    assert_eq!((s.gaps_filled, s.gap_fill_ms, s.gaps_unfillable), (1, 60, 0));
}

#[test]
fn a_gap_beyond_the_bound_is_counted_and_never_filled() {
    let mut p = Pair::live(CallConfig { max_gap_fill: Duration::from_millis(100), ..config() });
    frame(&mut p, 3, 1);
    frame(&mut p, 4, 7); // 100 ms lost: filled
    frame(&mut p, 5, 20); // 240 ms lost: not
    let (total, _) = appended(&p);
    assert_eq!(total, (3 + 5) * 160);
    let s = p.call.stats();
    assert_eq!((s.gaps_filled, s.gap_fill_ms, s.gaps_unfillable), (1, 100, 1));
}

#[test]
fn duplicates_and_late_frames_are_dropped() {
    let mut p = Pair::live(config());
    frame(&mut p, 3, 1);
    frame(&mut p, 3, 1);
    frame(&mut p, 5, 3);
    frame(&mut p, 4, 2); // arrived after frame 3: its place was filled already
    frame(&mut p, 6, 4);
    let (total, _) = appended(&p);
    assert_eq!(total, 4 * 160);
    assert_eq!(p.call.stats().media_dropped_late, 2);
    assert_eq!(p.call.stats().media_forwarded, 3);
}

#[test]
fn silence_for_lost_frames_is_held_like_audio_while_openai_is_not_ready() {
    let mut p = Pair::live(config());
    p.auto_connect = false;
    p.drop_openai();
    frame(&mut p, 3, 1);
    frame(&mut p, 4, 4);
    assert_eq!(p.call.stats().gap_fill_ms, 40);
    p.openai.clear();
    p.connect_openai();
    p.drive();
    let (total, _) = appended(&p);
    assert_eq!(total, 4 * 160, "held audio and its filled gap go out in order once connected");
}
