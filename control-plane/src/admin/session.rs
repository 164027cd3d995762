//! The operator's login session: a cookie that proves the admin token was typed, without
//! being the token.
//!
//! ```text
//! callway_admin = <expires_at unix seconds>.<base64url(HMAC-SHA256(key, "callway-admin-v1." expires_at))>
//! key           = SHA-256("callway admin session" ‖ ADMIN_API_TOKEN)
//! ```
//!
//! Stateless (any control plane with the same token accepts it), expires on its own
//! ([`SESSION_SECS`]), and every session ends when the token is rotated. Set `HttpOnly`,
//! `Secure`, `SameSite=Strict`, `Path=/admin`: scripts cannot read it, it never travels in clear
//! or from another site. Sans-IO: the time is passed in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{digest, hmac};

/// The cookie's name.
pub const COOKIE: &str = "callway_admin";
/// How long a login lasts (8 hours: a working day).
pub const SESSION_SECS: u64 = 8 * 3600;
const LABEL: &str = "callway-admin-v1.";

/// Mints and checks session cookies for one admin token.
pub struct SessionKey(hmac::Key);

impl SessionKey {
    /// The key of `admin_token`.
    pub fn new(admin_token: &str) -> SessionKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"callway admin session");
        ctx.update(admin_token.as_bytes());
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref()))
    }

    /// A session value valid until `now + SESSION_SECS`.
    pub fn mint(&self, now: u64) -> String {
        let expires = now + SESSION_SECS;
        let tag = hmac::sign(&self.0, format!("{LABEL}{expires}").as_bytes());
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `value` is a session this key minted that has not expired at `now` (the tag is
    /// compared in constant time).
    pub fn check(&self, value: &str, now: u64) -> bool {
        let Some((expires, tag)) = value.split_once('.') else { return false };
        let (Ok(exp), Ok(tag)) = (expires.parse::<u64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        exp > now
            && exp <= now + SESSION_SECS
            && hmac::verify(&self.0, format!("{LABEL}{expires}").as_bytes(), &tag).is_ok()
    }
}

/// The `Set-Cookie` value that opens a session with `value`.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Max-Age={SESSION_SECS}; Path=/admin; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that ends the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; Path=/admin; HttpOnly; Secure; SameSite=Strict")
}

/// The session value in a `Cookie` request header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == COOKIE).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000;

    #[test]
    fn a_session_holds_until_it_expires_and_only_for_its_token() {
        let key = SessionKey::new("admin-token-0123456789abcdef");
        let s = key.mint(NOW);
        assert!(key.check(&s, NOW));
        assert!(key.check(&s, NOW + SESSION_SECS - 1));
        assert!(!key.check(&s, NOW + SESSION_SECS), "expired");
        assert!(!SessionKey::new("another-token-0123456789abcdef").check(&s, NOW), "a rotated token ends it");
        assert!(!s.contains("admin-token"), "the cookie is not the token");
    }

    #[test]
    fn forged_or_stretched_sessions_are_refused() {
        let key = SessionKey::new("admin-token-0123456789abcdef");
        let s = key.mint(NOW);
        let (_, tag) = s.split_once('.').unwrap();
        assert!(!key.check(&format!("{}.{tag}", NOW + 10 * SESSION_SECS), NOW), "expiry is signed");
        for bad in ["", ".", "abc", "123.", "123.!!", &format!("{}.AAAA", NOW + 60)] {
            assert!(!key.check(bad, NOW), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let c = set_cookie("v");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] {
            assert!(c.contains(attr), "{c}");
        }
        assert_eq!(from_cookie_header("a=b; callway_admin=xyz.tag; c=d"), Some("xyz.tag"));
        assert_eq!(from_cookie_header("callway_adminx=1"), None);
    }
}
