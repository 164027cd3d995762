//! RFC 6455 §5.3 masking: XOR the payload with a 4-byte key, 8 bytes at a time.
//!
//! tungstenite keeps its masking private, so this is ours. Written without `unsafe`: the
//! `chunks_exact_mut(8)` loop over `u64`s is what the compiler vectorises.

/// XORs `buf` with `key`, as if `buf` started at byte `offset` of the masked payload (so a
/// payload can be unmasked in pieces). Sixteen bytes per step, which the compiler turns into
/// one vector XOR.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = key;
    k.rotate_left(offset % 4);
    let mut lane = [0u8; 16];
    for (i, b) in lane.iter_mut().enumerate() {
        *b = k[i % 4];
    }
    let mut chunks = buf.chunks_exact_mut(16);
    for chunk in &mut chunks {
        for (b, m) in chunk.iter_mut().zip(lane) {
            *b ^= m;
        }
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(lane) {
        *b ^= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_byte_at_a_time_for_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            for offset in 0..4 {
                let mut a: Vec<u8> = (0..len as u8).collect();
                let mut b = a.clone();
                apply_mask(&mut a, key, offset);
                naive(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn in_pieces_equals_whole() {
        let key = [1, 2, 3, 4];
        let orig: Vec<u8> = (0..=255).collect();
        let mut whole = orig.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = orig.clone();
        let (a, b) = pieces.split_at_mut(13);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        assert_eq!(whole, pieces);
    }
}
