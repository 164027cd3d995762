//! `ws-echo`: a WebSocket conformance harness for the gateway's codec, on blocking sockets.
//!
//! ```text
//! ws-echo server 127.0.0.1:9001 [CERT.pem KEY.pem]
//!     Echo server on the server-side codec (text, binary, fragments, ping/pong, close).
//!     Point a conformance suite's client cases at it (Autobahn `fuzzingclient`). With a
//!     certificate chain and key it serves `wss://` (rustls): the load generator's TLS floor.
//! ws-echo autobahn-client 127.0.0.1:9001
//!     Client-side codec against an Autobahn `fuzzingserver`: /getCaseCount, every
//!     /runCase?case=N&agent=callway (echoing), then /updateReports.
//! ws-echo echo-check 127.0.0.1:9001 [count]
//!     Client-side codec against any echo server: sends text/binary messages of growing
//!     size and a ping, checks every echo, closes cleanly. Exit status 0 when all matched.
//! ```

#[path = "echo.rs"]
mod echo;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, close_code};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => match (args.get(3), args.get(4)) {
            (None, None) => server(addr, None),
            (Some(cert), Some(key)) => tls_config(cert, key).and_then(|c| server(addr, Some(c))),
            _ => Err(io::Error::other("server takes ADDR, or ADDR CERT KEY")),
        },
        (Some("autobahn-client"), Some(addr)) => autobahn_client(addr),
        (Some("echo-check"), Some(addr)) => {
            echo_check(addr, args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100))
        }
        _ => {
            eprintln!(
                "usage: ws-echo server ADDR [CERT KEY] | autobahn-client ADDR | echo-check ADDR [COUNT]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("ws-echo: {e}");
        std::process::exit(1);
    }
}

fn server(addr: &str, tls: Option<Arc<ServerConfig>>) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    eprintln!("ws-echo: serving {} on {}", if tls.is_some() { "wss" } else { "ws" }, listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        // One write per echo, but a TLS record may leave in two segments: never let Nagle
        // hold the second one back for the peer's delayed ACK (the load generator's floor).
        stream.set_nodelay(true)?;
        let tls = tls.clone();
        std::thread::spawn(move || {
            let result = match tls {
                None => echo::serve(stream),
                Some(config) => ServerConnection::new(config)
                    .map_err(io::Error::other)
                    .and_then(|session| echo::serve(TlsConn(StreamOwned::new(session, stream)))),
            };
            if let Err(e) = result {
                eprintln!("ws-echo: connection: {e}");
            }
        });
    }
    Ok(())
}

/// The server's TLS from PEM files (rustls, ring).
fn tls_config(cert: &str, key: &str) -> io::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).and_then(|it| it.collect()).map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

/// A TLS connection: rustls over a blocking TCP stream.
struct TlsConn(StreamOwned<ServerConnection, TcpStream>);

impl Read for TlsConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl echo::Conn for TlsConn {
    fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()> {
        self.0.conn.send_close_notify();
        let _ = self.0.flush();
        self.0.sock.shutdown(how)
    }
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s).expect("OS random");
    s
}

fn limits() -> Limits {
    Limits { max_frame: echo::MAX_MESSAGE, max_message: echo::MAX_MESSAGE }
}

/// Reads one text message (answering pings) from a client connection.
fn read_text(stream: &mut std::net::TcpStream, buf: &mut RecvBuf, dec: &mut Decoder) -> io::Result<String> {
    loop {
        let (consumed, text) = match dec.decode(buf).map_err(io::Error::other)? {
            Decoded::Incomplete { .. } => {
                let n = io::Read::read(stream, buf.spare())?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
                }
                buf.filled(n);
                continue;
            }
            Decoded::Frame { consumed, message: Some(Message::Text(t)) } => {
                (consumed, Some(String::from_utf8_lossy(t).into_owned()))
            }
            Decoded::Frame { consumed, .. } => (consumed, None),
        };
        buf.consume(consumed);
        if let Some(t) = text {
            return Ok(t);
        }
    }
}

fn autobahn_client(addr: &str) -> io::Result<()> {
    let (mut s, mut buf) = echo::connect(addr, addr, "/getCaseCount", seed())?;
    let count: usize = read_text(&mut s, &mut buf, &mut Decoder::new(Role::Client, limits()))?
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    eprintln!("ws-echo: {count} cases");
    let mut out = vec![0u8; echo::MAX_MESSAGE + 64];
    for case in 1..=count {
        let target = format!("/runCase?case={case}&agent=callway");
        let (mut s, mut buf) = echo::connect(addr, addr, &target, seed())?;
        let _ = echo::run_echo(
            &mut s,
            &mut buf,
            &mut out,
            Decoder::new(Role::Client, limits()),
            Encoder::client_with_seed(seed()),
        );
    }
    let (mut s, _) = echo::connect(addr, addr, "/updateReports?agent=callway", seed())?;
    let mut enc = Encoder::client_with_seed(seed());
    let n = enc.close(&mut out, close_code::NORMAL, "").map_err(io::Error::other)?;
    s.write_all(&out[..n])?;
    eprintln!("ws-echo: reports updated");
    Ok(())
}

fn echo_check(addr: &str, count: usize) -> io::Result<()> {
    let (mut s, mut buf) = echo::connect(addr, addr, "/", seed())?;
    let mut enc = Encoder::client_with_seed(seed());
    let mut dec = Decoder::new(Role::Client, limits());
    let mut out = vec![0u8; echo::MAX_MESSAGE + 64];
    for i in 0..count {
        let len = (i * 997) % 70_000;
        let text: String = (0..len).map(|j| char::from(b'a' + (j % 26) as u8)).collect();
        let n = enc
            .frame_parts(&mut out, OpCode::Data(Data::Text), true, &[text.as_bytes()])
            .map_err(io::Error::other)?;
        s.write_all(&out[..n])?;
        let back = read_text(&mut s, &mut buf, &mut dec)?;
        if back != text {
            return Err(io::Error::other(format!("message {i} ({len} bytes) came back different")));
        }
    }
    let n = enc.close(&mut out, close_code::NORMAL, "done").map_err(io::Error::other)?;
    s.write_all(&out[..n])?;
    eprintln!("ws-echo: {count} messages echoed intact");
    Ok(())
}
