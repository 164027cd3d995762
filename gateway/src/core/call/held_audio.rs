//! The caller's audio while OpenAI cannot take it (before its socket opens, during a
//! reconnect, a GPT-Live session waiting for answering-machine detection): a [`HoldRing`] of
//! [`HOLD_SLOTS`] slots (5 s), allocated only when something must actually be held and given
//! back once it has all gone out. Most calls never need it — OpenAI is usually open before
//! Twilio's first frame — so they never pay its 40 KiB; a reconnect allocates it once, outside
//! the steady frame path. What it had to drop is remembered across
//! releases.

use crate::core::audio::{DropPolicy, DropStats, HoldRing};

/// Slots of the hold ring: 250 × 20 ms = 5 s of caller audio kept through a connect or a
/// reconnect (the oldest dropped, and counted, beyond that): the default answering-machine
/// hold (`AMD_HOLD_MS`, 4 s, during which a GPT-Live session waits) plus a second for the
/// session to start.
pub const HOLD_SLOTS: usize = 250;

/// Milliseconds of caller audio the hold ring keeps.
pub const HOLD_MS: u64 = HOLD_SLOTS as u64 * 20;

/// Caller audio held, or nothing allocated.
#[derive(Debug, Default)]
pub(crate) struct HeldAudio {
    ring: Option<Box<HoldRing<HOLD_SLOTS>>>,
    /// Drops of rings already released.
    dropped_before: DropStats,
}

impl HeldAudio {
    /// Whether nothing is held.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.as_ref().is_none_or(|r| r.is_empty())
    }

    /// Milliseconds held.
    pub(crate) fn held_ms(&self) -> usize {
        self.ring.as_ref().map_or(0, |r| r.held_ms())
    }

    /// Everything dropped so far (ring full).
    pub(crate) fn dropped(&self) -> DropStats {
        let now = self.ring.as_ref().map(|r| r.dropped()).unwrap_or_default();
        DropStats {
            bytes: self.dropped_before.bytes + now.bytes,
            events: self.dropped_before.events + now.events,
        }
    }

    /// Holds `audio` (μ-law), allocating the ring on first use.
    pub(crate) fn push(&mut self, audio: &[u8]) {
        if audio.is_empty() {
            return;
        }
        self.ring.get_or_insert_with(|| Box::new(HoldRing::new(DropPolicy::Oldest))).push(audio);
    }

    /// Takes up to `out.len()` bytes from the front; releases the ring once it is empty.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let Some(ring) = self.ring.as_mut() else { return 0 };
        let n = ring.pop_into(out);
        if ring.is_empty() {
            self.release();
        }
        n
    }

    /// Forgets what is held (and the ring with it).
    pub(crate) fn clear(&mut self) {
        self.release();
    }

    fn release(&mut self) {
        if let Some(ring) = self.ring.take() {
            let d = ring.dropped();
            self.dropped_before.bytes += d.bytes;
            self.dropped_before.events += d.events;
        }
    }

    /// Whether a ring is allocated (for tests of the memory a call keeps).
    #[cfg(test)]
    fn allocated(&self) -> bool {
        self.ring.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_exists_only_while_audio_is_held_and_drops_are_remembered() {
        let mut h = HeldAudio::default();
        assert!(h.is_empty() && !h.allocated());
        h.push(&[1; 160 * (HOLD_SLOTS + 10)]);
        assert!(h.allocated());
        assert_eq!(h.held_ms(), HOLD_SLOTS * 20);
        assert_eq!(h.dropped().bytes, 1600, "the oldest 200 ms dropped");
        let mut out = [0u8; 1000];
        while h.pop_into(&mut out) > 0 {}
        assert!(h.is_empty() && !h.allocated(), "drained: memory given back");
        assert_eq!(h.dropped().bytes, 1600, "and the loss still counted");
        h.push(&[2; 320]);
        h.clear();
        assert!(!h.allocated());
    }
}
