//! Twilio's request signature (`X-Twilio-Signature`), computed and verified.
//!
//! Twilio signs `base64(HMAC-SHA1(auth_token, url + sorted(name + value for each POST param)))`.
//! The URL is the one Twilio was told (query string included, port dropped for HTTPS voice
//! callbacks); on a WebSocket upgrade there are no parameters and the URL is the `wss://…` of
//! the TwiML. Some Twilio edges add or drop a trailing `/`, so the upgrade check accepts both.
//!
//! Verification compares in constant time (`ring::hmac::verify` on the decoded tag) and, for
//! the upgrade, allocates nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// Longest upgrade URL whose trailing-slash variant is checked without allocating.
pub const MAX_UPGRADE_URL: usize = 2048;

/// An auth token, ready to sign or verify.
pub struct TwilioSigner {
    key: hmac::Key,
}

impl TwilioSigner {
    /// A signer over the account's auth token.
    pub fn new(auth_token: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token) }
    }

    /// The signature Twilio sends for a request to `url` with form `params` (any order; sorted
    /// here by name, then value, as Twilio's libraries do).
    pub fn sign(&self, url: &str, params: &[(&str, &str)]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(url.as_bytes());
        let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            ctx.update(name.as_bytes());
            ctx.update(value.as_bytes());
        }
        STANDARD.encode(ctx.sign().as_ref())
    }

    /// Whether `signature` is the signature of a form request to `url` with `params`.
    pub fn verify_form(&self, url: &str, params: &[(&str, &str)], signature: &str) -> bool {
        let Some(tag) = decode_tag(signature.as_bytes()) else { return false };
        let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
        sorted.sort();
        let mut msg = Vec::with_capacity(url.len() + 64 * sorted.len());
        msg.extend_from_slice(url.as_bytes());
        for (name, value) in sorted {
            msg.extend_from_slice(name.as_bytes());
            msg.extend_from_slice(value.as_bytes());
        }
        hmac::verify(&self.key, &msg, &tag).is_ok()
    }

    /// Whether `signature` signs the WebSocket upgrade URL `url` (no parameters), with or
    /// without a trailing `/`. Allocates nothing.
    pub fn verify_upgrade(&self, url: &str, signature: &[u8]) -> UpgradeSignature {
        let Some(tag) = decode_tag(signature) else { return UpgradeSignature::Malformed };
        if hmac::verify(&self.key, url.as_bytes(), &tag).is_ok() {
            return UpgradeSignature::Valid;
        }
        // The other spelling: add a '/' or take one away.
        let alt_ok = match url.strip_suffix('/') {
            Some(stripped) => hmac::verify(&self.key, stripped.as_bytes(), &tag).is_ok(),
            None if url.len() < MAX_UPGRADE_URL => {
                let mut buf = [0u8; MAX_UPGRADE_URL];
                buf[..url.len()].copy_from_slice(url.as_bytes());
                buf[url.len()] = b'/';
                hmac::verify(&self.key, &buf[..=url.len()], &tag).is_ok()
            }
            None => false,
        };
        if alt_ok { UpgradeSignature::Valid } else { UpgradeSignature::Mismatch }
    }
}

/// Outcome of an upgrade signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeSignature {
    /// The signature matches the URL (with or without trailing `/`).
    Valid,
    /// Not base64 of a 20-byte tag.
    Malformed,
    /// Well-formed but signed with another token or over another URL.
    Mismatch,
}

fn decode_tag(sig: &[u8]) -> Option<[u8; 20]> {
    // 20 bytes encode to 28 characters with one '=' of padding.
    if sig.len() != 28 {
        return None;
    }
    let mut out = [0u8; 21];
    match STANDARD.decode_slice(sig, &mut out) {
        Ok(20) => {
            let mut tag = [0u8; 20];
            tag.copy_from_slice(&out[..20]);
            Some(tag)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from `../shared/testing.md` (checked against Twilio's own Python library).
    use super::*;

    #[test]
    fn form_post_vector() {
        let s = TwilioSigner::new(b"12345");
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(s.sign(url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(s.verify_form(url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        let mut reversed = params;
        reversed.reverse();
        assert!(s.verify_form(url, &reversed, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!s.verify_form(url, &params[1..], "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn status_callback_vector() {
        let s = TwilioSigner::new(b"a1b2c3d4e5f60718293a4b5c6d7e8f90");
        let params = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("CallSid", "CA11111111111111111111111111111111"),
            ("CallStatus", "completed"),
            ("CallDuration", "42"),
            ("Timestamp", "Tue, 24 Nov 2026 10:00:00 +0000"),
        ];
        assert_eq!(s.sign("https://cp.example.eu/twilio/status", &params), "2SCEmF0lNAQ4TyUzUWR2Zo/HWDw=");
    }

    #[test]
    fn upgrade_vectors_with_and_without_trailing_slash() {
        let s = TwilioSigner::new(b"12345");
        let url = "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def";
        assert_eq!(s.sign(url, &[]), "24fy8gg1vgNB/teYcvsiUvJw6Zo=");
        assert_eq!(s.sign(&format!("{url}/"), &[]), "H3wCTAT7wFDOgJHsvxr9HX2thw4=");
        assert_eq!(s.verify_upgrade(url, b"24fy8gg1vgNB/teYcvsiUvJw6Zo="), UpgradeSignature::Valid);
        assert_eq!(s.verify_upgrade(url, b"H3wCTAT7wFDOgJHsvxr9HX2thw4="), UpgradeSignature::Valid);
        let with_slash = format!("{url}/");
        assert_eq!(s.verify_upgrade(&with_slash, b"24fy8gg1vgNB/teYcvsiUvJw6Zo="), UpgradeSignature::Valid);
        assert_eq!(s.verify_upgrade(url, b"34fy8gg1vgNB/teYcvsiUvJw6Zo="), UpgradeSignature::Mismatch);
        assert_eq!(s.verify_upgrade(url, b"not base64"), UpgradeSignature::Malformed);
        assert_eq!(
            TwilioSigner::new(b"54321").verify_upgrade(url, b"24fy8gg1vgNB/teYcvsiUvJw6Zo="),
            UpgradeSignature::Mismatch
        );
    }
}
