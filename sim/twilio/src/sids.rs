//! Twilio resource identifiers (SIDs): a two-letter type prefix and 32 hexadecimal digits.
//!
//! Twilio documents the pattern as `^CA[0-9a-fA-F]{32}$` (and likewise `AC` accounts, `MZ`
//! streams, `PN` phone numbers/caller IDs); the ones it issues use lowercase hex. The simulator
//! issues random SIDs of exactly that shape so that code checking the shape (the gateway, the
//! control plane) sees what it would see in production.

use rand::RngCore as _;

/// Account (`AC…`).
pub const ACCOUNT: &str = "AC";
/// Call (`CA…`).
pub const CALL: &str = "CA";
/// Media stream (`MZ…`).
pub const STREAM: &str = "MZ";
/// Phone number or verified caller ID (`PN…`).
pub const PHONE_NUMBER: &str = "PN";
/// API key (`SK…`).
pub const API_KEY: &str = "SK";
/// Application (`AP…`).
pub const APPLICATION: &str = "AP";

/// A fresh random SID with the given two-letter `prefix` (see the constants of this module).
pub fn new_sid(prefix: &str) -> String {
    debug_assert!(prefix.len() == 2 && prefix.bytes().all(|b| b.is_ascii_uppercase()));
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut s = String::with_capacity(34);
    s.push_str(prefix);
    for b in bytes {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

/// Whether `sid` has Twilio's shape for `prefix`: the prefix, then exactly 32 hex digits.
pub fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_uniqueness() {
        let a = new_sid(CALL);
        let b = new_sid(CALL);
        assert!(is_sid(&a, CALL), "{a}");
        assert_ne!(a, b);
        assert!(a[2..].bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(!is_sid(&a, STREAM));
        assert!(!is_sid("CA123", CALL));
        assert!(!is_sid("CAzz000000000000000000000000000000", CALL));
    }
}
