//! A send buffer per socket, allocated with the call and never grown: frames are written at the
//! end, the shell takes bytes from the front ([`Outbox::pending`], [`Outbox::advance`]). A frame
//! that does not fit is not written (the caller counts it): the shell is not draining the socket,
//! and buffering without bound would only delay the problem.

use crate::core::buf::BufferFull;

/// One socket's unsent bytes.
#[derive(Debug)]
pub(crate) struct Outbox {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Outbox {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: vec![0; capacity].into_boxed_slice(), start: 0, end: 0 }
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
        }
    }

    /// Contiguous room the next [`Outbox::push`] will have.
    pub(crate) fn room(&self) -> usize {
        let cap = self.buf.len();
        if self.start > 0 && self.end > cap / 2 { cap - (self.end - self.start) } else { cap - self.end }
    }

    /// Whether there is room for the output of `input` bytes of the other side's frames
    /// (about as large as the input, plus marks and headers), capped at half the buffer so a
    /// backlog larger than the buffer still moves.
    pub(crate) fn has_room_for(&self, input: usize) -> bool {
        let input = input.min(self.buf.len() / 2);
        self.room() >= input + input / 8 + 1024
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
    pub(crate) fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Result<usize, BufferFull>) -> bool {
        if self.start > 0 && self.end > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match write(&mut self.buf[self.end..]) {
            Ok(n) => {
                self.end += n;
                true
            }
            Err(_) => false,
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
    fn keeps_order_across_partial_writes_and_compaction() {
        let mut o = Outbox::with_capacity(8);
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
