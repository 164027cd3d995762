//! One socket of a call on the io_uring engine (the Twilio leg or the OpenAI leg): its file
//! descriptor, its TLS session if any, the buffers the kernel reads into and writes from, and
//! which operations are in flight.
//!
//! # Buffers and the kernel
//! An operation in flight owns a range of one of these buffers until its completion: a receive
//! writes into [`Leg::buf`]'s spare room (plain) or `cipher` (TLS), a send reads `out` (with `MSG_NOSIGNAL`: a closed peer is an `EPIPE`, not a signal). So:
//! - the plaintext buffer is touched (decoded, compacted, resized) only while no receive into it
//!   is in flight ([`Leg::reading`] false) — the engine checks before every use;
//! - `out` is only appended to while no send is in flight; the call's own send buffer is copied
//!   into it (one `memcpy` of a frame, far cheaper than the syscall it saves), because the call
//!   compacts its buffer as it writes and must not move bytes the kernel is still reading;
//! - a leg is freed only when nothing is in flight ([`Leg::in_flight`] is 0): the engine
//!   retires a socket with `shutdown(SHUT_RDWR)`, which completes a pending receive with 0
//!   and a pending send with an error, then drops it.
//!
//! # TLS
//! rustls's buffered API with caller-owned ciphertext buffers: received records go from
//! `cipher` into the session ([`rustls::Connection::read_tls`]), plaintext out of it into
//! [`Leg::buf`]; plaintext to send goes into the session and its records into `out`
//! ([`rustls::Connection::write_tls`]). The session takes the call's bytes only when it has no
//! records waiting, so a slow peer still pushes back on the call as a full send buffer.

use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd as _;

use io_uring::{opcode, squeue, types};
use tokio_rustls::rustls;

use super::token::{self, LegId, Op};
use crate::core::buf::RecvBuf;
use crate::core::call::{Call, Peer};
use crate::io::stream::Parts;

/// Largest send submitted at once (several frames; a frame is < 1 KiB).
const OUT_CAP: usize = 16 * 1024;
/// What the output buffer starts at and returns to once a burst has drained.
const OUT_INITIAL: usize = 4 * 1024;
/// Ciphertext received at once: a relayed frame's record fits (< 1.5 KiB); a 16 KiB record takes
/// several receives (rustls reassembles), each a queue entry, not a system call.
const CIPHER_CAP: usize = 2 * 1024;

/// A socket and its buffers.
pub(super) struct Leg {
    /// Which side of the call this socket talks to.
    pub(super) peer: Peer,
    /// The call's slot and generation while the call owns it; `None` once retired.
    pub(super) owner: Option<(u32, u32)>,
    tcp: std::net::TcpStream,
    tls: Option<Box<rustls::Connection>>,
    /// Plaintext received and not yet consumed by the call.
    pub(super) buf: RecvBuf,
    cipher: Vec<u8>,
    cipher_pos: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// A receive is in flight.
    pub(super) reading: bool,
    /// A send is in flight.
    pub(super) sending: bool,
    /// The peer's side ended (0 bytes, a read error, a TLS close or failure).
    pub(super) eof: bool,
    /// A send failed: nothing more is written.
    pub(super) failed: bool,
    /// `shutdown` has been submitted.
    pub(super) shut: bool,
    close_notify_sent: bool,
    /// Operations in flight (the leg may be freed at 0).
    pub(super) in_flight: u32,
}

/// A send completion's outcome.
pub(super) enum Sent {
    /// More of the buffer to send, or it is empty again.
    Progress,
    /// The socket failed.
    Failed(io::Error),
}

impl Leg {
    /// A leg for `parts`, with `buf` as its plaintext receive buffer (it may already hold bytes).
    pub(super) fn new(peer: Peer, owner: (u32, u32), parts: Parts, buf: RecvBuf) -> Self {
        let cipher = if parts.tls.is_some() { Vec::with_capacity(CIPHER_CAP) } else { Vec::new() };
        Self {
            peer,
            owner: Some(owner),
            tcp: parts.tcp,
            tls: parts.tls,
            buf,
            cipher,
            cipher_pos: 0,
            out: Vec::with_capacity(OUT_INITIAL),
            out_pos: 0,
            reading: false,
            sending: false,
            eof: false,
            failed: false,
            shut: false,
            close_notify_sent: false,
            in_flight: 0,
        }
    }

    fn fd(&self) -> types::Fd {
        types::Fd(self.tcp.as_raw_fd())
    }

    /// Whether bytes can still be received (no receive in flight, not ended, room left).
    fn can_read(&self) -> bool {
        !self.reading && !self.eof && !self.shut
    }

    /// A receive, if one should be in flight and is not. For TLS, only once the previous
    /// ciphertext has all gone into the session.
    pub(super) fn recv_entry(&mut self, id: LegId) -> Option<squeue::Entry> {
        if !self.can_read() {
            return None;
        }
        let (ptr, len) = if self.tls.is_some() {
            if self.cipher_pos < self.cipher.len() {
                return None;
            }
            self.cipher.clear();
            self.cipher_pos = 0;
            let spare = self.cipher.spare_capacity_mut();
            (spare.as_mut_ptr().cast::<u8>(), spare.len())
        } else {
            let spare = self.buf.spare();
            (spare.as_mut_ptr(), spare.len())
        };
        if len == 0 {
            return None;
        }
        self.reading = true;
        self.in_flight += 1;
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        Some(opcode::Recv::new(self.fd(), ptr, len).build().user_data(token::encode(Op::Recv, id)))
    }

    /// A receive completed with `res` (bytes, 0 at the end, or `-errno`). Returns the error
    /// the peer's side ended with, if any (for the log).
    pub(super) fn on_recv(&mut self, res: i32) -> Option<io::Error> {
        self.reading = false;
        self.in_flight -= 1;
        let n = match usize::try_from(res) {
            Ok(0) => {
                self.end_of_stream();
                return None;
            }
            Ok(n) => n,
            Err(_) => {
                self.eof = true;
                return Some(io::Error::from_raw_os_error(-res));
            }
        };
        if self.tls.is_none() {
            self.buf.filled(n);
            return None;
        }
        // SAFETY: the kernel initialised `n` bytes of the spare capacity this receive was given
        // (`recv_entry`), and `n` is at most that capacity.
        #[allow(unsafe_code)]
        unsafe {
            self.cipher.set_len(n);
        }
        self.pump().err()
    }

    /// The TCP stream ended: for TLS, the session is told (a missing `close_notify` is then an
    /// unexpected end, reported as the end all the same).
    fn end_of_stream(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            let _ = tls.read_tls(&mut &[][..]);
            let _ = tls.process_new_packets();
            drain_plaintext(tls, &mut self.buf, &mut self.eof);
        }
        self.eof = true;
    }

    /// TLS: moves received records into the session and plaintext out of it while the plaintext
    /// buffer has room. A no-op for plain sockets. Call before reading [`Leg::buf`].
    pub(super) fn pump(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else { return Ok(()) };
        loop {
            drain_plaintext(tls, &mut self.buf, &mut self.eof);
            if self.cipher_pos == self.cipher.len() || self.buf.spare().is_empty() {
                return Ok(());
            }
            match tls.read_tls(&mut &self.cipher[self.cipher_pos..]) {
                Ok(n) => self.cipher_pos += n,
                // The session holds as much plaintext as it will: the call must consume first.
                Err(_) => return Ok(()),
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls queued an alert for the peer; the stream is over for reading.
                self.eof = true;
                self.cipher_pos = self.cipher.len();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    /// Fills the output buffer from what `call` has for this peer (and, for TLS, what the
    /// session must send), if no send is in flight. Returns whether there is something to send.
    pub(super) fn fill_out(&mut self, call: &mut Call) -> bool {
        if self.sending || self.failed || self.shut {
            return false;
        }
        if self.out_pos == self.out.len() {
            if self.out.capacity() > OUT_INITIAL {
                self.out = Vec::with_capacity(OUT_INITIAL); // a burst is over
            }
            self.out.clear();
            self.out_pos = 0;
        }
        match self.tls.as_mut() {
            None => {
                while self.out.len() < OUT_CAP {
                    let Some(bytes) = call.poll_transmit(self.peer) else { break };
                    let n = bytes.len().min(OUT_CAP - self.out.len());
                    self.out.extend_from_slice(&bytes[..n]);
                    call.transmitted(self.peer, n);
                }
            }
            Some(tls) => {
                if !tls.wants_write()
                    && let Some(bytes) = call.poll_transmit(self.peer)
                {
                    match tls.writer().write(bytes) {
                        Ok(n) if n > 0 => call.transmitted(self.peer, n),
                        _ => {}
                    }
                }
                while tls.wants_write() && self.out.len() < OUT_CAP {
                    if tls.write_tls(&mut self.out).is_err() {
                        break;
                    }
                }
            }
        }
        self.out_pos < self.out.len()
    }

    /// Queues TLS `close_notify` once (no-op for plain sockets); [`Leg::fill_out`] sends it.
    pub(super) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut()
            && !self.close_notify_sent
        {
            tls.send_close_notify();
            self.close_notify_sent = true;
        }
    }

    /// Whether everything handed to this leg has left (nothing in `out`, none in the session).
    pub(super) fn flushed(&self) -> bool {
        !self.sending && self.out_pos == self.out.len() && self.tls.as_ref().is_none_or(|t| !t.wants_write())
    }

    /// The send of the output buffer, if there is one to make and none in flight.
    pub(super) fn send_entry(&mut self, id: LegId) -> Option<squeue::Entry> {
        if self.sending || self.failed || self.shut || self.out_pos == self.out.len() {
            return None;
        }
        let pending = &self.out[self.out_pos..];
        let len = u32::try_from(pending.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(self.fd(), pending.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token::encode(Op::Send, id));
        self.sending = true;
        self.in_flight += 1;
        Some(entry)
    }

    /// A send completed with `res`.
    pub(super) fn on_send(&mut self, res: i32) -> Sent {
        self.sending = false;
        self.in_flight -= 1;
        match usize::try_from(res) {
            Ok(n) => {
                self.out_pos = (self.out_pos + n).min(self.out.len());
                if n == 0 && self.out_pos < self.out.len() {
                    self.failed = true;
                    return Sent::Failed(io::ErrorKind::WriteZero.into());
                }
                Sent::Progress
            }
            Err(_) => {
                self.failed = true;
                Sent::Failed(io::Error::from_raw_os_error(-res))
            }
        }
    }

    /// `shutdown(SHUT_RDWR)`: ends a pending receive (0) and send (error) so the leg can be
    /// freed; queued bytes still leave before the FIN.
    pub(super) fn shutdown_entry(&mut self, id: LegId) -> Option<squeue::Entry> {
        if self.shut {
            return None;
        }
        self.shut = true;
        self.in_flight += 1;
        Some(
            opcode::Shutdown::new(self.fd(), libc::SHUT_RDWR)
                .build()
                .user_data(token::encode(Op::Shutdown, id)),
        )
    }

    /// The shutdown completed.
    pub(super) fn on_shutdown(&mut self) {
        self.in_flight -= 1;
    }
}

/// Moves the session's plaintext into `buf` while there is room; `eof` once the peer closed.
fn drain_plaintext(tls: &mut rustls::Connection, buf: &mut RecvBuf, eof: &mut bool) {
    loop {
        let spare = buf.spare();
        if spare.is_empty() {
            return;
        }
        match tls.reader().read(spare) {
            Ok(0) => {
                *eof = true;
                return;
            }
            Ok(n) => buf.filled(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                *eof = true;
                return;
            }
        }
    }
}
