//! `callway_sim_openai::audio::read_wav`: the WAV reader behind the simulator's spoken replies
//! (`Reply::from_wav_file`, `callway-sim openai --reply FILE=TEXT`, the browser test's
//! espeak-ng voices), then the resampler those replies go through (`to_ulaw_8k`).
//!
//! Input: byte 0 picks the mode.
//! - Even: the rest is a file. Never a panic; an accepted file is a RIFF/WAVE image with a
//!   sample rate above zero, and no more samples than its bytes hold; written again with
//!   `wav_bytes` it reads back the same; resampled to 8 kHz it has `len × 8000 / rate` samples.
//! - Odd: a file is built from arbitrary samples, a rate, chunks before `fmt ` and between
//!   `fmt ` and `data` (odd sizes padded, as RIFF wants), and a `fmt ` chunk that may be
//!   extended (18 bytes, `cbSize`) or not 16-bit PCM mono: it must read back exactly (samples
//!   and rate), or be refused as `Unsupported` when its format is not 16-bit PCM mono.
#![no_main]

use arbitrary::{Result, Unstructured};
use callway_sim_openai::audio::{WavError, read_wav, to_ulaw_8k, wav_bytes};
use libfuzzer_sys::fuzz_target;

/// Longest resampled output checked (a 1 Hz file of a few KiB would be hours of 8 kHz audio).
const MAX_RESAMPLED: usize = 1 << 18;

fn accepted(bytes: &[u8], samples: &[i16], rate: u32) {
    assert!(rate > 0);
    assert!(bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE"));
    // RIFF header, a fmt chunk of at least 16 bytes and the data chunk's header come first.
    assert!(samples.len() * 2 <= bytes.len().saturating_sub(12 + 8 + 16 + 8));
    let again = wav_bytes(samples, rate);
    assert_eq!(read_wav(&again), Ok((samples.to_vec(), rate)), "written again, read the same");
    let n = samples.len() * 8000 / rate as usize;
    if n <= MAX_RESAMPLED {
        assert_eq!(to_ulaw_8k(samples, rate, 1.0).len(), n);
    }
}

fn chunk(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let rate: u32 = u.arbitrary()?;
    let rate = rate.max(1);
    let (format, channels, bits): (u16, u16, u16) =
        if u.ratio(3, 4)? { (1, 1, 16) } else { (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?) };
    let extended: bool = u.arbitrary()?;
    let before: Vec<u8> = u.arbitrary()?;
    let between: Vec<u8> = u.arbitrary()?;
    let samples: Vec<i16> = u.arbitrary()?;

    let mut fmt = Vec::new();
    fmt.extend_from_slice(&format.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&rate.wrapping_mul(2).to_le_bytes());
    fmt.extend_from_slice(&2u16.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    if extended {
        fmt.extend_from_slice(&0u16.to_le_bytes());
    }
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();

    let mut body = b"WAVE".to_vec();
    if !before.is_empty() {
        chunk(&mut body, b"LIST", &before);
    }
    chunk(&mut body, b"fmt ", &fmt);
    if !between.is_empty() {
        chunk(&mut body, b"fact", &between);
    }
    chunk(&mut body, b"data", &data);
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);

    let got = read_wav(&file);
    if (format, channels, bits) == (1, 1, 16) {
        assert_eq!(got, Ok((samples.clone(), rate)), "a well-formed 16-bit PCM mono file reads back");
        accepted(&file, &samples, rate);
    } else {
        assert_eq!(got, Err(WavError::Unsupported), "format {format}, {channels} channel(s), {bits} bits");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        if let Ok((samples, rate)) = read_wav(rest) {
            accepted(rest, &samples, rate);
        }
    } else {
        let _ = generated(&mut Unstructured::new(rest));
    }
});
