//! Socket plumbing shared by every connection the harness holds (callers, OpenAI stand-in
//! sessions, control-plane requests): an output buffer written with one `write` per flush, and
//! a read into a [`RecvBuf`].
//!
//! Sockets are registered edge-triggered (mio). A read that returns less than the room it was
//! given has emptied the socket's receive queue, so it is not followed by a second read that
//! would only say `EAGAIN`: new data raises a new edge. That keeps the harness at one `read` per
//! arrival, which matters because it must be cheaper per frame than the gateway.

use std::io::{self, Read, Write};

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::encoder::MAX_HEADER_LEN;
use callway_gateway::core::ws::{Data, Encoder, OpCode};

/// A WebSocket text frame's opcode.
pub const TEXT: OpCode = OpCode::Data(Data::Text);

/// Bytes waiting to be written to one socket.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
    pos: usize,
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written (or there was nothing).
    All,
    /// The socket's send buffer is full: the rest goes on the next writable edge.
    Partial,
}

impl Outbox {
    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends raw bytes (an HTTP head).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends one final frame of `opcode` whose payload is the concatenation of `parts`,
    /// written (and masked, for a client encoder) by the gateway's own encoder.
    pub fn push_frame(&mut self, enc: &mut Encoder, opcode: OpCode, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let start = self.buf.len();
        self.buf.resize(start + len + MAX_HEADER_LEN, 0);
        let n = enc
            .frame_parts(&mut self.buf[start..], opcode, true, parts)
            .expect("the outbox was grown to fit the frame");
        self.buf.truncate(start + n);
    }

    /// Appends a text frame.
    pub fn push_text(&mut self, enc: &mut Encoder, parts: &[&[u8]]) {
        self.push_frame(enc, TEXT, parts);
    }

    /// Writes what is waiting with as few `write`s as the socket allows.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<Flushed> {
        while self.pos < self.buf.len() {
            match w.write(&self.buf[self.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Partial),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        self.pos = 0;
        Ok(Flushed::All)
    }

    /// Forgets what is waiting.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

/// What one read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `n` bytes arrived and the socket may hold more (the buffer was filled).
    More(usize),
    /// `n` bytes arrived and the socket is now empty (short read), or nothing was there.
    Drained(usize),
    /// The peer closed its side.
    Eof,
    /// The receive buffer is full of one unfinished message.
    BufferFull,
}

/// Reads once into `buf`'s spare room.
pub fn read_into(r: &mut impl Read, buf: &mut RecvBuf) -> io::Result<ReadOutcome> {
    loop {
        let spare = buf.spare();
        let room = spare.len();
        if room == 0 {
            return Ok(ReadOutcome::BufferFull);
        }
        return match r.read(spare) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => {
                buf.filled(n);
                Ok(if n < room { ReadOutcome::Drained(n) } else { ReadOutcome::More(n) })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::Drained(0)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callway_gateway::core::ws::{Decoded, Decoder, Limits, Message, Role};

    /// A writer that takes at most `cap` bytes per call, then refuses.
    struct Slow {
        got: Vec<u8>,
        cap: usize,
        calls: usize,
        max_calls: usize,
    }

    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.calls == self.max_calls {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls += 1;
            let n = b.len().min(self.cap);
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frames_decode_and_partial_writes_resume() {
        let mut out = Outbox::default();
        let mut enc = Encoder::client_with_seed([7; 32]);
        out.push_text(&mut enc, &[b"{\"event\":", b"\"media\"}"]);
        out.push_text(&mut enc, &[b"second"]);
        let total = out.len();
        let mut w = Slow { got: Vec::new(), cap: 5, calls: 0, max_calls: 2 };
        assert_eq!(out.flush(&mut w).unwrap(), Flushed::Partial);
        assert_eq!(out.len(), total - 10);
        w.max_calls = usize::MAX;
        assert_eq!(out.flush(&mut w).unwrap(), Flushed::All);
        assert!(out.is_empty());
        let mut buf = RecvBuf::with_capacity(1024);
        buf.push(&w.got);
        let mut dec = Decoder::new(Role::Server, Limits::TWILIO);
        let mut texts = Vec::new();
        while let Ok(Decoded::Frame { consumed, message }) = dec.decode(&mut buf) {
            if let Some(Message::Text(t)) = message {
                texts.push(t.to_vec());
            }
            buf.consume(consumed);
        }
        assert_eq!(texts, vec![b"{\"event\":\"media\"}".to_vec(), b"second".to_vec()]);
    }

    #[test]
    fn short_reads_mean_drained() {
        let mut buf = RecvBuf::with_capacity(8);
        assert_eq!(read_into(&mut &b"abc"[..], &mut buf).unwrap(), ReadOutcome::Drained(3));
        assert_eq!(read_into(&mut &b"defghijk"[..], &mut buf).unwrap(), ReadOutcome::More(5));
        assert_eq!(read_into(&mut &b"x"[..], &mut buf).unwrap(), ReadOutcome::BufferFull);
        buf.consume(8);
        assert_eq!(read_into(&mut &b""[..], &mut buf).unwrap(), ReadOutcome::Eof);
    }
}
