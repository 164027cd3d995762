//! The WebSocket decoder harness shared by `ws_server_decoder` and `ws_client_decoder`.
//!
//! Input layout (so that seeds are plain frames behind a two-byte prefix):
//!
//! ```text
//! byte 0      bit 0: 0 = the rest is raw wire bytes, 1 = the rest is frame specs (see below)
//!             bit 1: 0 = small limits (frame 1024, message 4096), 1 = the production limits
//!             bits 2-7: receive buffer size: 0 = max_frame + 14 (what the gateway uses),
//!                       n = 14 + n * (max_frame + 14) / 48 (small ones are grown with
//!                       `RecvBuf::fit` when a frame does not fit, as the gateway's shell does)
//! byte 1      low 4 bits: k, the number of chunk sizes that follow (0 = one chunk)
//! k bytes     chunk sizes (each + 1), used in turn to feed the receive buffer
//! rest        raw: the bytes on the wire
//!             specs: frames, each `op` (bit 7 FIN, bit 6 two-byte length, bit 5 fill,
//!             low 4 bits opcode), length (1 or 2 bytes, little endian), then the payload: the
//!             next `length` bytes of input or, with fill, one byte repeated `length` times
//! ```
//!
//! Every run decodes the wire bytes twice: whole, in a buffer as large as the input, and in the
//! chunks and buffer size chosen above. Both must produce the same messages and the same end,
//! whatever the starting buffer size: the limits are `Limits`, never the buffer. With frame
//! specs, the messages must also be those of [`model`], an independent
//! reading of RFC 6455 §5 over the frames as sent. Along the way each decoded item is checked:
//! `consumed` within the buffer, text valid UTF-8, sizes within the limits, control payloads at
//! most 125 bytes, close codes valid, nothing but `AfterClose` after a close.

use std::cell::RefCell;
use std::collections::HashMap;

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::ws::{
    Control, Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role, WsError, close_code,
};

/// Small limits, so that the size checks are reached with short inputs.
pub const SMALL: Limits = Limits { max_frame: 1024, max_message: 4096 };

/// A decoded message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text (checked UTF-8 when recorded).
    Text(Vec<u8>),
    /// Binary.
    Binary(Vec<u8>),
    /// Ping payload.
    Ping(Vec<u8>),
    /// Pong payload.
    Pong(Vec<u8>),
    /// Close code and reason.
    Close(Option<(u16, String)>),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// All input used; `pending` bytes wait for the rest of a frame.
    Incomplete {
        /// Unconsumed bytes.
        pending: usize,
    },
    /// The decoder refused the input.
    Error(WsError),
}

/// What a decoder run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Messages, in order.
    pub events: Vec<Event>,
    /// How it ended.
    pub end: End,
}

thread_local! {
    /// Receive buffers by capacity, reused across runs: allocating and zeroing up to 64 KiB
    /// twice per input made the page faults cost more than the decoding.
    static BUFFERS: RefCell<HashMap<usize, RecvBuf>> = RefCell::new(HashMap::new());
}

/// Feeds `wire` into a `capacity`-byte receive buffer, `chunks` bytes at a time (cycled),
/// decoding everything decodable after each read, and checks every step.
pub fn run(role: Role, limits: Limits, capacity: usize, wire: &[u8], chunks: &[usize]) -> Run {
    assert!(capacity >= 14, "harness: a receive buffer holds at least a frame header");
    let mut buf = BUFFERS
        .with(|b| b.borrow_mut().remove(&capacity))
        .unwrap_or_else(|| RecvBuf::with_capacity(capacity));
    // A reused buffer starts empty (its old bytes are outside `data()`).
    buf.consume(buf.len());
    let result = run_in(role, limits, &mut buf, wire, chunks);
    if buf.capacity() == capacity {
        BUFFERS.with(|b| b.borrow_mut().insert(capacity, buf));
    }
    result
}

fn run_in(role: Role, limits: Limits, buf: &mut RecvBuf, wire: &[u8], chunks: &[usize]) -> Run {
    let base = buf.capacity();
    let most = limits.max_frame + 14;
    let mut dec = Decoder::new(role, limits);
    let mut events = Vec::new();
    let mut pos = 0;
    let mut turn = 0;
    loop {
        let want = chunks.get(turn % chunks.len().max(1)).copied().unwrap_or(wire.len()).max(1);
        turn += 1;
        let end = (pos + want).min(wire.len());
        pos += buf.push(&wire[pos..end]);
        loop {
            let available = buf.len();
            let seen_close = matches!(events.last(), Some(Event::Close(_)));
            let consumed = match dec.decode(buf) {
                Err(e) => {
                    if seen_close {
                        assert_eq!(e, WsError::AfterClose, "after a close frame");
                    }
                    assert!(matches!(e.close_code(), 1002 | 1007 | 1009), "{e:?} closes with a defined code");
                    return Run { events, end: End::Error(e) };
                }
                Ok(Decoded::Incomplete { needed }) => {
                    if let Some(n) = needed {
                        assert!(n > 0, "Incomplete with nothing needed");
                        assert!(available + n <= most, "waits for a frame beyond the limit");
                    }
                    // Never stall: a full buffer grows (as the shell does), up to the limit.
                    if available == buf.capacity() {
                        assert!(buf.fit(base, most), "decoder waits with a full buffer at the limit");
                        continue;
                    }
                    break;
                }
                Ok(Decoded::Frame { consumed, message }) => {
                    assert!(!seen_close, "a frame was decoded after the peer's close");
                    assert!((2..=available).contains(&consumed), "consumed {consumed} of {available}");
                    if let Some(m) = message {
                        events.push(record(m, limits));
                    }
                    consumed
                }
            };
            if matches!(events.last(), Some(Event::Close(_))) {
                assert!(dec.peer_closed(), "close frame returned but peer_closed() is false");
            }
            buf.consume(consumed);
        }
        if pos == wire.len() {
            return Run { events, end: End::Incomplete { pending: buf.len() } };
        }
    }
}

fn record(m: Message<'_>, limits: Limits) -> Event {
    match m {
        Message::Text(t) => {
            assert!(std::str::from_utf8(t).is_ok(), "text message is not UTF-8");
            assert!(t.len() <= limits.max_message, "text over max_message");
            Event::Text(t.to_vec())
        }
        Message::Binary(b) => {
            assert!(b.len() <= limits.max_message, "binary over max_message");
            Event::Binary(b.to_vec())
        }
        Message::Ping(p) => {
            assert!(p.len() <= 125);
            Event::Ping(p.to_vec())
        }
        Message::Pong(p) => {
            assert!(p.len() <= 125);
            Event::Pong(p.to_vec())
        }
        Message::Close(c) => {
            if let Some((code, reason)) = c {
                assert!(close_code::is_valid_received(code), "close code {code} accepted");
                assert!(reason.len() <= 123);
            }
            Event::Close(c.map(|(code, reason)| (code, reason.to_owned())))
        }
    }
}

/// One frame as sent.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (0-15).
    pub opcode: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Reads frame specs from the fuzzer's bytes (layout in the module docs).
pub fn parse_specs(mut b: &[u8]) -> Vec<FrameSpec> {
    let mut out = Vec::new();
    while let [op, rest @ ..] = b {
        b = rest;
        let len = if op & 0x40 != 0 {
            match b {
                [lo, hi, rest @ ..] => {
                    b = rest;
                    usize::from(u16::from_le_bytes([*lo, *hi]))
                }
                _ => break,
            }
        } else {
            match b {
                [n, rest @ ..] => {
                    b = rest;
                    usize::from(*n)
                }
                _ => break,
            }
        };
        let payload = if op & 0x20 != 0 {
            let Some((fill, rest)) = b.split_first() else { break };
            b = rest;
            vec![*fill; len]
        } else {
            let n = len.min(b.len());
            let (p, rest) = b.split_at(n);
            b = rest;
            p.to_vec()
        };
        out.push(FrameSpec { fin: op & 0x80 != 0, opcode: op & 0x0f, payload });
    }
    out
}

/// Encodes `specs` as the peer of `role` would: masked (seeded keys) towards a server,
/// unmasked towards a client.
pub fn encode(role: Role, specs: &[FrameSpec]) -> Vec<u8> {
    let mut enc = match role {
        Role::Server => Encoder::client_with_seed([0x5a; 32]),
        Role::Client => Encoder::server(),
    };
    let total: usize = specs.iter().map(|s| s.payload.len() + 14).sum();
    let mut wire = vec![0u8; total];
    let mut n = 0;
    for s in specs {
        n += enc
            .frame_parts(&mut wire[n..], OpCode::from(s.opcode), s.fin, &[&s.payload])
            .expect("sized for the frames");
    }
    wire.truncate(n);
    wire
}

/// What RFC 6455 says a receiver makes of `specs` (well-framed, correctly masked frames),
/// written independently of the decoder: the order of checks follows the decoder's documented
/// behaviour (header checks before payload checks, UTF-8 checked as fragments arrive).
pub fn model(specs: &[FrameSpec], limits: Limits) -> Run {
    let mut events = Vec::new();
    // (is_text, assembled bytes)
    let mut partial: Option<(bool, Vec<u8>)> = None;
    let mut closed = false;
    let fail = |events: Vec<Event>, e: WsError| Run { events, end: End::Error(e) };
    for s in specs {
        let len = s.payload.len();
        if closed {
            return fail(events, WsError::AfterClose);
        }
        let opcode = OpCode::from(s.opcode);
        match opcode {
            OpCode::Data(Data::Reserved(op)) | OpCode::Control(Control::Reserved(op)) => {
                return fail(events, WsError::ReservedOpcode(op));
            }
            OpCode::Control(_) => {
                if len > 125 {
                    return fail(events, WsError::ControlFrameTooLong(len as u64));
                }
                if !s.fin {
                    return fail(events, WsError::FragmentedControlFrame);
                }
            }
            OpCode::Data(_) => {
                if len > limits.max_frame {
                    return fail(events, WsError::FrameTooLarge { len: len as u64, max: limits.max_frame });
                }
            }
        }
        let p = &s.payload;
        match opcode {
            OpCode::Control(Control::Ping) => events.push(Event::Ping(p.clone())),
            OpCode::Control(Control::Pong) => events.push(Event::Pong(p.clone())),
            OpCode::Control(Control::Close) => {
                closed = true;
                let close = match len {
                    0 => None,
                    1 => return fail(events, WsError::InvalidClose(0)),
                    _ => {
                        let code = u16::from_be_bytes([p[0], p[1]]);
                        let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
                        if !valid {
                            return fail(events, WsError::InvalidClose(code));
                        }
                        match std::str::from_utf8(&p[2..]) {
                            Ok(r) => Some((code, r.to_owned())),
                            Err(_) => return fail(events, WsError::InvalidUtf8),
                        }
                    }
                };
                events.push(Event::Close(close));
            }
            OpCode::Data(Data::Text | Data::Binary) => {
                if partial.is_some() {
                    return fail(events, WsError::ExpectedContinuation);
                }
                let is_text = opcode == OpCode::Data(Data::Text);
                if s.fin {
                    if len > limits.max_message {
                        return fail(events, WsError::MessageTooLarge { len, max: limits.max_message });
                    }
                    if is_text {
                        if std::str::from_utf8(p).is_err() {
                            return fail(events, WsError::InvalidUtf8);
                        }
                        events.push(Event::Text(p.clone()));
                    } else {
                        events.push(Event::Binary(p.clone()));
                    }
                } else {
                    let mut acc = (is_text, Vec::new());
                    if let Err(e) = append(&mut acc, p, limits) {
                        return fail(events, e);
                    }
                    partial = Some(acc);
                }
            }
            OpCode::Data(Data::Continue) => {
                let Some(acc) = partial.as_mut() else {
                    return fail(events, WsError::UnexpectedContinuation);
                };
                if let Err(e) = append(acc, p, limits) {
                    return fail(events, e);
                }
                if s.fin {
                    let (is_text, bytes) = partial.take().expect("checked");
                    if is_text {
                        if std::str::from_utf8(&bytes).is_err() {
                            return fail(events, WsError::InvalidUtf8);
                        }
                        events.push(Event::Text(bytes));
                    } else {
                        events.push(Event::Binary(bytes));
                    }
                }
            }
            OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => unreachable!(),
        }
    }
    Run { events, end: End::Incomplete { pending: 0 } }
}

/// Appends a fragment: the message limit, then UTF-8 so far (a sequence cut at the end of
/// what has arrived is not an error yet).
fn append(acc: &mut (bool, Vec<u8>), p: &[u8], limits: Limits) -> Result<(), WsError> {
    let len = acc.1.len() + p.len();
    if len > limits.max_message {
        return Err(WsError::MessageTooLarge { len, max: limits.max_message });
    }
    acc.1.extend_from_slice(p);
    if acc.0
        && let Err(e) = std::str::from_utf8(&acc.1)
        && e.error_len().is_some()
    {
        return Err(WsError::InvalidUtf8);
    }
    Ok(())
}

/// The whole target: decodes the input as described in the module docs and checks it.
pub fn fuzz(role: Role, data: &[u8]) {
    let [flags, nchunks, rest @ ..] = data else { return };
    let k = usize::from(nchunks & 0x0f).min(rest.len());
    let (chunk_bytes, body) = rest.split_at(k);
    let chunks: Vec<usize> = chunk_bytes.iter().map(|&c| usize::from(c) + 1).collect();
    let limits = if flags & 2 != 0 { Limits::TWILIO } else { SMALL };
    let ample = limits.max_frame + 14;
    let sel = usize::from(flags >> 2);
    let capacity = if sel == 0 { ample } else { 14 + sel * ample / 48 };

    let specs = (flags & 1 != 0).then(|| parse_specs(body));
    let wire = match &specs {
        Some(specs) => encode(role, specs),
        None => body.to_vec(),
    };

    // Reference: everything at once, in a buffer that holds the whole input (rounded up, so
    // that buffers are reused).
    let whole = run(role, limits, wire.len().max(ample).next_power_of_two(), &wire, &[]);
    let split = run(role, limits, capacity, &wire, &chunks);
    assert_eq!(split, whole, "same bytes, different chunks and buffer size, different result");
    if let Some(specs) = specs {
        assert_eq!(whole, model(&specs, limits), "decoder and RFC 6455 model disagree");
    }
}
