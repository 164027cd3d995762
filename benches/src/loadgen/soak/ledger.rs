//! Frame accounting of one call under injected faults: which frames that never came back were
//! cut by a fault the soak injected, and which were lost.
//!
//! # The rule (also in `benches/README.md`, "Soak")
//! A frame is *relayed* when it comes back to the call that sent it (a later `clear` does not
//! un-relay it). At a fault the call opens a window of frame sequence numbers:
//! - **hang-up** (the caller sends `stop` and closes at a random time): the window starts at the
//!   lowest frame not back at that instant and runs to the call's last frame (none is sent
//!   after);
//! - **OpenAI drop** (the stand-in resets a session's socket): the window starts at the lowest
//!   frame not back at that instant and ends at the first frame sent at or after the drop that
//!   comes back (from then on the new session relays; the gateway held what came meanwhile).
//!   A window still open when the call ends runs to its last frame.
//!
//! When the call ends, every frame that never came back is *cut* by the kind of the first
//! window holding it, or *lost* if none does. Lost must be 0. Nothing here runs per frame but
//! [`Ledger::on_back`], a single branch while no drop window is open.

use serde::Serialize;

/// A frame not back this long after it was sent is no longer in flight: a fault does not
/// excuse it (round trips on loopback are milliseconds; one second is a wide margin).
pub const FLIGHT_MS: u32 = 1000;

/// A fault the soak injects into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller hung up (`stop`, close) in the middle of the call.
    HangUp,
    /// The stand-in reset the call's OpenAI session.
    OpenAiDrop,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    kind: Fault,
    lo: u32,
    /// Exclusive; `u32::MAX` while open.
    hi: u32,
    /// Frames from this one on were sent after the fault.
    after: u32,
}

/// Frames that never came back, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Settled {
    /// Cut by a hang-up.
    pub cut_by_hangup: u64,
    /// Cut by an OpenAI drop.
    pub cut_by_openai_drop: u64,
    /// In no fault window.
    pub lost: u64,
}

/// One call's fault windows.
#[derive(Debug, Default)]
pub struct Ledger {
    windows: Vec<Window>,
    open_drops: u32,
    /// No frame below this one is missing (advanced lazily, at faults).
    first_missing: u32,
}

fn is_set(seen: &[u64], seq: u32) -> bool {
    seen.get((seq / 64) as usize).is_some_and(|w| w & (1 << (seq % 64)) != 0)
}

impl Ledger {
    /// A fault now; `seen` holds one bit per frame back, `next_seq` frames were sent, the last
    /// `flight` of them less than [`FLIGHT_MS`] ago.
    pub fn open(&mut self, kind: Fault, seen: &[u64], next_seq: u32, flight: u32) {
        while self.first_missing < next_seq && is_set(seen, self.first_missing) {
            self.first_missing += 1;
        }
        let lo = self.first_missing.max(next_seq.saturating_sub(flight));
        if kind == Fault::OpenAiDrop {
            self.open_drops += 1;
        }
        self.windows.push(Window { kind, lo, hi: u32::MAX, after: next_seq });
    }

    /// Frame `seq` came back: it closes the open drop windows it was sent after.
    #[inline]
    pub fn on_back(&mut self, seq: u32) {
        if self.open_drops == 0 {
            return;
        }
        for w in &mut self.windows {
            if w.kind == Fault::OpenAiDrop && w.hi == u32::MAX && seq >= w.after {
                w.hi = seq;
                self.open_drops -= 1;
            }
        }
    }

    /// Whether a drop window is still open (the call's relay has not recovered yet).
    pub fn drop_open(&self) -> bool {
        self.open_drops > 0
    }

    /// Sorts the frames of a call that sent `next_seq` frames and is over.
    pub fn settle(&self, seen: &[u64], next_seq: u32) -> Settled {
        let mut s = Settled::default();
        for seq in self.first_missing.min(next_seq)..next_seq {
            if is_set(seen, seq) {
                continue;
            }
            match self.windows.iter().find(|w| w.lo <= seq && seq < w.hi) {
                Some(w) if w.kind == Fault::HangUp => s.cut_by_hangup += 1,
                Some(_) => s.cut_by_openai_drop += 1,
                None => s.lost += 1,
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(back: &[u32]) -> Vec<u64> {
        let mut v = vec![0u64; 4];
        for &s in back {
            v[(s / 64) as usize] |= 1 << (s % 64);
        }
        v
    }

    #[test]
    fn no_fault_means_every_missing_frame_is_lost() {
        let l = Ledger::default();
        let s = l.settle(&seen(&[0, 1, 3]), 5);
        assert_eq!(s, Settled { lost: 2, ..Settled::default() });
    }

    #[test]
    fn a_hang_up_excuses_what_was_in_flight_and_nothing_before() {
        let mut l = Ledger::default();
        // 0..10 sent; 2 never came back (lost: sent long before), 8 and 9 in flight (the last
        // 4 frames were sent less than FLIGHT_MS ago) when the caller hung up.
        let back: Vec<u32> = (0..8).filter(|&s| s != 2).collect();
        l.open(Fault::HangUp, &seen(&back), 10, 4);
        let s = l.settle(&seen(&back), 10);
        assert_eq!(s, Settled { cut_by_hangup: 2, lost: 1, ..Settled::default() });
        // Had 2 been sent within the flight time, it would have been in flight too.
        let mut l = Ledger::default();
        l.open(Fault::HangUp, &seen(&back), 10, 50);
        assert_eq!(l.settle(&seen(&back), 10), Settled { cut_by_hangup: 3, ..Settled::default() });
    }

    #[test]
    fn a_drop_window_closes_at_the_first_frame_sent_after_it_that_comes_back() {
        let mut l = Ledger::default();
        let mut back: Vec<u32> = (0..20).collect();
        // Drop when 0..=21 were sent and 0..=19 back: 20, 21 in flight.
        l.open(Fault::OpenAiDrop, &seen(&back), 22, 50);
        assert!(l.drop_open());
        // 22 and 23 went into the dead socket; 24 was held and came back; 21 came back late.
        for s in [21, 24, 25] {
            l.on_back(s);
            back.push(s);
        }
        assert!(!l.drop_open());
        // 26 was sent after recovery and never came back: lost.
        let s = l.settle(&seen(&back), 27);
        assert_eq!(s, Settled { cut_by_openai_drop: 3, lost: 1, ..Settled::default() });
    }

    #[test]
    fn a_drop_never_recovered_runs_to_the_last_frame_and_a_hang_up_counts_first() {
        let mut l = Ledger::default();
        l.open(Fault::OpenAiDrop, &seen(&[0, 1]), 3, 50);
        l.open(Fault::HangUp, &seen(&[0, 1]), 5, 50);
        let s = l.settle(&seen(&[0, 1]), 5);
        assert_eq!(s, Settled { cut_by_openai_drop: 3, ..Settled::default() }, "the first window wins");
        let l = Ledger::default();
        assert_eq!(l.settle(&[], 0), Settled::default());
    }
}
