//! `ws-echo`: a WebSocket conformance harness for the gateway's codec, on blocking sockets.
//!
//! ```text
//! ws-echo server 127.0.0.1:9001
//!     Echo server on the server-side codec (text, binary, fragments, ping/pong, close).
//!     Point a conformance suite's client cases at it (Autobahn `fuzzingclient`).
//! ws-echo autobahn-client 127.0.0.1:9001
//!     Client-side codec against an Autobahn `fuzzingserver`: /getCaseCount, every
//!     /runCase?case=N&agent=callway (echoing), then /updateReports.
//! ws-echo echo-check 127.0.0.1:9001 [count]
//!     Client-side codec against any echo server: sends text/binary messages of growing
//!     size and a ping, checks every echo, closes cleanly. Exit status 0 when all matched.
//! ```

#[path = "echo.rs"]
mod echo;

use std::io::{self, Write};
use std::net::TcpListener;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, close_code};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => server(addr),
        (Some("autobahn-client"), Some(addr)) => autobahn_client(addr),
        (Some("echo-check"), Some(addr)) => {
            echo_check(addr, args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100))
        }
        _ => {
            eprintln!("usage: ws-echo server ADDR | autobahn-client ADDR | echo-check ADDR [COUNT]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("ws-echo: {e}");
        std::process::exit(1);
    }
}

fn server(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    eprintln!("ws-echo: serving on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = echo::serve(stream) {
                eprintln!("ws-echo: connection: {e}");
            }
        });
    }
    Ok(())
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
