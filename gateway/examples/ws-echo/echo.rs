//! The conformance harness's logic, over plain blocking sockets: a WebSocket echo server built
//! on the gateway's server-side codec, and a client built on its client-side codec. Shared by
//! the `ws-echo` example and the `ws_conformance` tests (included with `#[path]`).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::upgrade::{self, Parse};
use callway_gateway::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, close_code};

/// Largest message the harness echoes (Autobahn's big cases go to 16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 1024;

/// A connection the harness echoes on: a TCP stream, or one carrying TLS (`ws-echo server`
/// with a certificate).
pub trait Conn: Read + Write {
    /// Shuts the connection down, as [`TcpStream::shutdown`].
    fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()>;
}

impl Conn for TcpStream {
    fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

fn read_more(stream: &mut impl Read, buf: &mut RecvBuf) -> io::Result<usize> {
    let n = stream.read(buf.spare())?;
    buf.filled(n);
    Ok(n)
}

/// Serves one connection: upgrade, then echo every data message until the close handshake.
pub fn serve(mut stream: impl Conn) -> io::Result<()> {
    let mut buf = RecvBuf::with_capacity(MAX_MESSAGE + 64);
    let mut out = vec![0u8; MAX_MESSAGE + 64];
    // Upgrade.
    loop {
        if read_more(&mut stream, &mut buf)? == 0 {
            return Ok(());
        }
        match upgrade::parse_request(buf.data()) {
            Ok(Parse::Partial) => continue,
            Ok(Parse::Complete(req)) => {
                let n = upgrade::write_accept(&mut out, req.key).map_err(io::Error::other)?;
                let head = req.head_len;
                stream.write_all(&out[..n])?;
                buf.consume(head);
                break;
            }
            Err(e) => {
                let n =
                    upgrade::write_refusal(&mut out, e.status(), &e.to_string()).map_err(io::Error::other)?;
                stream.write_all(&out[..n])?;
                return Ok(());
            }
        }
    }
    let limits = Limits { max_frame: MAX_MESSAGE, max_message: MAX_MESSAGE };
    run_echo(&mut stream, &mut buf, &mut out, Decoder::new(Role::Server, limits), Encoder::server())
}

/// Echoes data messages, answers pings, completes the close handshake; on a protocol error
/// sends the matching close code and stops.
pub fn run_echo(
    stream: &mut impl Conn,
    buf: &mut RecvBuf,
    out: &mut [u8],
    mut dec: Decoder,
    mut enc: Encoder,
) -> io::Result<()> {
    loop {
        let (consumed, reply, done) = match dec.decode(buf) {
            Ok(Decoded::Incomplete { .. }) => {
                if read_more(stream, buf)? == 0 {
                    return Ok(());
                }
                continue;
            }
            Ok(Decoded::Frame { consumed, message }) => {
                let (n, done) = match message {
                    None | Some(Message::Pong(_)) => (0, false),
                    Some(Message::Text(t)) => (frame(&mut enc, out, OpCode::Data(Data::Text), t)?, false),
                    Some(Message::Binary(b)) => (frame(&mut enc, out, OpCode::Data(Data::Binary), b)?, false),
                    Some(Message::Ping(p)) => (enc.pong(out, p).map_err(io::Error::other)?, false),
                    Some(Message::Close(c)) => {
                        let code = c.map_or(close_code::NORMAL, |(code, _)| code);
                        (enc.close(out, code, "").map_err(io::Error::other)?, true)
                    }
                };
                (consumed, n, done)
            }
            Err(e) => {
                let n = enc.close(out, e.close_code(), &e.to_string()).map_err(io::Error::other)?;
                stream.write_all(&out[..n])?;
                let _ = stream.shutdown(std::net::Shutdown::Write);
                // Drain until the peer closes (RFC 6455 §7.1.1: the server closes TCP first,
                // but give the close frame a chance to arrive).
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                return Ok(());
            }
        };
        stream.write_all(&out[..reply])?;
        buf.consume(consumed);
        if done {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
    }
}

fn frame(enc: &mut Encoder, out: &mut [u8], opcode: OpCode, payload: &[u8]) -> io::Result<usize> {
    enc.frame_parts(out, opcode, true, &[payload]).map_err(io::Error::other)
}

/// Opens a client connection to `host:port` + `target` and completes the handshake with the
/// client-side codec.
pub fn connect(addr: &str, host: &str, target: &str, seed: [u8; 32]) -> io::Result<(TcpStream, RecvBuf)> {
    let mut stream = TcpStream::connect(addr)?;
    let mut out = vec![0u8; 4096];
    let mut key = [0u8; 16];
    key.copy_from_slice(&seed[..16]);
    let (n, hs) =
        upgrade::write_client_request(&mut out, host, target, &[], key).map_err(io::Error::other)?;
    stream.write_all(&out[..n])?;
    let mut buf = RecvBuf::with_capacity(MAX_MESSAGE + 64);
    loop {
        if read_more(&mut stream, &mut buf)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during handshake"));
        }
        match hs.read_response(buf.data()) {
            Ok(Parse::Partial) => continue,
            Ok(Parse::Complete(head)) => {
                buf.consume(head);
                return Ok((stream, buf));
            }
            Err(e) => return Err(io::Error::other(e)),
        }
    }
}
