//! Socket plumbing shared by every connection the harness holds (callers, OpenAI stand-in
//! sessions, control-plane requests): an output buffer written with one `write` per flush, a
//! read into a [`RecvBuf`], and [`Sock`], a TCP stream with or without TLS (rustls) in between.
//!
//! Sockets are registered edge-triggered (mio). A read that returns less than the room it was
//! given has emptied the socket's receive queue, so it is not followed by a second read that
//! would only say `EAGAIN`: new data raises a new edge. That keeps the harness at one `read` per
//! arrival, which matters because it must be cheaper per frame than the gateway. Over TLS the
//! socket is read until `EAGAIN` (a record may end anywhere, so a short read proves nothing).

use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};

use mio::net::TcpStream;
use rustls::Connection;

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

/// A connection's socket: plain TCP, or TCP carrying a TLS session (client or server side).
#[derive(Debug)]
pub struct Sock {
    tcp: TcpStream,
    tls: Option<Box<Connection>>,
}

impl Deref for Sock {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.tcp
    }
}

impl DerefMut for Sock {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }
}

impl Sock {
    /// Plain TCP.
    pub fn plain(tcp: TcpStream) -> Self {
        Self { tcp, tls: None }
    }

    /// TCP carrying `tls` (its handshake runs as the connection is read and flushed).
    pub fn tls(tcp: TcpStream, tls: impl Into<Connection>) -> Self {
        Self { tcp, tls: Some(Box::new(tls.into())) }
    }

    /// Whether a flush has anything to do: bytes in `out`, or TLS records not yet written.
    pub fn wants_flush(&self, out: &Outbox) -> bool {
        !out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes what `out` holds (through TLS when there is some) with as few writes as the
    /// socket allows.
    pub fn flush(&mut self, out: &mut Outbox) -> io::Result<Flushed> {
        let Some(tls) = self.tls.as_mut() else { return out.flush(&mut self.tcp) };
        loop {
            // Into the TLS session (it takes at most its buffer limit), then onto the wire.
            let before = out.len();
            while !out.is_empty() {
                let n = tls.writer().write(&out.buf[out.pos..])?;
                if n == 0 {
                    break;
                }
                out.pos += n;
            }
            if out.is_empty() {
                out.clear();
            }
            if !write_tls(tls, &mut self.tcp)? {
                return Ok(Flushed::Partial);
            }
            if out.is_empty() {
                return Ok(Flushed::All);
            }
            if out.len() == before {
                // The session takes no more until its handshake is done: the next read goes on.
                return Ok(Flushed::Partial);
            }
        }
    }

    /// Reads what the socket holds into `buf`'s spare room ([`read_into`]'s outcomes; over
    /// TLS, `Drained` means the socket said `EAGAIN`).
    pub fn read_into(&mut self, buf: &mut RecvBuf) -> io::Result<ReadOutcome> {
        let Some(tls) = self.tls.as_mut() else { return read_into(&mut self.tcp, buf) };
        let mut got = 0;
        let mut tcp_eof = false;
        loop {
            // Plaintext already decrypted first.
            let spare = buf.spare();
            if spare.is_empty() {
                return Ok(if got > 0 { ReadOutcome::More(got) } else { ReadOutcome::BufferFull });
            }
            match tls.reader().read(spare) {
                // The peer's close_notify (callers handle what came before the end first).
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(n) => {
                    buf.filled(n);
                    got += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadOutcome::Eof),
                Err(e) => return Err(e),
            }
            if tcp_eof {
                return Ok(ReadOutcome::Eof);
            }
            match tls.read_tls(&mut self.tcp) {
                Ok(0) => tcp_eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Drained(got)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            tls.process_new_packets().map_err(io::Error::other)?;
            // Handshake messages, alerts, key updates: out at once (a full socket buffer
            // leaves them for the next flush, whose writable edge will come).
            if tls.wants_write() {
                write_tls(tls, &mut self.tcp)?;
            }
        }
    }
}

/// Writes the session's pending records; false when the socket's send buffer is full.
fn write_tls(tls: &mut Connection, tcp: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(tcp) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
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
