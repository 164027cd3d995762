//! Stream tokens: how the control plane tells the gateway "this Twilio stream is call X of
//! lead Y, until time T", inside the `<Stream url>` path.
//!
//! # Format (version 1)
//!
//! ```text
//! v1.<payload>.<tag>
//! payload = base64url-nopad( call_id[16] | lead_id[16] | expires_at_unix_be[8] | nonce[12] )   70 chars
//! tag     = base64url-nopad( HMAC-SHA256(secret, "v1." + payload) )                             43 chars
//! ```
//!
//! 117 characters in all, safe in a URL path segment (base64url, `.` separators), well under the
//! 200-character budget. The version prefix is covered by the MAC, so a token cannot be replayed
//! under another version's rules. The nonce makes every token unique, so the control plane can
//! redeem it exactly once.
//!
//! Verification allocates nothing, compares the tag in constant time (`ring::hmac::verify`) and
//! tolerates a configurable clock skew on the expiry. Several secrets may be accepted at once,
//! which is how the secret is rotated: mint with the new one, verify with both for a while.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// The only version this code mints and accepts.
pub const VERSION_PREFIX: &str = "v1.";
/// Bytes of the decoded payload.
pub const PAYLOAD_LEN: usize = 16 + 16 + 8 + 12;
/// Characters of the encoded payload.
pub const PAYLOAD_B64_LEN: usize = 70;
/// Characters of the encoded tag.
pub const TAG_B64_LEN: usize = 43;
/// Exact length of a version-1 token.
pub const TOKEN_LEN: usize = VERSION_PREFIX.len() + PAYLOAD_B64_LEN + 1 + TAG_B64_LEN;
/// Shortest secret accepted (bytes): HMAC-SHA256 wants at least its output size.
pub const MIN_SECRET_LEN: usize = 32;

/// What a stream token asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamClaims {
    /// The call record in the control plane (a UUID's 16 bytes).
    pub call_id: [u8; 16],
    /// The lead being called (a UUID's 16 bytes).
    pub lead_id: [u8; 16],
    /// Unix time (seconds) after which the token is refused (plus the verifier's leeway).
    pub expires_at: u64,
    /// Random bytes that make every token unique; the unit of single-use redemption.
    pub nonce: [u8; 12],
}

/// Why a token was refused. The `Display` text is safe to log: it never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not `v1.<70 chars>.<43 chars>` of base64url.
    #[error("stream token is malformed (expected v1.<payload>.<tag>, {TOKEN_LEN} characters)")]
    Malformed,
    /// The version prefix is not one this build understands.
    #[error("stream token version is not supported (this gateway accepts v1 only)")]
    UnsupportedVersion,
    /// The tag does not match any configured secret: forged, corrupted, or signed with a secret
    /// this gateway does not have (check `STREAM_TOKEN_SECRET` on both services).
    #[error(
        "stream token signature is invalid (forged, or STREAM_TOKEN_SECRET differs between control plane and gateway)"
    )]
    BadSignature,
    /// The token's lifetime (plus leeway) is over.
    #[error("stream token expired at {expires_at} (now {now}, leeway {leeway_secs}s)")]
    Expired {
        /// When the token expired (unix seconds).
        expires_at: u64,
        /// The verifier's clock (unix seconds).
        now: u64,
        /// Tolerated skew (seconds).
        leeway_secs: u64,
    },
}

/// Why a secret cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "STREAM_TOKEN_SECRET must be at least {MIN_SECRET_LEN} bytes (got {0}); generate one with `openssl rand -base64 48`"
)]
pub struct WeakSecret(pub usize);

/// Mints tokens (the control plane's side).
pub struct StreamTokenMinter {
    key: hmac::Key,
}

impl StreamTokenMinter {
    /// A minter over `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        check_secret(secret)?;
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) })
    }

    /// Encodes and signs `claims`. The caller draws the nonce from a CSPRNG.
    pub fn mint(&self, claims: &StreamClaims) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(&claims.call_id);
        payload[16..32].copy_from_slice(&claims.lead_id);
        payload[32..40].copy_from_slice(&claims.expires_at.to_be_bytes());
        payload[40..].copy_from_slice(&claims.nonce);
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(VERSION_PREFIX);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let tag = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        debug_assert_eq!(token.len(), TOKEN_LEN);
        token
    }
}

/// Verifies tokens (the gateway's side). Holds one or more secrets (rotation).
pub struct StreamTokenVerifier {
    keys: Vec<hmac::Key>,
    leeway_secs: u64,
}

impl StreamTokenVerifier {
    /// A verifier accepting tokens signed by any of `secrets`, with `leeway_secs` of clock skew
    /// tolerated on the expiry.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S], leeway_secs: u64) -> Result<Self, WeakSecret> {
        let mut keys = Vec::with_capacity(secrets.len());
        for s in secrets {
            check_secret(s.as_ref())?;
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, s.as_ref()));
        }
        if keys.is_empty() {
            return Err(WeakSecret(0));
        }
        Ok(Self { keys, leeway_secs })
    }

    /// Checks `token` at unix time `now`: shape, version, tag (constant time), expiry.
    /// Allocates nothing. The signature is checked before the expiry, so an attacker learns
    /// nothing about a forged token's claims.
    pub fn verify(&self, token: &[u8], now: u64) -> Result<StreamClaims, TokenError> {
        if token.len() < 3 || token[0] != b'v' || token[2] != b'.' {
            return Err(TokenError::Malformed);
        }
        if &token[..3] != VERSION_PREFIX.as_bytes() {
            return Err(TokenError::UnsupportedVersion);
        }
        if token.len() != TOKEN_LEN || token[3 + PAYLOAD_B64_LEN] != b'.' {
            return Err(TokenError::Malformed);
        }
        let signed = &token[..3 + PAYLOAD_B64_LEN];
        let payload_b64 = &token[3..3 + PAYLOAD_B64_LEN];
        let tag_b64 = &token[4 + PAYLOAD_B64_LEN..];

        let mut tag = [0u8; 33]; // decode_slice wants room for the worst case
        let n = URL_SAFE_NO_PAD.decode_slice(tag_b64, &mut tag).map_err(|_| TokenError::Malformed)?;
        if n != 32 {
            return Err(TokenError::Malformed);
        }
        if !self.keys.iter().any(|k| hmac::verify(k, signed, &tag[..32]).is_ok()) {
            return Err(TokenError::BadSignature);
        }

        let mut payload = [0u8; PAYLOAD_LEN + 1];
        let n = URL_SAFE_NO_PAD.decode_slice(payload_b64, &mut payload).map_err(|_| TokenError::Malformed)?;
        if n != PAYLOAD_LEN {
            return Err(TokenError::Malformed);
        }
        let mut claims = StreamClaims { call_id: [0; 16], lead_id: [0; 16], expires_at: 0, nonce: [0; 12] };
        claims.call_id.copy_from_slice(&payload[..16]);
        claims.lead_id.copy_from_slice(&payload[16..32]);
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[32..40]);
        claims.expires_at = u64::from_be_bytes(exp);
        claims.nonce.copy_from_slice(&payload[40..52]);

        if now > claims.expires_at.saturating_add(self.leeway_secs) {
            return Err(TokenError::Expired {
                expires_at: claims.expires_at,
                now,
                leeway_secs: self.leeway_secs,
            });
        }
        Ok(claims)
    }
}

fn check_secret(secret: &[u8]) -> Result<(), WeakSecret> {
    if secret.len() < MIN_SECRET_LEN { Err(WeakSecret(secret.len())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210-other-secret";

    fn claims() -> StreamClaims {
        StreamClaims { call_id: [1; 16], lead_id: [2; 16], expires_at: 1_000_000, nonce: [3; 12] }
    }

    #[test]
    fn round_trip_and_length() {
        let token = StreamTokenMinter::new(SECRET).unwrap().mint(&claims());
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.len() <= 200);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let v = StreamTokenVerifier::new(&[SECRET], 30).unwrap();
        assert_eq!(v.verify(token.as_bytes(), 999_999).unwrap(), claims());
    }

    #[test]
    fn expiry_respects_leeway() {
        let token = StreamTokenMinter::new(SECRET).unwrap().mint(&claims());
        let v = StreamTokenVerifier::new(&[SECRET], 30).unwrap();
        assert!(v.verify(token.as_bytes(), 1_000_030).is_ok());
        assert_eq!(
            v.verify(token.as_bytes(), 1_000_031),
            Err(TokenError::Expired { expires_at: 1_000_000, now: 1_000_031, leeway_secs: 30 })
        );
    }

    #[test]
    fn rotation_accepts_old_and_new_secret() {
        let old = StreamTokenMinter::new(OTHER).unwrap().mint(&claims());
        let v = StreamTokenVerifier::new(&[SECRET, OTHER], 0).unwrap();
        assert!(v.verify(old.as_bytes(), 0).is_ok());
        let only_new = StreamTokenVerifier::new(&[SECRET], 0).unwrap();
        assert_eq!(only_new.verify(old.as_bytes(), 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn every_single_byte_change_is_refused() {
        let token = StreamTokenMinter::new(SECRET).unwrap().mint(&claims());
        let v = StreamTokenVerifier::new(&[SECRET], 0).unwrap();
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            assert!(v.verify(&t, 0).is_err(), "byte {i} changed and still accepted");
        }
    }

    #[test]
    fn shapes_are_classified() {
        let v = StreamTokenVerifier::new(&[SECRET], 0).unwrap();
        assert_eq!(v.verify(b"", 0), Err(TokenError::Malformed));
        assert_eq!(v.verify(b"hello", 0), Err(TokenError::Malformed));
        assert_eq!(v.verify(b"v2.abc.def", 0), Err(TokenError::UnsupportedVersion));
        let token = StreamTokenMinter::new(SECRET).unwrap().mint(&claims());
        assert_eq!(v.verify(&token.as_bytes()[..TOKEN_LEN - 1], 0), Err(TokenError::Malformed));
        // A tag with non-canonical trailing bits must not decode to the same tag.
        let mut t = token.into_bytes();
        t[TOKEN_LEN - 1] = b'!';
        assert_eq!(v.verify(&t, 0), Err(TokenError::Malformed));
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert_eq!(StreamTokenMinter::new(b"short").err(), Some(WeakSecret(5)));
        assert!(StreamTokenVerifier::new::<&[u8]>(&[], 0).is_err());
    }
}
