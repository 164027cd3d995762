//! Both sides of the gateway's WebSocket codec against an independent implementation
//! (tungstenite): our echo server with a tungstenite client, and our client with a tungstenite
//! echo server. Covers what the Autobahn suite's early sections do: text, binary, sizes across
//! every length encoding, fragmentation with interleaved control frames, ping/pong, the close
//! handshake, and the failure codes for invalid input.

#[path = "../examples/ws-echo/echo.rs"]
#[allow(dead_code, reason = "the example uses more of the harness than these tests")]
mod echo;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;

use callway_gateway::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message as Ours, OpCode, Role};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{Frame, FrameHeader};
use tungstenite::{Bytes, Message};

fn our_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for s in listener.incoming() {
            let s = s.unwrap();
            thread::spawn(move || {
                let _ = echo::serve(s);
            });
        }
    });
    addr
}

fn tungstenite_client(addr: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    let (ws, response) = tungstenite::client(format!("ws://{addr}/echo"), stream).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

fn next_data(ws: &mut tungstenite::WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().unwrap() {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

#[test]
fn echoes_text_and_binary_of_every_length_encoding() {
    let addr = our_server();
    let mut ws = tungstenite_client(&addr);
    for len in [0usize, 1, 125, 126, 127, 1000, 65535, 65536, 300_000] {
        let text: String = (0..len).map(|i| ['a', 'é', '✓', '😀'][i % 4]).collect();
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(next_data(&mut ws), Message::text(text));
        let bin: Vec<u8> = (0..len).map(|i| i as u8).collect();
        ws.send(Message::binary(bin.clone())).unwrap();
        assert_eq!(next_data(&mut ws), Message::binary(bin));
    }
}

#[test]
fn fragmented_message_with_ping_in_between() {
    let addr = our_server();
    let mut ws = tungstenite_client(&addr);
    let parts = ["Bon", "jour ", "Zoé"];
    ws.write(Message::Frame(Frame::message(
        Bytes::from_static(parts[0].as_bytes()),
        OpCode::Data(Data::Text),
        false,
    )))
    .unwrap();
    ws.write(Message::Ping(Bytes::from_static(b"ping!"))).unwrap();
    ws.write(Message::Frame(Frame::message(
        Bytes::from(parts[1].as_bytes().to_vec()),
        OpCode::Data(Data::Continue),
        false,
    )))
    .unwrap();
    ws.write(Message::Frame(Frame::message(
        Bytes::from(parts[2].as_bytes().to_vec()),
        OpCode::Data(Data::Continue),
        true,
    )))
    .unwrap();
    ws.flush().unwrap();
    let mut saw_pong = false;
    loop {
        match ws.read().unwrap() {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"ping!");
                saw_pong = true;
            }
            Message::Text(t) => {
                assert_eq!(t.as_str(), "Bonjour Zoé");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(saw_pong, "the pong answering the ping inside the fragmented message");
}

#[test]
fn close_handshake_echoes_the_code() {
    let addr = our_server();
    let mut ws = tungstenite_client(&addr);
    ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "bye".into() })).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(f.code, CloseCode::Away),
        Ok(other) => panic!("{other:?}"),
        Err(e) => panic!("{e}"),
    }
    // tungstenite then reports the connection closed.
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));
}

/// Sends raw bytes after a handshake and returns the close code our server answers with.
fn close_code_for(raw: &[u8]) -> u16 {
    let addr = our_server();
    let mut ws = tungstenite_client(&addr);
    ws.get_mut().write_all(raw).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return u16::from(f.code),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::from(first & 0x0f),
        mask: Some([0, 0, 0, 0]),
    };
    let mut out = Vec::new();
    header.format(payload.len() as u64, &mut out).unwrap();
    out.extend_from_slice(payload);
    out
}

#[test]
fn invalid_input_gets_the_right_close_code() {
    // Text that is not UTF-8 → 1007.
    assert_eq!(close_code_for(&masked(0x81, &[0xce, 0xba, 0xff])), 1007);
    // Unmasked client frame → 1002.
    assert_eq!(close_code_for(&[0x81, 0x02, b'h', b'i']), 1002);
    // Reserved opcode → 1002.
    assert_eq!(close_code_for(&masked(0x83, b"")), 1002);
    // RSV1 without extension → 1002.
    assert_eq!(close_code_for(&masked(0xc1, b"x")), 1002);
    // Ping of 126 bytes → 1002.
    assert_eq!(close_code_for(&masked(0x89, &[0; 126])), 1002);
    // Continuation with nothing to continue → 1002.
    assert_eq!(close_code_for(&masked(0x80, b"x")), 1002);
}

#[test]
fn our_client_against_a_tungstenite_echo_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(s).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
                Ok(Message::Close(_)) => {
                    let _ = ws.flush();
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("server: {e}"),
            }
        }
    });
    let (mut stream, mut buf) = echo::connect(&addr, &addr, "/", [7; 32]).unwrap();
    let mut enc = Encoder::client_with_seed([8; 32]);
    let mut dec = Decoder::new(Role::Client, Limits { max_frame: 1 << 20, max_message: 1 << 20 });
    let mut out = vec![0u8; 1 << 20];
    for len in [0usize, 5, 126, 70_000] {
        let msg: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let n = enc.frame_parts(&mut out, OpCode::Data(Data::Text), true, &[&msg]).unwrap();
        stream.write_all(&out[..n]).unwrap();
        let echoed = loop {
            let got = match dec.decode(&mut buf).unwrap() {
                Decoded::Incomplete { .. } => {
                    let n = std::io::Read::read(&mut stream, buf.spare()).unwrap();
                    assert!(n > 0, "server closed");
                    buf.filled(n);
                    continue;
                }
                Decoded::Frame { consumed, message: Some(Ours::Text(t)) } => (consumed, Some(t.to_vec())),
                Decoded::Frame { consumed, .. } => (consumed, None),
            };
            buf.consume(got.0);
            if let Some(t) = got.1 {
                break t;
            }
        };
        assert_eq!(echoed, msg);
    }
    // Ping: tungstenite answers with a pong carrying the payload.
    let n = enc.ping(&mut out, b"are you there").unwrap();
    stream.write_all(&out[..n]).unwrap();
    let pong = loop {
        let got = match dec.decode(&mut buf).unwrap() {
            Decoded::Incomplete { .. } => {
                let n = std::io::Read::read(&mut stream, buf.spare()).unwrap();
                buf.filled(n);
                continue;
            }
            Decoded::Frame { consumed, message: Some(Ours::Pong(p)) } => (consumed, Some(p.to_vec())),
            Decoded::Frame { consumed, .. } => (consumed, None),
        };
        buf.consume(got.0);
        if let Some(p) = got.1 {
            break p;
        }
    };
    assert_eq!(pong, b"are you there");
    let n = enc.close(&mut out, 1000, "done").unwrap();
    stream.write_all(&out[..n]).unwrap();
    server.join().unwrap();
}

#[test]
fn the_harness_client_checks_echoes_against_the_harness_server() {
    let addr = our_server();
    let (mut stream, mut buf) = echo::connect(&addr, &addr, "/", [3; 32]).unwrap();
    let mut enc = Encoder::client_with_seed([4; 32]);
    let mut dec = Decoder::new(Role::Client, Limits { max_frame: 1 << 20, max_message: 1 << 20 });
    let mut out = vec![0u8; 1 << 20];
    // A fragmented binary message from our client, reassembled by our server.
    let n1 = enc.frame_parts(&mut out, OpCode::Data(Data::Binary), false, &[b"abc"]).unwrap();
    let n2 = enc.frame_parts(&mut out[n1..], OpCode::Data(Data::Continue), true, &[b"def"]).unwrap();
    stream.write_all(&out[..n1 + n2]).unwrap();
    loop {
        match dec.decode(&mut buf).unwrap() {
            Decoded::Incomplete { .. } => {
                let n = std::io::Read::read(&mut stream, buf.spare()).unwrap();
                buf.filled(n);
            }
            Decoded::Frame { message: Some(Ours::Binary(b)), .. } => {
                assert_eq!(b, b"abcdef");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}
