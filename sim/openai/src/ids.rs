//! Identifiers shaped like OpenAI's: a prefix, an underscore and 21 base-62 characters
//! (`event_CdulTJIOI2YjBMxYUiRzZ`, `resp_…`, `item_…`, `sess_…`), `call_` with 16, and
//! ephemeral keys `ek_` with 32 hex digits.
//!
//! Uniqueness matters, unpredictability does not: a splitmix64 stream seeded from a process-wide
//! counter and the start time, so two sessions never share an id.

use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static SEED: AtomicU64 = AtomicU64::new(0);

/// A per-session id generator.
#[derive(Debug, Clone)]
pub(crate) struct IdGen {
    state: u64,
}

impl IdGen {
    /// A generator distinct from every other one made in this process.
    pub(crate) fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        Self { state: nanos ^ n.rotate_left(17) }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn push_base62(&mut self, out: &mut String, n: usize) {
        let mut bits = self.next_u64();
        let mut left = 10; // 10 base-62 digits per u64 without noticeable bias
        for _ in 0..n {
            if left == 0 {
                bits = self.next_u64();
                left = 10;
            }
            out.push(char::from(ALPHABET[(bits % 62) as usize]));
            bits /= 62;
            left -= 1;
        }
    }

    /// `prefix_` + 21 base-62 characters.
    pub(crate) fn next(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 22);
        s.push_str(prefix);
        s.push('_');
        self.push_base62(&mut s, 21);
        s
    }

    /// `call_` + 16 base-62 characters.
    pub(crate) fn call_id(&mut self) -> String {
        let mut s = String::with_capacity(21);
        s.push_str("call_");
        self.push_base62(&mut s, 16);
        s
    }

    /// `ek_` + 32 lowercase hex digits.
    pub(crate) fn ephemeral_key(&mut self) -> String {
        format!("ek_{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        let mut a = IdGen::new();
        let mut b = IdGen::new();
        let x = a.next("event");
        assert_eq!(x.len(), "event_".len() + 21);
        assert!(x[6..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(x, b.next("event"));
        assert_ne!(a.next("item"), a.next("item"));
        assert_eq!(a.call_id().len(), 21);
        let ek = a.ephemeral_key();
        assert!(ek.starts_with("ek_") && ek.len() == 35);
    }
}
