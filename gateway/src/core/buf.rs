//! Caller-owned byte buffers for the sans-IO core: a receive buffer the shell reads into and the
//! codecs decode from in place, and a writer over a fixed slice for building outgoing frames.
//!
//! Both are allocated once per connection (at accept). A receive buffer is sized for the usual
//! frames; when one frame is larger (a rare `start` with long parameters, a long OpenAI
//! message), [`RecvBuf::fit`] grows it up to the protocol's limit and gives the memory back
//! once the frame is gone — never on the per-frame path.

/// Bytes received from a socket and not yet consumed by a decoder.
///
/// The shell reads into [`RecvBuf::spare`], reports how much arrived with [`RecvBuf::filled`],
/// decoders work on [`RecvBuf::data_mut`] and report what they used with [`RecvBuf::consume`].
/// Unused space at the front is reclaimed by moving the (short) unconsumed tail down when the
/// spare room runs low, so a frame is always contiguous.
#[derive(Debug)]
pub struct RecvBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    /// A buffer of `capacity` bytes (the one allocation).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: vec![0; capacity].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Total capacity.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Unconsumed bytes, mutable (decoders unmask and unescape in place).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Room to read more bytes into. Compacts first: the unconsumed bytes (a partial frame,
    /// rarely more) move to the front, so reads always land at the start of the buffer and
    /// the memory a call touches is the largest backlog it had, not the buffer's capacity (a
    /// read position walking through the buffer would fault in every page of it, per call).
    /// Each byte is moved at most once: after the move nothing precedes it.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            if self.start < self.end {
                self.buf.copy_within(self.start..self.end, 0);
            }
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written into [`RecvBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len(), "filled past capacity");
        self.end += n;
    }

    /// Convenience for tests and the blocking harness: appends `bytes`, compacting if needed.
    /// Returns how many were taken (less than `bytes.len()` when full).
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let spare = self.spare();
        let n = spare.len().min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        self.filled(n);
        n
    }

    /// Sizes the buffer for what is waiting, between `base` and `limit` bytes: when it is full
    /// of unconsumed bytes (a frame larger than the buffer, since the decoder took what it
    /// could) it doubles, up to `limit`; once it holds little again it shrinks back to `base`.
    /// Returns true when it reallocated. Call it with the decoder's frame limit plus the
    /// largest frame header (14 bytes), so any frame the decoder accepts fits.
    pub fn fit(&mut self, base: usize, limit: usize) -> bool {
        let cap = self.buf.len();
        let new_cap = if self.len() == cap && cap < limit {
            (cap * 2).clamp(base, limit)
        } else if cap > base && self.len() <= base / 2 {
            base
        } else {
            return false;
        };
        let mut buf = vec![0; new_cap].into_boxed_slice();
        let len = self.len();
        buf[..len].copy_from_slice(self.data());
        self.buf = buf;
        self.start = 0;
        self.end = len;
        true
    }

    /// Drops `n` bytes from the front (they were decoded).
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed more than available");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// The output did not fit in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small ({needed} bytes needed, {available} available)")]
pub struct BufferFull {
    /// Bytes the whole write needed.
    pub needed: usize,
    /// Bytes that were left.
    pub available: usize,
}

/// Writes into a fixed slice, tracking the position; never allocates.
#[derive(Debug)]
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.pos
    }

    /// The bytes written so far.
    pub fn as_written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Appends raw bytes.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.pos + bytes.len();
        if end > self.buf.len() {
            return Err(BufferFull { needed: end, available: self.buf.len() });
        }
        self.buf[self.pos..end].copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// Appends the decimal digits of `n`.
    #[inline]
    pub fn put_u64(&mut self, n: u64) -> Result<(), BufferFull> {
        self.put(itoa::Buffer::new().format(n).as_bytes())
    }

    /// Appends `s` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
    pub fn put_json_str(&mut self, s: &str) -> Result<(), BufferFull> {
        self.put(b"\"")?;
        let bytes = s.as_bytes();
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            self.put(&bytes[run..i])?;
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.put(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])?;
            } else {
                self.put(esc)?;
            }
            run = i + 1;
        }
        self.put(&bytes[run..])?;
        self.put(b"\"")
    }
}

impl std::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.put(s.as_bytes()).map_err(|_| std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn fit_grows_for_a_large_frame_up_to_the_limit_then_gives_the_memory_back() {
        let mut b = RecvBuf::with_capacity(1024);
        assert!(!b.fit(1024, 4096), "nothing waiting: nothing to do");
        b.push(&[1; 1024]);
        assert!(b.fit(1024, 4096));
        assert_eq!((b.capacity(), b.len()), (2048, 1024));
        assert_eq!(b.data(), &[1; 1024][..], "the waiting bytes are kept");
        b.push(&[2; 1024]);
        assert!(b.fit(1024, 3000));
        assert_eq!(b.capacity(), 3000, "never beyond the limit");
        b.push(&[3; 952]);
        assert!(!b.fit(1024, 3000), "at the limit: the decoder refuses anything larger");
        b.consume(2900);
        assert!(b.fit(1024, 3000));
        assert_eq!((b.capacity(), b.data()), (1024, &[3; 100][..]), "back to the base size");
    }
    use super::*;

    #[test]
    fn reads_always_land_at_the_front() {
        let mut b = RecvBuf::with_capacity(64);
        b.push(&[7; 30]);
        b.consume(20); // a partial frame of 10 bytes is left
        assert_eq!(b.spare().len(), 54, "the partial frame moved to the front before the read");
        assert_eq!(b.data(), &[7; 10][..]);
    }

    #[test]
    fn recv_buf_compacts_and_keeps_order() {
        let mut b = RecvBuf::with_capacity(8);
        assert_eq!(b.push(b"abcdef"), 6);
        b.consume(5);
        assert_eq!(b.push(b"ghijklm"), 7);
        assert_eq!(b.data(), b"fghijklm");
        assert_eq!(b.push(b"x"), 0);
        b.consume(8);
        assert!(b.is_empty());
        assert_eq!(b.spare().len(), 8);
    }

    #[test]
    fn json_strings_escape_like_serde() {
        for s in ["plain", "quote \" and \\ back", "line\nfeed\ttab\r", "ctl \u{1}\u{1f}", "é ✓ 😀"] {
            let mut out = [0u8; 128];
            let mut w = SliceWriter::new(&mut out);
            w.put_json_str(s).unwrap();
            let back: String = serde_json::from_slice(w.as_written()).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn writer_reports_full() {
        let mut out = [0u8; 4];
        let mut w = SliceWriter::new(&mut out);
        w.put_u64(1234).unwrap();
        assert_eq!(w.as_written(), b"1234");
        assert_eq!(w.put(b"5"), Err(BufferFull { needed: 5, available: 4 }));
        let mut out = [0u8; 20];
        let mut w = SliceWriter::new(&mut out);
        w.put_u64(u64::MAX).unwrap();
        w.put_u64(0).ok();
        assert_eq!(w.as_written(), b"18446744073709551615");
    }
}
