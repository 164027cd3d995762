//! The caller's audio frames and how a frame is recognised when it comes back.
//!
//! Every μ-law frame a simulated caller sends starts with a 12-byte id: a 2-byte magic, the
//! call's index and the frame's sequence number (both big-endian `u32`), then two filler bytes;
//! the rest of the frame is μ-law silence (`0xFF`). Twelve bytes are exactly four base64 quanta,
//! so the base64 of a frame is the 16-character encoding of its id followed by the encoding of
//! the constant tail, computed once ([`FrameTemplate`]): sending a frame encodes 12 bytes, not
//! 160.
//!
//! On the way back the audio may have been regrouped (the gateway re-encodes audio it held in
//! batches, and splits long deltas), so [`for_each_frame_id`] decodes the whole payload and
//! reads an id at every frame boundary. Audio that does not start with the magic (the
//! stand-in's greeting) is reported as such, not as a frame.

/// First two bytes of every frame the load generator sends.
pub const MAGIC: [u8; 2] = [0xC7, 0x1D];
/// Bytes of the id at the start of a frame (a multiple of 3: whole base64 quanta).
pub const ID_LEN: usize = 12;
/// Base64 characters of the id.
pub const ID_B64_LEN: usize = ID_LEN / 3 * 4;
/// μ-law silence.
pub const SILENCE: u8 = 0xFF;

/// Which frame of which call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameId {
    /// The call's index in the run (0-based, over all shards).
    pub call: u32,
    /// The frame's sequence number in the call (0-based).
    pub seq: u32,
}

impl FrameId {
    /// The id's 12 bytes.
    pub fn encode(self) -> [u8; ID_LEN] {
        let mut b = [SILENCE; ID_LEN];
        b[..2].copy_from_slice(&MAGIC);
        b[2..6].copy_from_slice(&self.call.to_be_bytes());
        b[6..10].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Reads an id from the start of a frame; `None` if the frame is not one of ours.
    pub fn decode(frame: &[u8]) -> Option<FrameId> {
        if frame.len() < ID_LEN || frame[..2] != MAGIC {
            return None;
        }
        let call = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]);
        let seq = u32::from_be_bytes([frame[6], frame[7], frame[8], frame[9]]);
        Some(FrameId { call, seq })
    }

    /// The 16 base64 characters of the id.
    pub fn encode_b64(self) -> [u8; ID_B64_LEN] {
        let mut out = [0u8; ID_B64_LEN];
        let _ = base64_simd::STANDARD.encode(&self.encode(), base64_simd::Out::from_slice(&mut out));
        out
    }
}

/// The base64 of a frame, less its id: computed once per run.
#[derive(Debug, Clone)]
pub struct FrameTemplate {
    /// μ-law bytes per frame (8 per millisecond).
    pub frame_bytes: usize,
    /// Base64 of the frame's bytes after the id (with the final padding).
    pub tail_b64: Vec<u8>,
}

impl FrameTemplate {
    /// For frames of `frame_ms` milliseconds of 8 kHz μ-law. `frame_ms` must be at least 2 (the
    /// id needs 12 bytes).
    pub fn new(frame_ms: u32) -> Self {
        let frame_bytes = frame_ms as usize * 8;
        assert!(frame_bytes >= ID_LEN, "a frame must hold the 12-byte id (frame-ms >= 2)");
        let tail = vec![SILENCE; frame_bytes - ID_LEN];
        let tail_b64 = base64_simd::STANDARD.encode_type::<Vec<u8>>(&tail);
        Self { frame_bytes, tail_b64 }
    }

    /// Base64 characters of a whole frame.
    pub fn b64_len(&self) -> usize {
        ID_B64_LEN + self.tail_b64.len()
    }
}

/// What a received audio payload held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadScan {
    /// Frames of ours found (passed to the callback).
    pub frames: u32,
    /// Frame-sized blocks that were not ours (the greeting, or audio cut differently).
    pub other_blocks: u32,
    /// The payload was not valid base64 or did not fit the scratch buffer.
    pub undecodable: bool,
}

/// Decodes a base64 `payload` into `scratch` and calls `f` with the id at every
/// `frame_bytes` boundary that carries one.
pub fn for_each_frame_id(
    payload: &[u8],
    frame_bytes: usize,
    scratch: &mut [u8],
    mut f: impl FnMut(FrameId),
) -> PayloadScan {
    let mut scan = PayloadScan::default();
    let Some(len) = decoded_len(payload) else {
        scan.undecodable = true;
        return scan;
    };
    if len > scratch.len() {
        scan.undecodable = true;
        return scan;
    }
    let decoded =
        match base64_simd::STANDARD.decode(payload, base64_simd::Out::from_slice(&mut scratch[..len])) {
            Ok(d) => d,
            Err(_) => {
                scan.undecodable = true;
                return scan;
            }
        };
    for block in decoded.chunks(frame_bytes) {
        match FrameId::decode(block) {
            Some(id) => {
                scan.frames += 1;
                f(id);
            }
            None => scan.other_blocks += 1,
        }
    }
    scan
}

/// Bytes that `b64` decodes to (padded standard base64), `None` if its length is not a
/// multiple of 4.
pub fn decoded_len(b64: &[u8]) -> Option<usize> {
    if !b64.len().is_multiple_of(4) {
        return None;
    }
    let pad = b64.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    Some(b64.len() / 4 * 3 - pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips_through_bytes_and_base64() {
        for id in [
            FrameId { call: 0, seq: 0 },
            FrameId { call: 299, seq: 1499 },
            FrameId { call: u32::MAX, seq: 7 },
        ] {
            assert_eq!(FrameId::decode(&id.encode()), Some(id));
            let t = FrameTemplate::new(20);
            let mut b64 = id.encode_b64().to_vec();
            b64.extend_from_slice(&t.tail_b64);
            assert_eq!(b64.len(), 216, "160 bytes of μ-law are 216 base64 characters");
            let bytes = base64_simd::STANDARD.decode_to_vec(&b64).unwrap();
            assert_eq!(bytes.len(), 160);
            assert_eq!(FrameId::decode(&bytes), Some(id));
            assert!(bytes[ID_LEN..].iter().all(|&b| b == SILENCE));
        }
    }

    #[test]
    fn foreign_audio_is_not_a_frame() {
        assert_eq!(FrameId::decode(&[SILENCE; 160]), None);
        assert_eq!(FrameId::decode(&MAGIC), None, "too short");
    }

    #[test]
    fn regrouped_audio_yields_every_frame() {
        // Three frames re-encoded as one payload (as the gateway's hold-ring drain does), then
        // a block of greeting audio.
        let mut raw = Vec::new();
        for seq in 0..3 {
            let mut f = vec![SILENCE; 160];
            f[..ID_LEN].copy_from_slice(&FrameId { call: 4, seq }.encode());
            raw.extend_from_slice(&f);
        }
        raw.extend_from_slice(&[SILENCE; 160]);
        let b64 = base64_simd::STANDARD.encode_to_string(&raw);
        let mut scratch = [0u8; 4096];
        let mut seen = Vec::new();
        let scan = for_each_frame_id(b64.as_bytes(), 160, &mut scratch, |id| seen.push(id.seq));
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!((scan.frames, scan.other_blocks, scan.undecodable), (3, 1, false));
        let bad = for_each_frame_id(b"abc", 160, &mut scratch, |_| panic!());
        assert!(bad.undecodable);
        let too_big = for_each_frame_id(b64.as_bytes(), 160, &mut scratch[..100], |_| panic!());
        assert!(too_big.undecodable);
    }

    #[test]
    fn decoded_len_counts_padding() {
        assert_eq!(decoded_len(b"AAAA"), Some(3));
        assert_eq!(decoded_len(b"AAA="), Some(2));
        assert_eq!(decoded_len(b"AA=="), Some(1));
        assert_eq!(decoded_len(b"AAA"), None);
    }
}
