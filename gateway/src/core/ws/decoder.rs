//! Frame and message decoding over the caller's receive buffer.
//!
//! One call to [`Decoder::decode`] looks at the front of a [`RecvBuf`] and either says
//! [`Decoded::Incomplete`] (read more) or decodes exactly one frame: it unmasks the payload in
//! place and, when the frame completes a message, returns it borrowed from the buffer — no copy
//! for the usual unfragmented message. Fragmented messages are gathered in a buffer the decoder
//! owns (grown on first use up to [`Limits::max_message`], then reused).
//!
//! A frame larger than the buffer is [`Decoded::Incomplete`] too, with the bytes still
//! `needed`: the caller grows the buffer ([`RecvBuf::fit`]) up to [`Limits::max_frame`] + 14.
//!
//! The caller handles the message, then calls [`RecvBuf::consume`] with
//! [`Decoded::Frame::consumed`]. Errors are final: send a close frame with
//! [`WsError::close_code`] and stop reading.

use super::mask::apply_mask;
use super::{Control, Data, Limits, OpCode, Role, WsError, close_code};
use crate::core::buf::RecvBuf;

/// A complete message or control frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message; the bytes are guaranteed valid UTF-8 (mutable so JSON parsers can
    /// unescape in place).
    Text(&'a mut [u8]),
    /// A binary message.
    Binary(&'a mut [u8]),
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame: code and reason, if any. Answer with a close frame (once) and
    /// stop sending.
    Close(Option<(u16, &'a str)>),
}

/// Outcome of one [`Decoder::decode`] call.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Decoded<'a> {
    /// Not a whole frame yet; `needed` more bytes at least (when the header is known).
    Incomplete {
        /// Bytes still missing, if the header was complete.
        needed: Option<usize>,
    },
    /// One frame was decoded.
    Frame {
        /// Bytes of the receive buffer this frame used (header + payload).
        consumed: usize,
        /// The message it completed; `None` for a non-final fragment.
        message: Option<Message<'a>>,
    },
}

#[derive(Debug)]
struct Fragmented {
    is_text: bool,
    utf8_valid_up_to: usize,
}

/// Stateful decoder for one connection.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    fragmented: Option<Fragmented>,
    assembly: Vec<u8>,
    closed: bool,
}

impl Decoder {
    /// A decoder for the given side of the connection.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self { role, limits, fragmented: None, assembly: Vec::new(), closed: false }
    }

    /// Whether the peer's close frame has been received.
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Decodes the frame at the front of `buf` (see the module docs for the protocol).
    pub fn decode<'a>(&'a mut self, buf: &'a mut RecvBuf) -> Result<Decoded<'a>, WsError> {
        let data = buf.data_mut();
        if data.len() < 2 {
            return Ok(Decoded::Incomplete { needed: None });
        }
        if self.closed {
            return Err(WsError::AfterClose);
        }
        let Some(header) = parse_header(data)? else {
            return Ok(Decoded::Incomplete { needed: None });
        };
        let (header_len, len) = (header.len, header.payload_len);
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::ReservedBits);
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(WsError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(WsError::MaskedServerFrame),
            _ => {}
        }
        if let OpCode::Control(_) = header.opcode {
            if len > 125 {
                return Err(WsError::ControlFrameTooLong(len));
            }
            if !header.is_final {
                return Err(WsError::FragmentedControlFrame);
            }
        } else if len > self.limits.max_frame as u64 {
            return Err(WsError::FrameTooLarge { len, max: self.limits.max_frame });
        }
        let total = header_len + len as usize;
        // Also when the frame is larger than the buffer: the caller grows it (RecvBuf::fit)
        // up to the limit checked above, so the enforced limit is `Limits`, never the buffer.
        if data.len() < total {
            return Ok(Decoded::Incomplete { needed: Some(total - data.len()) });
        }
        let payload = &mut data[header_len..total];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let message = match header.opcode {
            OpCode::Control(Control::Ping) => Some(Message::Ping(payload)),
            OpCode::Control(Control::Pong) => Some(Message::Pong(payload)),
            OpCode::Control(Control::Close) => {
                self.closed = true;
                Some(Message::Close(parse_close(payload)?))
            }
            OpCode::Control(Control::Reserved(op)) | OpCode::Data(Data::Reserved(op)) => {
                return Err(WsError::ReservedOpcode(op));
            }
            OpCode::Data(Data::Text | Data::Binary) => {
                if self.fragmented.is_some() {
                    return Err(WsError::ExpectedContinuation);
                }
                let is_text = header.opcode == OpCode::Data(Data::Text);
                if header.is_final {
                    if len as usize > self.limits.max_message {
                        return Err(WsError::MessageTooLarge {
                            len: len as usize,
                            max: self.limits.max_message,
                        });
                    }
                    if is_text {
                        simdutf8::basic::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?;
                        Some(Message::Text(payload))
                    } else {
                        Some(Message::Binary(payload))
                    }
                } else {
                    self.assembly.clear();
                    self.fragmented = Some(Fragmented { is_text, utf8_valid_up_to: 0 });
                    self.append_fragment(payload)?;
                    None
                }
            }
            OpCode::Data(Data::Continue) => {
                if self.fragmented.is_none() {
                    return Err(WsError::UnexpectedContinuation);
                }
                self.append_fragment(payload)?;
                if header.is_final {
                    let frag = self.fragmented.take().expect("checked above");
                    if frag.is_text {
                        if frag.utf8_valid_up_to != self.assembly.len() {
                            return Err(WsError::InvalidUtf8);
                        }
                        Some(Message::Text(&mut self.assembly))
                    } else {
                        Some(Message::Binary(&mut self.assembly))
                    }
                } else {
                    None
                }
            }
        };
        Ok(Decoded::Frame { consumed: total, message })
    }

    /// Adds a fragment to the message being assembled, checking size and (fail-fast) UTF-8.
    fn append_fragment(&mut self, payload: &[u8]) -> Result<(), WsError> {
        let len = self.assembly.len() + payload.len();
        if len > self.limits.max_message {
            return Err(WsError::MessageTooLarge { len, max: self.limits.max_message });
        }
        self.assembly.extend_from_slice(payload);
        let frag = self.fragmented.as_mut().expect("called with a message in progress");
        if frag.is_text {
            match std::str::from_utf8(&self.assembly[frag.utf8_valid_up_to..]) {
                Ok(_) => frag.utf8_valid_up_to = self.assembly.len(),
                // A sequence cut by the fragment boundary: wait for the rest.
                Err(e) if e.error_len().is_none() => frag.utf8_valid_up_to += e.valid_up_to(),
                Err(_) => return Err(WsError::InvalidUtf8),
            }
        }
        Ok(())
    }
}

/// A frame header, as read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    is_final: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    /// Bytes of header.
    len: usize,
    payload_len: u64,
}

/// Reads the header at the start of `data` (RFC 6455 §5.2): `None` until it is complete.
/// Written here rather than through tungstenite's `FrameHeader::parse` (an `io::Read` cursor
/// with logging) because it runs for every frame; the `frame_header_matches_tungstenite` test
/// keeps the two in agreement. Rejects reserved opcodes and non-minimal lengths.
#[inline]
fn parse_header(data: &[u8]) -> Result<Option<Header>, WsError> {
    let (b0, b1) = match data {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let opcode = OpCode::from(b0 & 0x0f);
    if let OpCode::Control(Control::Reserved(op)) | OpCode::Data(Data::Reserved(op)) = opcode {
        return Err(WsError::ReservedOpcode(op));
    }
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut len) = match b1 & 0x7f {
        126 => {
            let Some(ext) = data.get(2..4) else { return Ok(None) };
            let n = u64::from(u16::from_be_bytes([ext[0], ext[1]]));
            if n < 126 {
                return Err(WsError::NonMinimalLength);
            }
            (n, 4)
        }
        127 => {
            let Some(ext) = data.get(2..10) else { return Ok(None) };
            let mut b = [0u8; 8];
            b.copy_from_slice(ext);
            let n = u64::from_be_bytes(b);
            if n <= 0xffff || n >> 63 != 0 {
                return Err(WsError::NonMinimalLength);
            }
            (n, 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(m) = data.get(len..len + 4) else { return Ok(None) };
        len += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(Header {
        is_final: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv2: b0 & 0x20 != 0,
        rsv3: b0 & 0x10 != 0,
        opcode,
        mask,
        len,
        payload_len,
    }))
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::InvalidClose(0)),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code::is_valid_received(code) {
                return Err(WsError::InvalidClose(code));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ws::encoder::Encoder;

    fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut enc = Encoder::client_with_seed([7; 32]);
        let mut out = vec![0u8; payload.len() + 14];
        let n = enc.frame_parts(&mut out, opcode, fin, &[payload]).unwrap();
        out.truncate(n);
        out
    }

    fn server() -> Decoder {
        Decoder::new(Role::Server, Limits { max_frame: 1024, max_message: 2048 })
    }

    fn decode_all(dec: &mut Decoder, bytes: &[u8]) -> Result<Vec<String>, WsError> {
        let mut buf = RecvBuf::with_capacity(4096);
        buf.push(bytes);
        let mut out = Vec::new();
        loop {
            let consumed = match dec.decode(&mut buf)? {
                Decoded::Incomplete { .. } => return Ok(out),
                Decoded::Frame { consumed, message } => {
                    if let Some(m) = message {
                        out.push(match m {
                            Message::Text(t) => format!("text:{}", std::str::from_utf8(t).unwrap()),
                            Message::Binary(b) => format!("binary:{}", b.len()),
                            Message::Ping(p) => format!("ping:{}", p.len()),
                            Message::Pong(p) => format!("pong:{}", p.len()),
                            Message::Close(c) => format!("close:{c:?}"),
                        });
                    }
                    consumed
                }
            };
            buf.consume(consumed);
        }
    }

    #[test]
    fn masked_text_is_unmasked_in_place() {
        let f = client_frame(OpCode::Data(Data::Text), true, b"{\"event\":\"media\"}");
        assert_eq!(decode_all(&mut server(), &f).unwrap(), ["text:{\"event\":\"media\"}"]);
    }

    #[test]
    fn byte_by_byte_arrival_is_incomplete_until_whole() {
        let f = client_frame(OpCode::Data(Data::Binary), true, &[9u8; 300]);
        let mut dec = server();
        let mut buf = RecvBuf::with_capacity(4096);
        for (i, b) in f.iter().enumerate() {
            buf.push(&[*b]);
            let done = matches!(dec.decode(&mut buf).unwrap(), Decoded::Frame { .. });
            assert_eq!(done, i == f.len() - 1, "at byte {i}");
        }
    }

    #[test]
    fn unmasked_client_frame_is_protocol_error() {
        let mut enc = Encoder::server();
        let mut out = [0u8; 64];
        let n = enc.frame_parts(&mut out, OpCode::Data(Data::Text), true, &[b"hi"]).unwrap();
        let err = decode_all(&mut server(), &out[..n]).unwrap_err();
        assert_eq!(err, WsError::UnmaskedClientFrame);
        assert_eq!(err.close_code(), 1002);
    }

    #[test]
    fn fragments_with_interleaved_ping_assemble() {
        let mut bytes = client_frame(OpCode::Data(Data::Text), false, "héllo ".as_bytes());
        bytes.extend(client_frame(OpCode::Control(Control::Ping), true, b"p"));
        // Split a two-byte character across fragments.
        let wo = "wörld".as_bytes();
        bytes.extend(client_frame(OpCode::Data(Data::Continue), false, &wo[..2]));
        bytes.extend(client_frame(OpCode::Data(Data::Continue), true, &wo[2..]));
        assert_eq!(decode_all(&mut server(), &bytes).unwrap(), ["ping:1", "text:héllo wörld"]);
    }

    #[test]
    fn invalid_utf8_fails_fast_in_a_fragment() {
        let bytes = client_frame(OpCode::Data(Data::Text), false, &[b'a', 0xff]);
        let err = decode_all(&mut server(), &bytes).unwrap_err();
        assert_eq!((err, err.close_code()), (WsError::InvalidUtf8, 1007));
    }

    #[test]
    fn truncated_utf8_at_message_end_is_invalid() {
        let mut bytes = client_frame(OpCode::Data(Data::Text), false, b"a");
        bytes.extend(client_frame(OpCode::Data(Data::Continue), true, &"é".as_bytes()[..1]));
        assert_eq!(decode_all(&mut server(), &bytes).unwrap_err(), WsError::InvalidUtf8);
    }

    #[test]
    fn sequencing_errors() {
        let cont = client_frame(OpCode::Data(Data::Continue), true, b"x");
        assert_eq!(decode_all(&mut server(), &cont).unwrap_err(), WsError::UnexpectedContinuation);
        let mut two = client_frame(OpCode::Data(Data::Text), false, b"x");
        two.extend(client_frame(OpCode::Data(Data::Binary), true, b"y"));
        assert_eq!(decode_all(&mut server(), &two).unwrap_err(), WsError::ExpectedContinuation);
    }

    #[test]
    fn control_frame_rules() {
        let long = client_frame(OpCode::Control(Control::Ping), true, &[0; 126]);
        assert_eq!(decode_all(&mut server(), &long).unwrap_err(), WsError::ControlFrameTooLong(126));
        let frag = client_frame(OpCode::Control(Control::Ping), false, b"");
        assert_eq!(decode_all(&mut server(), &frag).unwrap_err(), WsError::FragmentedControlFrame);
    }

    #[test]
    fn close_frames_are_validated() {
        let mut ok = vec![0x03, 0xe8];
        ok.extend_from_slice(b"bye");
        let f = client_frame(OpCode::Control(Control::Close), true, &ok);
        assert_eq!(decode_all(&mut server(), &f).unwrap(), ["close:Some((1000, \"bye\"))"]);
        let empty = client_frame(OpCode::Control(Control::Close), true, b"");
        assert_eq!(decode_all(&mut server(), &empty).unwrap(), ["close:None"]);
        for bad in [vec![0x03], vec![0x03, 0xed], vec![0x03, 0xe8, 0xff], vec![0x13, 0x88]] {
            let f = client_frame(OpCode::Control(Control::Close), true, &bad);
            assert!(decode_all(&mut server(), &f).is_err(), "{bad:?}");
        }
        // Nothing after close.
        let mut two = client_frame(OpCode::Control(Control::Close), true, b"");
        two.extend(client_frame(OpCode::Data(Data::Text), true, b"late"));
        assert_eq!(decode_all(&mut server(), &two).unwrap_err(), WsError::AfterClose);
    }

    #[test]
    fn limits_are_enforced() {
        let big = client_frame(OpCode::Data(Data::Binary), true, &[0; 1025]);
        let err = decode_all(&mut server(), &big).unwrap_err();
        assert_eq!((err, err.close_code()), (WsError::FrameTooLarge { len: 1025, max: 1024 }, 1009));
        let mut msg = Vec::new();
        for i in 0..3 {
            let op = if i == 0 { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
            msg.extend(client_frame(op, i == 2, &[0; 1000]));
        }
        assert_eq!(
            decode_all(&mut server(), &msg).unwrap_err(),
            WsError::MessageTooLarge { len: 3000, max: 2048 }
        );
    }

    #[test]
    fn header_rules() {
        // RSV1 set.
        let mut f = client_frame(OpCode::Data(Data::Text), true, b"x");
        f[0] |= 0x40;
        assert_eq!(decode_all(&mut server(), &f).unwrap_err(), WsError::ReservedBits);
        // Reserved opcode 3.
        let mut f = client_frame(OpCode::Data(Data::Text), true, b"x");
        f[0] = 0x83;
        assert_eq!(decode_all(&mut server(), &f).unwrap_err(), WsError::ReservedOpcode(3));
        // 16-bit length used for a 5-byte payload.
        let f = [0x82, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5];
        assert_eq!(decode_all(&mut server(), &f).unwrap_err(), WsError::NonMinimalLength);
    }

    #[test]
    fn frame_header_matches_tungstenite() {
        use tungstenite::protocol::frame::FrameHeader;
        let mut seed = 99u64;
        for _ in 0..100_000 {
            let mut bytes = [0u8; 14];
            for b in &mut bytes {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                *b = (seed >> 40) as u8;
            }
            let cut = (seed >> 20) as usize % 15;
            let data = &bytes[..cut];
            let ours = parse_header(data);
            let mut cursor = std::io::Cursor::new(data);
            let theirs = FrameHeader::parse(&mut cursor);
            match (ours, theirs) {
                (Ok(Some(h)), Ok(Some((t, len)))) => {
                    assert_eq!(
                        (h.is_final, h.rsv1, h.rsv2, h.rsv3, h.opcode, h.mask),
                        (t.is_final, t.rsv1, t.rsv2, t.rsv3, t.opcode, t.mask)
                    );
                    assert_eq!((h.len as u64, h.payload_len), (cursor.position(), len));
                }
                (Ok(None), Ok(None)) | (Err(WsError::ReservedOpcode(_)), Err(_)) => {}
                // tungstenite accepts non-minimal lengths; we refuse them (RFC 6455 §5.2).
                (Err(WsError::NonMinimalLength), Ok(Some(_))) => {}
                // tungstenite checks the opcode after reading the whole header; we check it first.
                (Err(WsError::ReservedOpcode(_)), Ok(None)) => {}
                // A non-minimal length we refuse as soon as it is read.
                (Err(WsError::NonMinimalLength), Ok(None)) => {}
                (o, t) => panic!("{data:?}: ours {o:?} theirs {t:?}"),
            }
        }
    }

    #[test]
    fn client_side_refuses_masked_server_frames() {
        let f = client_frame(OpCode::Data(Data::Text), true, b"x");
        let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
        assert_eq!(decode_all(&mut dec, &f).unwrap_err(), WsError::MaskedServerFrame);
    }
}
