//! μ-law audio where the bytes matter: decoding (G.711), an energy measure for silence and
//! voice detection, and the hold ring for caller audio that arrives before OpenAI is ready.
//!
//! The relay itself never decodes: Twilio's base64 μ-law goes to OpenAI unchanged. Decoding is
//! for the hold ring (audio buffered while the upstream connects or reconnects), the gateway's
//! own commit policy when server VAD is off, and silence detection.

use heapless::Deque;

/// G.711 μ-law → 16-bit linear PCM, for every code.
pub const ULAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let u = !(i as u8);
        let sign = u & 0x80;
        let exponent = (u >> 4) & 0x07;
        let mantissa = (u & 0x0f) as i32;
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        table[i] = if sign != 0 { -magnitude as i16 } else { magnitude as i16 };
        i += 1;
    }
    table
};

/// Mean square of the decoded samples (0 for empty input): the energy of a chunk. Compare
/// chunks of equal length, or use [`rms`].
pub fn mean_square(ulaw: &[u8]) -> u64 {
    if ulaw.is_empty() {
        return 0;
    }
    let sum: u64 = ulaw
        .iter()
        .map(|&c| {
            let s = i64::from(ULAW_TO_LINEAR[usize::from(c)]);
            (s * s) as u64
        })
        .sum();
    sum / ulaw.len() as u64
}

/// Root mean square amplitude, 0.0 (silence) to 1.0 (full scale).
pub fn rms(ulaw: &[u8]) -> f32 {
    (mean_square(ulaw) as f64).sqrt() as f32 / 32768.0
}

/// Bytes of μ-law per millisecond at 8 kHz.
pub const BYTES_PER_MS: usize = 8;

/// Length in bytes of the audio a base64 string encodes (no decoding). `None` if the length is
/// not a multiple of 4.
pub fn base64_decoded_len(b64: &[u8]) -> Option<usize> {
    if !b64.len().is_multiple_of(4) {
        return None;
    }
    let pad = b64.iter().rev().take(2).filter(|&&c| c == b'=').count();
    Some(b64.len() / 4 * 3 - pad)
}

/// Size of one hold-ring slot: 20 ms, Twilio's usual chunk.
pub const SLOT_BYTES: usize = 160;

#[derive(Debug, Clone, Copy)]
struct Slot {
    len: u8,
    data: [u8; SLOT_BYTES],
}

/// What to do when the hold ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPolicy {
    /// Drop the oldest audio to keep the newest (the caller's latest words matter most once
    /// OpenAI is back).
    Oldest,
    /// Keep the oldest audio and refuse what does not fit.
    Newest,
}

/// Audio dropped because the ring was full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    /// Bytes of μ-law dropped (8 per ms).
    pub bytes: u64,
    /// Times a push had to drop something.
    pub events: u64,
}

/// Caller audio held while the upstream is not ready: `N` slots of 20 ms, allocated with the
/// call, never grown. When full, the [`DropPolicy`] applies and the loss is counted.
#[derive(Debug)]
pub struct HoldRing<const N: usize> {
    slots: Deque<Slot, N>,
    /// Bytes already taken from the front slot.
    front_taken: usize,
    len: usize,
    policy: DropPolicy,
    dropped: DropStats,
}

impl<const N: usize> HoldRing<N> {
    /// An empty ring (box it: `N` × 161 bytes).
    pub fn new(policy: DropPolicy) -> Self {
        Self { slots: Deque::new(), front_taken: 0, len: 0, policy, dropped: DropStats::default() }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Milliseconds of audio held.
    pub fn held_ms(&self) -> usize {
        self.len / BYTES_PER_MS
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> DropStats {
        self.dropped
    }

    /// Most bytes the ring can hold.
    pub const fn capacity(&self) -> usize {
        N * SLOT_BYTES
    }

    /// Appends audio (any length), applying the drop policy when full.
    pub fn push(&mut self, mut audio: &[u8]) {
        let mut dropped_now = 0u64;
        // Top up the last slot first so short chunks do not waste slots.
        if let Some(last) = self.slots.back_mut() {
            let room = SLOT_BYTES - usize::from(last.len);
            let n = room.min(audio.len());
            let start = usize::from(last.len);
            last.data[start..start + n].copy_from_slice(&audio[..n]);
            last.len += n as u8;
            self.len += n;
            audio = &audio[n..];
        }
        while !audio.is_empty() {
            let n = audio.len().min(SLOT_BYTES);
            let mut slot = Slot { len: n as u8, data: [0; SLOT_BYTES] };
            slot.data[..n].copy_from_slice(&audio[..n]);
            if self.slots.is_full() {
                match self.policy {
                    DropPolicy::Newest => {
                        dropped_now += audio.len() as u64;
                        break;
                    }
                    DropPolicy::Oldest => {
                        let old = self.slots.pop_front().expect("full ring has a front");
                        let lost = usize::from(old.len) - self.front_taken;
                        self.front_taken = 0;
                        self.len -= lost;
                        dropped_now += lost as u64;
                    }
                }
            }
            // Cannot fail: room was made above.
            let _ = self.slots.push_back(slot);
            self.len += n;
            audio = &audio[n..];
        }
        if dropped_now > 0 {
            self.dropped.bytes += dropped_now;
            self.dropped.events += 1;
        }
    }

    /// Moves up to `out.len()` held bytes, oldest first, into `out`; returns how many.
    pub fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let mut written = 0;
        while written < out.len() {
            let Some(front) = self.slots.front() else { break };
            let available = &front.data[self.front_taken..usize::from(front.len)];
            let n = available.len().min(out.len() - written);
            out[written..written + n].copy_from_slice(&available[..n]);
            written += n;
            self.front_taken += n;
            if self.front_taken == usize::from(front.len) {
                self.slots.pop_front();
                self.front_taken = 0;
            }
        }
        self.len -= written;
        written
    }

    /// Forgets everything held (e.g. the caller hung up before OpenAI answered).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.front_taken = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_table_matches_g711() {
        // Reference points of G.711 μ-law.
        assert_eq!(ULAW_TO_LINEAR[0xff], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7f], 0);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0xfe], 8);
        assert_eq!(ULAW_TO_LINEAR[0x7e], -8);
        // Symmetric and monotonic within each half.
        for i in 0..128 {
            assert_eq!(ULAW_TO_LINEAR[i], -ULAW_TO_LINEAR[i + 128]);
        }
        for i in 1..128 {
            assert!(ULAW_TO_LINEAR[i] > ULAW_TO_LINEAR[i - 1]);
        }
    }

    #[test]
    fn energy_separates_silence_from_tone() {
        assert_eq!(rms(&[0xff; 160]), 0.0);
        let loud: Vec<u8> = (0..160).map(|i| if i % 2 == 0 { 0x80 } else { 0x00 }).collect();
        assert!(rms(&loud) > 0.9);
        assert_eq!(mean_square(&[]), 0);
    }

    #[test]
    fn decoded_length_without_decoding() {
        assert_eq!(
            base64_decoded_len(&[b'A'; 216][..214].iter().chain(b"==").copied().collect::<Vec<_>>()),
            Some(160)
        );
        assert_eq!(base64_decoded_len(b"AAAA"), Some(3));
        assert_eq!(base64_decoded_len(b"AAA="), Some(2));
        assert_eq!(base64_decoded_len(b"AAA"), None);
        assert_eq!(base64_decoded_len(b""), Some(0));
    }

    #[test]
    fn ring_keeps_order_across_odd_sizes() {
        let mut ring = HoldRing::<4>::new(DropPolicy::Oldest);
        let audio: Vec<u8> = (0..400u32).map(|i| i as u8).collect();
        ring.push(&audio[..7]);
        ring.push(&audio[7..300]);
        ring.push(&audio[300..400]);
        assert_eq!(ring.len(), 400);
        let mut out = [0u8; 123];
        let mut back = Vec::new();
        loop {
            let n = ring.pop_into(&mut out);
            if n == 0 {
                break;
            }
            back.extend_from_slice(&out[..n]);
        }
        assert_eq!(back, audio);
        assert!(ring.is_empty());
    }

    #[test]
    fn full_ring_drops_oldest_and_counts() {
        let mut ring = HoldRing::<2>::new(DropPolicy::Oldest);
        ring.push(&[1; 160]);
        ring.push(&[2; 160]);
        ring.push(&[3; 160]);
        assert_eq!(ring.dropped(), DropStats { bytes: 160, events: 1 });
        let mut out = [0u8; 320];
        assert_eq!(ring.pop_into(&mut out), 320);
        assert_eq!(&out[..160], &[2; 160]);
        assert_eq!(&out[160..], &[3; 160]);
    }

    #[test]
    fn full_ring_drops_newest_and_counts() {
        let mut ring = HoldRing::<2>::new(DropPolicy::Newest);
        ring.push(&[1; 320]);
        ring.push(&[2; 100]);
        assert_eq!(ring.dropped(), DropStats { bytes: 100, events: 1 });
        assert_eq!(ring.len(), 320);
        assert_eq!(ring.capacity(), 320);
    }
}
