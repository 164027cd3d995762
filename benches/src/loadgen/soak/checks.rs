//! What the soak checks across the two legs of one call, which neither party can check alone:
//! every barge-in the stand-in starts while agent audio is unplayed draws a Twilio `clear`, and
//! the gateway's `conversation.item.truncate` stays within what the caller had *played* when the
//! `clear` came (the real server only checks against what the item holds: that check is the
//! stand-in's, see `script.rs`).
//!
//! The caller and the stand-in session of a call live in the same event loop; they meet here,
//! by the call's index in the run. The two sides of a barge-in may arrive in either order
//! (the `clear` on the caller's socket, the truncate on the session's), so each is kept until
//! the other comes; [`Checks::sweep`] counts a barge-in whose `clear` never came.

use serde::Serialize;

/// Longest wait for the `clear` after a barge-in (ns).
const CLEAR_WAIT_NS: u64 = 2_000_000_000;

/// Results of the cross-leg checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckCounts {
    /// Barge-ins the stand-in started with agent audio unplayed.
    pub barge_ins: u64,
    /// Of those, answered by a `clear` on the caller's leg.
    pub cleared: u64,
    /// Of those, with no `clear` within 2 s (must be 0).
    pub not_cleared: u64,
    /// Of those, void before their `clear` could come: the call ended or its OpenAI session
    /// dropped right after (`cleared + voided + not_cleared == barge_ins` once the run is over).
    pub voided: u64,
    /// `clear`s with no barge-in pending (must be 0).
    pub clears_unasked: u64,
    /// Truncates compared with what the caller had played.
    pub truncates_checked: u64,
    /// Truncates beyond what the caller had played when the `clear` came (must be 0).
    pub truncates_beyond_played: u64,
    /// Truncates outside a barge-in (no `clear` to compare with).
    pub truncates_unpaired: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct CallCheck {
    /// A barge-in started at this time (ns) and its `clear` has not come yet.
    barge_at: Option<u64>,
    /// The `clear` came; the caller had played this much of the response (ms).
    played_at_clear: Option<u32>,
    /// A truncate to check against the next `clear` (ms).
    truncate_ms: Option<u32>,
}

/// Per-call state of the checks, by the call's index in the run.
#[derive(Debug, Default)]
pub struct Checks {
    calls: Vec<CallCheck>,
    /// What the checks found.
    pub counts: CheckCounts,
}

impl Checks {
    /// For calls `0..calls`.
    pub fn new(calls: usize) -> Self {
        Self { calls: vec![CallCheck::default(); calls], counts: CheckCounts::default() }
    }

    fn get(&mut self, call: u32) -> Option<&mut CallCheck> {
        self.calls.get_mut(call as usize)
    }

    /// The stand-in sent `speech_started` for `call` while agent audio was unplayed.
    pub fn barge_in(&mut self, call: u32, now_ns: u64) {
        let Some(c) = self.get(call) else { return };
        *c = CallCheck { barge_at: Some(now_ns), ..CallCheck::default() };
        self.counts.barge_ins += 1;
    }

    /// The caller got a `clear`, having played `played_ms` of the response's audio.
    pub fn clear(&mut self, call: u32, played_ms: u32) {
        let Some(c) = self.calls.get_mut(call as usize) else { return };
        if c.barge_at.take().is_none() {
            self.counts.clears_unasked += 1;
            return;
        }
        self.counts.cleared += 1;
        c.played_at_clear = Some(played_ms);
        if let Some(t) = c.truncate_ms.take() {
            Self::compare(&mut self.counts, c, t);
        }
    }

    /// The stand-in got a truncate at `audio_end_ms` for `call`.
    pub fn truncate(&mut self, call: u32, audio_end_ms: u32) {
        let Some(c) = self.calls.get_mut(call as usize) else { return };
        if c.played_at_clear.is_some() {
            Self::compare(&mut self.counts, c, audio_end_ms);
        } else if c.barge_at.is_some() {
            c.truncate_ms = Some(audio_end_ms);
        } else {
            self.counts.truncates_unpaired += 1;
        }
    }

    fn compare(counts: &mut CheckCounts, c: &mut CallCheck, audio_end_ms: u32) {
        let played = c.played_at_clear.take().unwrap_or(0);
        counts.truncates_checked += 1;
        if audio_end_ms > played {
            counts.truncates_beyond_played += 1;
        }
    }

    /// The call ended or its session was dropped: a pending barge-in is void.
    pub fn forget(&mut self, call: u32) {
        let Some(c) = self.calls.get_mut(call as usize) else { return };
        if c.barge_at.is_some() {
            self.counts.voided += 1;
        }
        *c = CallCheck::default();
    }

    /// Counts barge-ins whose `clear` is overdue at `now_ns` (call about every 10 ms).
    pub fn sweep(&mut self, now_ns: u64) {
        for c in &mut self.calls {
            if c.barge_at.is_some_and(|at| now_ns > at + CLEAR_WAIT_NS) {
                *c = CallCheck::default();
                self.counts.not_cleared += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_barge_in_pairs_its_clear_and_truncate_in_either_order() {
        let mut k = Checks::new(2);
        k.barge_in(0, 0);
        k.truncate(0, 120);
        k.clear(0, 140);
        k.barge_in(1, 0);
        k.clear(1, 100);
        k.truncate(1, 160);
        let c = k.counts;
        assert_eq!((c.barge_ins, c.cleared, c.truncates_checked), (2, 2, 2));
        assert_eq!(c.truncates_beyond_played, 1, "call 1 truncated at 160 ms, 100 played");
        assert_eq!((c.not_cleared, c.clears_unasked, c.truncates_unpaired), (0, 0, 0));
    }

    #[test]
    fn a_missing_clear_an_unasked_clear_and_a_lone_truncate_are_counted() {
        let mut k = Checks::new(1);
        k.barge_in(0, 1_000);
        k.sweep(2_000_000_000);
        assert_eq!(k.counts.not_cleared, 0, "not overdue yet");
        k.sweep(3_000_000_001);
        assert_eq!(k.counts.not_cleared, 1);
        k.clear(0, 0);
        assert_eq!(k.counts.clears_unasked, 1);
        k.truncate(0, 10);
        assert_eq!(k.counts.truncates_unpaired, 1);
        k.barge_in(0, 0);
        k.forget(0);
        k.sweep(u64::MAX);
        assert_eq!(k.counts.not_cleared, 1, "a forgotten barge-in is void");
        assert_eq!(k.counts.voided, 1);
        k.truncate(7, 1); // an unknown call is ignored
    }
}
