//! Deadlines of every call on one engine: a min-heap of `(when, call)`, lazily cleaned. A call
//! pushes a deadline only when it is earlier than the one it has armed (a later one waits for
//! the armed one to fire, which re-arms); an entry that no longer matches the call's armed
//! deadline (superseded, or the call ended) is skipped when popped. About one entry per call:
//! the capacity reserved up front is kept, so arming does not allocate on the frame path.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A call's place in the engine and its generation.
pub(super) type SlotKey = (u32, u32);

/// Pending deadlines.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, SlotKey)>>,
}

impl Timers {
    /// Room for `n` entries without allocating.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self { heap: BinaryHeap::with_capacity(n) }
    }

    /// Adds a deadline for `slot`.
    pub(super) fn push(&mut self, at: Instant, slot: SlotKey) {
        self.heap.push(Reverse((at, slot)));
    }

    /// The earliest deadline, stale or not (waking for a stale one only costs a turn).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops every entry due at `now`, handing `(slot, at)` to `due`.
    pub(super) fn pop_due(&mut self, now: Instant, mut due: impl FnMut(SlotKey, Instant)) {
        while let Some(Reverse((at, slot))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            due(slot, at);
        }
    }

    /// Entries held (stale ones included).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pops_due_entries_in_order_and_keeps_the_rest() {
        let t0 = Instant::now();
        let mut timers = Timers::with_capacity(4);
        timers.push(t0 + Duration::from_millis(30), (3, 0));
        timers.push(t0 + Duration::from_millis(10), (1, 0));
        timers.push(t0 + Duration::from_millis(20), (2, 7));
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(10)));
        let mut got = Vec::new();
        timers.pop_due(t0 + Duration::from_millis(20), |slot, _| got.push(slot));
        assert_eq!(got, vec![(1, 0), (2, 7)]);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(30)));
    }
}
