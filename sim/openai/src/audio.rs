//! Audio as the Realtime API carries it: G.711 μ-law and A-law at 8 kHz, 16-bit PCM at 24 kHz
//! (little endian), the three `format` types of a GA session (`audio/pcmu`, `audio/pcma`,
//! `audio/pcm`).
//!
//! The simulator decodes appended audio for its voice-activity detection and encodes scripted
//! replies into the session's output format. The helpers that make test audio (tones, silence)
//! are public so consumers build inputs the simulator will hear as speech or as silence.

use serde_json::{Value, json};

/// One of the GA session audio formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioFormat {
    /// `{"type":"audio/pcmu"}`: G.711 μ-law, 8 kHz mono (Twilio's format).
    Pcmu,
    /// `{"type":"audio/pcma"}`: G.711 A-law, 8 kHz mono.
    Pcma,
    /// `{"type":"audio/pcm","rate":24000}`: 16-bit little-endian PCM, 24 kHz mono (the API's
    /// default).
    #[default]
    Pcm24k,
}

impl AudioFormat {
    /// Reads a session `format` object (`{"type":"audio/pcmu"}`…); `None` or an unknown type
    /// gives `None`.
    pub fn from_json(v: &Value) -> Option<Self> {
        match v.get("type").and_then(Value::as_str) {
            Some("audio/pcmu") => Some(Self::Pcmu),
            Some("audio/pcma") => Some(Self::Pcma),
            Some("audio/pcm") => Some(Self::Pcm24k),
            _ => None,
        }
    }

    /// The session `format` object for this format.
    pub fn to_json(self) -> Value {
        match self {
            Self::Pcmu => json!({"type": "audio/pcmu"}),
            Self::Pcma => json!({"type": "audio/pcma"}),
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }

    /// Samples per second.
    pub fn sample_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Pcm24k => 24000,
        }
    }

    /// Bytes per millisecond of audio (8 for G.711, 48 for 24 kHz PCM16).
    pub fn bytes_per_ms(self) -> usize {
        match self {
            Self::Pcmu | Self::Pcma => 8,
            Self::Pcm24k => 48,
        }
    }

    /// Duration in whole milliseconds of `bytes` of this format.
    pub fn ms_of(self, bytes: usize) -> u64 {
        (bytes / self.bytes_per_ms()) as u64
    }

    /// Decodes to linear samples (a trailing odd byte of PCM16 is ignored).
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Self::Pcmu => bytes.iter().map(|&b| ulaw_to_linear(b)).collect(),
            Self::Pcma => bytes.iter().map(|&b| alaw_to_linear(b)).collect(),
            Self::Pcm24k => bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect(),
        }
    }

    /// Encodes linear samples taken at this format's own rate.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => samples.iter().map(|&s| linear_to_ulaw(s)).collect(),
            Self::Pcma => samples.iter().map(|&s| linear_to_alaw(s)).collect(),
            Self::Pcm24k => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    /// Converts 8 kHz μ-law into this format (24 kHz by linear interpolation).
    pub fn from_ulaw(self, ulaw: &[u8]) -> Vec<u8> {
        match self {
            Self::Pcmu => ulaw.to_vec(),
            Self::Pcma => ulaw.iter().map(|&b| linear_to_alaw(ulaw_to_linear(b))).collect(),
            Self::Pcm24k => {
                let s: Vec<i16> = ulaw.iter().map(|&b| ulaw_to_linear(b)).collect();
                let mut out = Vec::with_capacity(s.len() * 6);
                for (i, &a) in s.iter().enumerate() {
                    let b = s.get(i + 1).copied().unwrap_or(a);
                    for k in 0..3i32 {
                        let v = (i32::from(a) * (3 - k) + i32::from(b) * k) / 3;
                        out.extend_from_slice(&(v as i16).to_le_bytes());
                    }
                }
                out
            }
        }
    }
}

/// Why a WAV file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// Another encoding than 16-bit PCM mono.
    #[error("unsupported WAV encoding: convert to 16-bit PCM mono (e.g. `sox in.wav -b 16 -c 1 out.wav`)")]
    Unsupported,
    /// No `fmt ` or `data` chunk.
    #[error("truncated WAV file: no fmt or data chunk")]
    Truncated,
}

/// A 16-bit PCM mono WAV file: its samples and sample rate.
pub fn read_wav(bytes: &[u8]) -> Result<(Vec<i16>, u32), WavError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12;
    let mut rate = None;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let body = bytes.get(at + 8..(at + 8).saturating_add(len).min(bytes.len())).unwrap_or_default();
        match &head[..4] {
            b"fmt " => {
                let field = |i: usize| body.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
                if body.len() < 16 || field(0) != Some(1) || field(2) != Some(1) || field(14) != Some(16) {
                    return Err(WavError::Unsupported);
                }
                rate = Some(u32::from_le_bytes([body[4], body[5], body[6], body[7]]));
            }
            b"data" => {
                let rate = rate.filter(|r| *r > 0).ok_or(WavError::Truncated)?;
                let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
                return Ok((samples, rate));
            }
            _ => {}
        }
        at = at.saturating_add(8 + len + (len & 1));
    }
    Err(WavError::Truncated)
}

/// A 16-bit PCM mono WAV file of `samples` at `rate` (what [`read_wav`] reads back). Header
/// fields that cannot hold their value (a byte rate above 4 GiB/s for a rate above 2³¹ Hz, sizes
/// of 4 GiB and more) are written as `u32::MAX`, as RIFF writers do for oversized data.
pub fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len().saturating_mul(2)).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.saturating_mul(2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    out
}

/// Linear samples at `rate` → μ-law 8 kHz (linear interpolation), scaled by `gain`.
pub fn to_ulaw_8k(samples: &[i16], rate: u32, gain: f32) -> Vec<u8> {
    if samples.is_empty() || rate == 0 {
        return Vec::new();
    }
    let n = samples.len() * 8000 / rate as usize;
    let last = samples.len() - 1;
    (0..n)
        .map(|i| {
            let x = i as f64 * f64::from(rate) / 8000.0;
            let (k, f) = (x as usize, x.fract());
            let a = f64::from(samples[k.min(last)]);
            let b = f64::from(samples[(k + 1).min(last)]);
            let v = (a + (b - a) * f) * f64::from(gain);
            linear_to_ulaw(v.clamp(-32768.0, 32767.0) as i16)
        })
        .collect()
}

/// G.711 μ-law code → 16-bit linear sample.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 { -magnitude as i16 } else { magnitude as i16 }
}

/// 16-bit linear sample → G.711 μ-law code.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut x = i32::from(sample);
    let sign = if x < 0 {
        x = -x;
        0x80u8
    } else {
        0
    };
    x = x.min(CLIP) + BIAS;
    let v = ((x >> 7) & 0xff) as u32;
    let exponent = if v == 0 { 0 } else { 31 - v.leading_zeros() };
    let mantissa = ((x >> (exponent + 3)) & 0x0f) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

/// G.711 A-law code → 16-bit linear sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & 0x0f) << 4;
    let seg = i32::from((a & 0x70) >> 4);
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

/// 16-bit linear sample → G.711 A-law code.
pub fn linear_to_alaw(sample: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xd5u8
    } else {
        pcm = -pcm - 1;
        0x55u8
    };
    match SEG_END.iter().position(|&end| pcm <= end) {
        None => 0x7f ^ mask,
        Some(seg) => {
            let shift = if seg < 2 { 1 } else { seg as i32 };
            let aval = ((seg as u8) << 4) | ((pcm >> shift) & 0x0f) as u8;
            aval ^ mask
        }
    }
}

/// Root-mean-square level of linear samples, 0.0 (silence) to 1.0 (full scale).
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    ((sum / samples.len() as f64).sqrt() / 32768.0) as f32
}

/// A sine tone as linear samples at `rate` Hz: `ms` milliseconds at `hz`, peak `amplitude`
/// (0.0–1.0 of full scale).
pub fn tone_linear(hz: f32, ms: u32, amplitude: f32, rate: u32) -> Vec<i16> {
    let n = (rate as usize * ms as usize) / 1000;
    let peak = f64::from(amplitude.clamp(0.0, 1.0)) * 32767.0;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (peak * (2.0 * std::f64::consts::PI * f64::from(hz) * t).sin()) as i16
        })
        .collect()
}

/// A μ-law 8 kHz sine tone: loud enough (amplitude 0.3 and up) to be heard as speech by the
/// simulator's VAD at the default threshold.
pub fn tone_ulaw(hz: f32, ms: u32, amplitude: f32) -> Vec<u8> {
    AudioFormat::Pcmu.encode(&tone_linear(hz, ms, amplitude, 8000))
}

/// `ms` milliseconds of μ-law digital silence (code `0xFF`).
pub fn silence_ulaw(ms: u32) -> Vec<u8> {
    vec![0xff; 8 * ms as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trips_every_code_but_negative_zero() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            // 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
            if code == 0x7f {
                assert_eq!(back, 0xff);
            } else {
                assert_eq!(back, code, "code {code:#x}");
            }
        }
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "code {code:#x}");
        }
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
    }

    #[test]
    fn encoders_are_close_on_a_ramp() {
        for s in (-32768i32..32768).step_by(97) {
            let s = s as i16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let tol = (i32::from(s).abs() / 16).max(16);
            assert!((u - i32::from(s)).abs() <= tol * 2, "ulaw {s} -> {u}");
            assert!((a - i32::from(s)).abs() <= tol * 2, "alaw {s} -> {a}");
        }
    }

    #[test]
    fn wav_files_are_read_and_resampled() {
        let tone = tone_linear(440.0, 100, 0.5, 16_000);
        let mut wav = wav_bytes(&tone, 16_000);
        let (samples, rate) = read_wav(&wav).unwrap();
        assert_eq!((samples.len(), rate), (1600, 16_000));
        let ulaw = to_ulaw_8k(&samples, rate, 1.0);
        assert_eq!(ulaw.len(), 800);
        assert!((rms(&AudioFormat::Pcmu.decode(&ulaw)) - 0.35).abs() < 0.02);
        assert_eq!(read_wav(b"RIFF----WAVE"), Err(WavError::Truncated));
        assert_eq!(read_wav(b"nope"), Err(WavError::NotWav));
        wav[22] = 2; // stereo
        assert_eq!(read_wav(&wav), Err(WavError::Unsupported));
    }

    /// Found by the `wav` fuzz target (its first minute): a file read with a rate above 2³¹ Hz
    /// could not be written again (`rate * 2`, the byte rate, overflowed and panicked).
    #[test]
    fn any_rate_read_can_be_written_again() {
        let samples = [1i16, -2, 3];
        for rate in [1, 0x7fff_ffff, 0xe8e8_e8e8, u32::MAX] {
            assert_eq!(read_wav(&wav_bytes(&samples, rate)), Ok((samples.to_vec(), rate)), "{rate}");
        }
    }

    #[test]
    fn formats_convert_and_measure() {
        let tone = tone_ulaw(440.0, 100, 0.5);
        assert_eq!(tone.len(), 800);
        assert_eq!(AudioFormat::Pcmu.ms_of(tone.len()), 100);
        let pcm = AudioFormat::Pcm24k.from_ulaw(&tone);
        assert_eq!(AudioFormat::Pcm24k.ms_of(pcm.len()), 100);
        let level = rms(&AudioFormat::Pcm24k.decode(&pcm));
        assert!((0.3..0.4).contains(&level), "{level}");
        assert_eq!(rms(&AudioFormat::Pcmu.decode(&silence_ulaw(20))), 0.0);
        let alaw = AudioFormat::Pcma.from_ulaw(&tone);
        assert!((rms(&AudioFormat::Pcma.decode(&alaw)) - rms(&AudioFormat::Pcmu.decode(&tone))).abs() < 0.01);
        assert_eq!(AudioFormat::from_json(&AudioFormat::Pcma.to_json()), Some(AudioFormat::Pcma));
    }
}
