//! A send buffer per socket: frames are written at the end, the shell takes bytes from the front
//! ([`Outbox::pending`], [`Outbox::advance`]). It starts small ([`INITIAL`]: the steady flow of
//! 20 ms frames is a few hundred bytes at a time), doubles when a burst needs it (an agent
//! response arrives faster than real time) up to the configured capacity, and goes back to
//! the small size once drained. So a call holds a few KiB, not the capacity: under call
//! turnover the allocator hands freed, already-touched memory to the next call, and a
//! buffer's full size ends up resident (the soak measured ~355 KiB per call with fixed 64 KiB
//! buffers). A frame that does not fit even at full capacity is not written (the caller counts
//! it): the shell is not draining the socket, and buffering without bound would only delay the
//! problem.

use crate::core::buf::BufferFull;

/// An unsent tail this short is always moved to the front before a push.
const COMPACT_BELOW: usize = 4096;

/// Size a send buffer starts at and returns to: a loop turn's frames towards one peer (a
/// relayed frame is < 400 bytes); a burst of agent audio grows it (doubling, up to the
/// configured capacity) and it comes back here once drained.
pub(crate) const INITIAL: usize = 4 * 1024;

/// One socket's unsent bytes.
#[derive(Debug)]
pub(crate) struct Outbox {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The most it may grow to.
    max: usize,
}

impl Outbox {
    /// A buffer that may grow to `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: vec![0; INITIAL.min(capacity)].into_boxed_slice(), start: 0, end: 0, max: capacity }
    }

    /// Bytes allocated now.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Bytes waiting to be written to the socket.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The shell wrote `n` bytes of [`Outbox::pending`].
    pub(crate) fn advance(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "transmitted more than was pending");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > INITIAL {
                // The burst is over: back to the small buffer.
                self.buf = vec![0; INITIAL].into_boxed_slice();
            }
        }
    }

    /// Whether the next push first moves the unsent tail to the front: when it is short (a
    /// frame or two: cheap, and writes stay at the front, so a call touches only the memory of
    /// its largest backlog), or when the free room at the end runs low.
    fn compacts(&self) -> bool {
        self.start > 0 && (self.end - self.start <= COMPACT_BELOW || self.end > self.buf.len() / 2)
    }

    /// Contiguous room the next [`Outbox::push`] will have without growing.
    #[cfg(test)]
    pub(crate) fn room(&self) -> usize {
        let cap = self.buf.len();
        if self.compacts() { cap - (self.end - self.start) } else { cap - self.end }
    }

    /// Whether there is room, growing if need be, for the output of `input` bytes of the other
    /// side's frames (about as large as the input, plus marks and headers), capped at half the
    /// capacity so a backlog larger than the buffer still moves.
    pub(crate) fn has_room_for(&self, input: usize) -> bool {
        let input = input.min(self.max / 2);
        self.max - (self.end - self.start) >= input + input / 8 + 1024
    }

    /// Forgets unsent bytes (the connection they were for is gone).
    pub(crate) fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Writes one frame with `write` (which returns the bytes it wrote) at the end. Moves the
    /// unsent tail to the front first when the free room is short, so a frame is contiguous.
    /// Returns false (nothing written) when it does not fit.
    #[inline]
    pub(crate) fn push(&mut self, mut write: impl FnMut(&mut [u8]) -> Result<usize, BufferFull>) -> bool {
        if self.compacts() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match write(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                // A burst: double (the pending bytes moved to the front), within the capacity,
                // and write the frame again (a failed write leaves nothing behind).
                Err(_) if self.buf.len() < self.max => {
                    let pending = self.end - self.start;
                    let mut buf = vec![0; (self.buf.len() * 2).min(self.max)].into_boxed_slice();
                    buf[..pending].copy_from_slice(&self.buf[self.start..self.end]);
                    self.buf = buf;
                    self.start = 0;
                    self.end = pending;
                }
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(out: &mut Outbox, bytes: &[u8]) -> bool {
        out.push(|b| {
            if b.len() < bytes.len() {
                return Err(BufferFull { needed: bytes.len(), available: b.len() });
            }
            b[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        })
    }

    #[test]
    fn starts_small_grows_for_a_burst_up_to_the_capacity_and_shrinks_back() {
        let mut o = Outbox::with_capacity(64 * 1024);
        assert_eq!(o.allocated(), INITIAL);
        assert!(o.has_room_for(20_000), "the capacity counts, not the current size");
        for _ in 0..40 {
            assert!(put(&mut o, &[3; 1000]), "a burst grows the buffer");
        }
        assert_eq!(o.pending().len(), 40_000);
        assert!(o.allocated() >= 40_000 && o.allocated() <= 64 * 1024);
        assert!(!put(&mut o, &[4; 30_000]), "never beyond the capacity");
        assert_eq!(o.pending(), &[3; 40_000][..], "a refused frame leaves the buffer as it was");
        o.advance(40_000);
        assert_eq!(o.allocated(), INITIAL, "drained: back to the small buffer");
    }

    #[test]
    fn writes_stay_at_the_front_while_the_backlog_is_short() {
        let mut o = Outbox::with_capacity(64 * 1024);
        assert!(put(&mut o, &[1; 1000]));
        o.advance(900); // a partial write: 100 bytes left
        assert!(put(&mut o, &[2; 1000]));
        assert_eq!(o.pending().len(), 1100);
        assert_eq!(o.end, 1100, "the short tail moved to the front: nothing written past it");
    }

    #[test]
    fn keeps_order_across_partial_writes_and_compaction() {
        let mut o = Outbox { buf: vec![0; 8].into_boxed_slice(), start: 0, end: 0, max: 8 };
        assert!(put(&mut o, b"abcde"));
        o.advance(3);
        assert!(put(&mut o, b"fgh"), "compacts the unsent tail to make room");
        assert_eq!(o.pending(), b"defgh");
        assert!(!put(&mut o, b"1234"), "does not fit: refused, nothing written");
        assert_eq!(o.pending(), b"defgh");
        assert_eq!(o.room(), 3);
        o.advance(5);
        assert!(o.pending().is_empty());
    }
}
