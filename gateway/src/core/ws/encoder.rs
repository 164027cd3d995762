//! Frame encoding into the caller's send buffer.
//!
//! Two ways to write a frame, both allocation-free:
//! - [`Encoder::frame_parts`]: the payload is a few slices whose total length is known (the hot
//!   path: JSON prefix, the base64 audio, JSON suffix). Header, then each part copied once, then
//!   masked in place when we are the client.
//! - [`Encoder::frame_with`]: the payload is written by a closure (JSON with escaped strings,
//!   lengths not known in advance). It is written after room for the largest header and moved
//!   down once its length is known; used only for rare events.
//!
//! Headers are written directly (≤ 14 bytes); `header_matches_tungstenite` checks them against
//! tungstenite's `FrameHeader::format`, which costs ~150 instructions through `io::Write`.
//!
//! Client frames (gateway → OpenAI) are masked with keys from a ChaCha12 stream seeded once per
//! connection from the operating system's CSPRNG (`ring::rand::SystemRandom`), as RFC 6455
//! §5.3 asks (unpredictable keys) without a system call per frame.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use ring::rand::SecureRandom;

use super::mask::apply_mask;
use super::{Control, OpCode};
use crate::core::buf::{BufferFull, SliceWriter};

/// Largest frame header: 2 bytes + 8 of length + 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Writes frames for one connection.
pub struct Encoder {
    masks: Option<ChaCha12Rng>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("masked", &self.masks.is_some()).finish()
    }
}

impl Encoder {
    /// Server side: frames are not masked.
    pub fn server() -> Self {
        Self { masks: None }
    }

    /// Client side, seeded from the operating system's CSPRNG.
    pub fn client(rng: &dyn SecureRandom) -> Result<Self, ring::error::Unspecified> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed)?;
        Ok(Self::client_with_seed(seed))
    }

    /// Client side with an explicit seed (tests, fuzzing, benches: deterministic keys).
    pub fn client_with_seed(seed: [u8; 32]) -> Self {
        Self { masks: Some(ChaCha12Rng::from_seed(seed)) }
    }

    fn header_len(&self, len: usize) -> usize {
        let ext = match len {
            0..=125 => 0,
            126..=65535 => 2,
            _ => 8,
        };
        2 + ext + if self.masks.is_some() { 4 } else { 0 }
    }

    /// Writes the header for a `len`-byte payload at the start of `out`; returns its length
    /// and the mask key used, if any.
    fn write_header(
        &mut self,
        out: &mut [u8],
        opcode: OpCode,
        fin: bool,
        len: usize,
    ) -> Result<(usize, Option<[u8; 4]>), BufferFull> {
        let header_len = self.header_len(len);
        if out.len() < header_len + len {
            return Err(BufferFull { needed: header_len + len, available: out.len() });
        }
        let mask = self.masks.as_mut().map(|rng| rng.next_u32().to_ne_bytes());
        let code: u8 = opcode.into();
        out[0] = code | if fin { 0x80 } else { 0 };
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let mut pos = 2;
        match len {
            0..=125 => out[1] = mask_bit | len as u8,
            126..=65535 => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                pos = 4;
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                pos = 10;
            }
        }
        if let Some(key) = mask {
            out[pos..pos + 4].copy_from_slice(&key);
        }
        Ok((header_len, mask))
    }

    /// Writes one frame whose payload is the concatenation of `parts`. Returns the frame's
    /// length in `out`.
    #[inline]
    pub fn frame_parts(
        &mut self,
        out: &mut [u8],
        opcode: OpCode,
        fin: bool,
        parts: &[&[u8]],
    ) -> Result<usize, BufferFull> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let (header_len, mask) = self.write_header(out, opcode, fin, len)?;
        let mut pos = header_len;
        for part in parts {
            out[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
        if let Some(key) = mask {
            apply_mask(&mut out[header_len..pos], key, 0);
        }
        Ok(pos)
    }

    /// Writes one final frame whose payload `write` produces. Returns the frame's length.
    pub fn frame_with(
        &mut self,
        out: &mut [u8],
        opcode: OpCode,
        write: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), BufferFull>,
    ) -> Result<usize, BufferFull> {
        if out.len() < MAX_HEADER_LEN {
            return Err(BufferFull { needed: MAX_HEADER_LEN, available: out.len() });
        }
        let len = {
            let mut w = SliceWriter::new(&mut out[MAX_HEADER_LEN..]);
            write(&mut w).map_err(|e| BufferFull {
                needed: e.needed + MAX_HEADER_LEN,
                available: e.available + MAX_HEADER_LEN,
            })?;
            w.written()
        };
        let header_len = self.header_len(len);
        out.copy_within(MAX_HEADER_LEN..MAX_HEADER_LEN + len, header_len);
        let (written, mask) = self.write_header(out, opcode, true, len)?;
        debug_assert_eq!(written, header_len);
        if let Some(key) = mask {
            apply_mask(&mut out[header_len..header_len + len], key, 0);
        }
        Ok(header_len + len)
    }

    /// A pong answering a ping's payload.
    pub fn pong(&mut self, out: &mut [u8], payload: &[u8]) -> Result<usize, BufferFull> {
        self.frame_parts(out, OpCode::Control(Control::Pong), true, &[payload])
    }

    /// A ping.
    pub fn ping(&mut self, out: &mut [u8], payload: &[u8]) -> Result<usize, BufferFull> {
        self.frame_parts(out, OpCode::Control(Control::Ping), true, &[payload])
    }

    /// A close frame with `code` and a reason (cut at 123 bytes, on a character boundary).
    pub fn close(&mut self, out: &mut [u8], code: u16, reason: &str) -> Result<usize, BufferFull> {
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        self.frame_parts(
            out,
            OpCode::Control(Control::Close),
            true,
            &[&code.to_be_bytes(), &reason.as_bytes()[..cut]],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::buf::RecvBuf;
    use crate::core::ws::{Data, Decoded, Decoder, Limits, Message, Role};

    fn round_trip(enc_client: bool, payload_len: usize) {
        let mut enc = if enc_client { Encoder::client_with_seed([1; 32]) } else { Encoder::server() };
        let payload: Vec<u8> = (0..payload_len).map(|i| b'a' + (i % 26) as u8).collect();
        let mut out = vec![0u8; payload_len + MAX_HEADER_LEN];
        let n = enc
            .frame_parts(
                &mut out,
                OpCode::Data(Data::Text),
                true,
                &[&payload[..payload_len / 2], &payload[payload_len / 2..]],
            )
            .unwrap();
        let role = if enc_client { Role::Server } else { Role::Client };
        let mut dec = Decoder::new(role, Limits { max_frame: 1 << 20, max_message: 1 << 20 });
        let mut buf = RecvBuf::with_capacity(n + 16);
        buf.push(&out[..n]);
        match dec.decode(&mut buf).unwrap() {
            Decoded::Frame { consumed, message: Some(Message::Text(t)) } => {
                assert_eq!(consumed, n);
                assert_eq!(t, &payload[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parts_round_trip_through_every_length_form() {
        for len in [0, 1, 125, 126, 65535, 65536, 70000] {
            round_trip(true, len);
            round_trip(false, len);
        }
    }

    #[test]
    fn frame_with_moves_payload_behind_the_real_header() {
        for len in [3usize, 200, 70_000] {
            let text = "x".repeat(len);
            let mut enc = Encoder::client_with_seed([2; 32]);
            let mut out = vec![0u8; len + 64];
            let n = enc.frame_with(&mut out, OpCode::Data(Data::Text), |w| w.put_json_str(&text)).unwrap();
            let mut dec = Decoder::new(Role::Server, Limits { max_frame: 1 << 20, max_message: 1 << 20 });
            let mut buf = RecvBuf::with_capacity(n);
            buf.push(&out[..n]);
            let Decoded::Frame { message: Some(Message::Text(t)), .. } = dec.decode(&mut buf).unwrap() else {
                panic!()
            };
            assert_eq!(t.len(), len + 2);
        }
    }

    #[test]
    fn header_matches_tungstenite() {
        use tungstenite::protocol::frame::FrameHeader;
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 1 << 20] {
            for (client, fin, opcode) in [
                (true, true, OpCode::Data(super::super::Data::Text)),
                (false, false, OpCode::Data(super::super::Data::Binary)),
                (false, true, OpCode::Control(Control::Close)),
            ] {
                let mut enc = if client { Encoder::client_with_seed([5; 32]) } else { Encoder::server() };
                let mut ours = vec![0u8; len + MAX_HEADER_LEN];
                let (n, mask) = enc.write_header(&mut ours, opcode, fin, len).unwrap();
                let header =
                    FrameHeader { is_final: fin, rsv1: false, rsv2: false, rsv3: false, opcode, mask };
                let mut theirs = Vec::new();
                header.format(len as u64, &mut theirs).unwrap();
                assert_eq!(&ours[..n], &theirs[..], "len {len}");
            }
        }
    }

    #[test]
    fn masks_differ_between_frames() {
        let mut enc = Encoder::client_with_seed([3; 32]);
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        enc.frame_parts(&mut a, OpCode::Data(Data::Binary), true, &[b"x"]).unwrap();
        enc.frame_parts(&mut b, OpCode::Data(Data::Binary), true, &[b"x"]).unwrap();
        assert_ne!(a[2..6], b[2..6]);
    }

    #[test]
    fn too_small_output_is_an_error_not_a_panic() {
        let mut enc = Encoder::client_with_seed([4; 32]);
        let mut out = [0u8; 8];
        assert!(enc.frame_parts(&mut out, OpCode::Data(Data::Binary), true, &[b"123"]).is_err());
        assert!(enc.frame_with(&mut out, OpCode::Data(Data::Text), |w| w.put(b"1")).is_err());
        let mut out = [0u8; 16];
        assert!(enc.frame_with(&mut out, OpCode::Data(Data::Text), |w| w.put(b"123")).is_err());
        assert!(enc.frame_with(&mut [0u8; 24], OpCode::Data(Data::Text), |w| w.put(b"123")).is_ok());
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let mut enc = Encoder::server();
        let mut out = [0u8; 256];
        let reason = "é".repeat(100);
        let n = enc.close(&mut out, 1000, &reason).unwrap();
        assert_eq!(out[1] as usize, n - 2);
        assert!(n - 2 <= 125);
        assert!(std::str::from_utf8(&out[4..n]).is_ok());
    }
}
