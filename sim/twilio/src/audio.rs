//! μ-law (G.711) audio for the caller: codec, tones, silence, a loudness test, and the
//! files a person hands the CLI (raw `.ul`/`.raw` μ-law or WAV, μ-law or 16-bit PCM, 8 kHz mono).
//!
//! Twilio Media Streams carry `audio/x-mulaw` at 8000 samples/s, one byte per sample, no header:
//! 20 ms is 160 bytes.

use std::path::Path;

/// Samples (= μ-law bytes) per second.
pub const SAMPLE_RATE: u32 = 8000;
/// Bytes in the 20 ms frame Twilio sends.
pub const FRAME_BYTES: usize = 160;
/// μ-law code of digital silence (linear 0).
pub const SILENCE: u8 = 0xFF;

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to μ-law (ITU-T G.711).
pub fn encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes one μ-law byte to a 16-bit linear sample (exact).
pub fn decode(code: u8) -> i16 {
    let u = !code;
    let exponent = i32::from((u >> 4) & 7);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// `len` bytes of μ-law silence.
pub fn silence(len: usize) -> Vec<u8> {
    vec![SILENCE; len]
}

/// Number of μ-law bytes in `ms` milliseconds.
pub fn bytes_for_ms(ms: u64) -> usize {
    (ms * u64::from(SAMPLE_RATE) / 1000) as usize
}

/// A sine tone of `hz` for `ms` milliseconds at `amplitude` (0.0–1.0 of full scale), in μ-law.
pub fn tone(hz: f64, ms: u64, amplitude: f64) -> Vec<u8> {
    let n = bytes_for_ms(ms);
    let peak = amplitude.clamp(0.0, 1.0) * f64::from(i16::MAX);
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            encode((peak * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// Mean absolute linear amplitude of a μ-law buffer (0 for an empty one).
pub fn mean_abs(mulaw: &[u8]) -> f64 {
    if mulaw.is_empty() {
        return 0.0;
    }
    mulaw.iter().map(|&b| f64::from(decode(b)).abs()).sum::<f64>() / mulaw.len() as f64
}

/// Mean absolute amplitude above which a frame counts as speech (about -36 dBFS).
pub const VOICE_THRESHOLD: f64 = 500.0;

/// Whether a μ-law frame holds sound (speech, a tone) rather than silence or line noise.
pub fn is_voiced(mulaw: &[u8]) -> bool {
    mean_abs(mulaw) > VOICE_THRESHOLD
}

/// Why an audio file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A WAV file the caller cannot play unchanged.
    #[error("{path}: {reason} (convert with: sox IN -r 8000 -c 1 -e u-law OUT.ul)")]
    Unsupported {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Loads a μ-law file: a WAV (μ-law or 16-bit PCM, 8 kHz, mono) or, without a RIFF header,
/// raw μ-law bytes (sox's `.ul`).
pub fn load(path: &Path) -> Result<Vec<u8>, AudioFileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| AudioFileError::Io { path: name.clone(), source })?;
    if bytes.starts_with(b"RIFF") {
        parse_wav(&bytes).map_err(|reason| AudioFileError::Unsupported { path: name, reason })
    } else {
        Ok(bytes)
    }
}

/// Extracts μ-law samples from a WAV image (μ-law, or 16-bit PCM encoded here), 8 kHz mono.
pub fn parse_wav(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len =
            u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(len).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " if body.len() >= 16 => {
                let tag = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                format = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or("data chunk before fmt chunk")?;
                if channels != 1 || rate != SAMPLE_RATE {
                    return Err(format!("{channels} channel(s) at {rate} Hz; need mono 8000 Hz"));
                }
                return match (tag, bits) {
                    (7, 8) => Ok(body.to_vec()),
                    (1, 16) => {
                        Ok(body.chunks_exact(2).map(|s| encode(i16::from_le_bytes([s[0], s[1]]))).collect())
                    }
                    _ => Err(format!("format tag {tag} with {bits} bits; need μ-law (7) or 16-bit PCM (1)")),
                };
            }
            _ => {}
        }
        pos = body_start + len + (len & 1);
    }
    Err("no data chunk".into())
}

/// A WAV image (format tag 7, μ-law, 8 kHz mono) of `mulaw`, playable by common players.
pub fn wav_bytes(mulaw: &[u8]) -> Vec<u8> {
    let data_len = mulaw.len() as u32;
    let mut out = Vec::with_capacity(58 + mulaw.len() + 1);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 12 + 8 + data_len + (data_len & 1)).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes()); // bytes per second
    out.extend_from_slice(&1u16.to_le_bytes()); // block align
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(mulaw);
    if data_len & 1 == 1 {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trips_every_code() {
        assert_eq!(encode(0), SILENCE);
        for code in 0u8..=255 {
            let linear = decode(code);
            let back = encode(linear);
            // 0x7F and 0xFF both decode to 0 (negative and positive zero).
            assert!(back == code || (linear == 0 && back == SILENCE), "{code:#x} -> {linear} -> {back:#x}");
        }
        assert_eq!(decode(0x00), -32124);
        assert_eq!(decode(0x80), 32124);
    }

    #[test]
    fn tone_is_voiced_and_silence_is_not() {
        let t = tone(440.0, 20, 0.3);
        assert_eq!(t.len(), FRAME_BYTES);
        assert!(is_voiced(&t));
        assert!(!is_voiced(&silence(FRAME_BYTES)));
    }

    #[test]
    fn wav_round_trip() {
        let t = tone(300.0, 30, 0.5);
        assert_eq!(parse_wav(&wav_bytes(&t)).unwrap(), t);
        assert!(parse_wav(b"RIFF\0\0\0\0WAVE").is_err());
    }
}
