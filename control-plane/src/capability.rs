//! Session capabilities: what `/api/session` hands the browser so that the tool routes
//! (`save_lead`, `trigger_call`) only act for the web conversation that was started here.
//!
//! # Format
//! ```text
//! cap1.<base64url(session_id[16] | expires_at_unix_be[8])>.<base64url(HMAC-SHA256(key, "cap1." + payload))>
//! ```
//! Stateless (any control-plane instance checks it), unforgeable without the key, bounded in
//! time. The key is derived from `STREAM_TOKEN_SECRET` under its own label, so a capability can
//! never be confused with a stream token (different prefix, different key). Pure: the caller
//! passes the time in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use uuid::Uuid;

const PREFIX: &str = "cap1.";
const PAYLOAD_LEN: usize = 24;
/// Label under which the capability key is derived from the stream-token secret.
const KEY_LABEL: &[u8] = b"callway/session-capability/v1";

/// Mints and checks session capabilities.
pub struct CapabilityKey {
    key: hmac::Key,
    /// Derived from `STREAM_TOKEN_SECRET_PREVIOUS` during a rotation: accepted, never minted with.
    previous: Option<hmac::Key>,
}

/// Why a capability was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// No `Authorization: Bearer cap1.…` header.
    #[error("missing session capability: send `Authorization: Bearer <capability from /api/session>`")]
    Missing,
    /// Not of the `cap1.<payload>.<tag>` form.
    #[error("session capability is malformed")]
    Malformed,
    /// The tag does not match: forged or altered.
    #[error("session capability is invalid (forged or altered)")]
    Forged,
    /// The session is over; start a new one.
    #[error("session capability expired: start a new session with POST /api/session")]
    Expired,
}

impl CapabilityError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CapabilityError::Missing => "capability_missing",
            CapabilityError::Malformed => "capability_malformed",
            CapabilityError::Forged => "capability_invalid",
            CapabilityError::Expired => "capability_expired",
        }
    }
}

impl CapabilityKey {
    /// Derives the capability key from the stream-token secret.
    pub fn derive(stream_token_secret: &[u8]) -> Self {
        Self::derive_with_previous(stream_token_secret, None)
    }

    /// [`CapabilityKey::derive`], also accepting capabilities minted under `previous`
    /// (`STREAM_TOKEN_SECRET_PREVIOUS`), so page sessions survive a rotation.
    pub fn derive_with_previous(stream_token_secret: &[u8], previous: Option<&[u8]>) -> Self {
        let key_of = |secret: &[u8]| {
            let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
            let derived = hmac::sign(&root, KEY_LABEL);
            hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
        };
        Self { key: key_of(stream_token_secret), previous: previous.map(key_of) }
    }

    /// A capability for `session_id`, valid until `expires_at` (unix seconds).
    pub fn mint(&self, session_id: Uuid, expires_at: u64) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(session_id.as_bytes());
        payload[16..].copy_from_slice(&expires_at.to_be_bytes());
        let mut out = String::with_capacity(80);
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let tag = hmac::sign(&self.key, out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
        out
    }

    /// Checks a capability at unix time `now` and returns its session id.
    pub fn verify(&self, cap: &str, now: u64) -> Result<Uuid, CapabilityError> {
        let rest = cap.strip_prefix(PREFIX).ok_or(CapabilityError::Malformed)?;
        let (payload_b64, tag_b64) = rest.split_once('.').ok_or(CapabilityError::Malformed)?;
        let signed = &cap[..PREFIX.len() + payload_b64.len()];
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| CapabilityError::Malformed)?;
        let current = hmac::verify(&self.key, signed.as_bytes(), &tag).is_ok();
        let previous =
            self.previous.as_ref().is_some_and(|k| hmac::verify(k, signed.as_bytes(), &tag).is_ok());
        if !current && !previous {
            return Err(CapabilityError::Forged);
        }
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| CapabilityError::Malformed)?;
        if payload.len() != PAYLOAD_LEN {
            return Err(CapabilityError::Malformed);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&payload[..16]);
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[16..]);
        if now > u64::from_be_bytes(exp) {
            return Err(CapabilityError::Expired);
        }
        Ok(Uuid::from_bytes(id))
    }
}

/// The lead a web session writes: derived from the session id, so `save_lead` is idempotent
/// for a session by construction (same session, same lead row), even when the write is queued
/// in the outbox while the database is down.
pub fn lead_id_for_session(session_id: Uuid) -> Uuid {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        &[b"callway/lead/".as_slice(), session_id.as_bytes()].concat(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn round_trip_and_expiry() {
        let k = CapabilityKey::derive(SECRET);
        let sid = Uuid::new_v4();
        let cap = k.mint(sid, 1_000);
        assert!(cap.starts_with("cap1."));
        assert_eq!(k.verify(&cap, 1_000), Ok(sid));
        assert_eq!(k.verify(&cap, 1_001), Err(CapabilityError::Expired));
    }

    #[test]
    fn forged_and_malformed_are_refused() {
        let k = CapabilityKey::derive(SECRET);
        let cap = k.mint(Uuid::new_v4(), 1_000);
        let other = CapabilityKey::derive(b"another-secret-another-secret-another");
        assert_eq!(other.verify(&cap, 0), Err(CapabilityError::Forged));
        for i in 5..cap.len() {
            let mut b = cap.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            assert!(k.verify(&s, 0).is_err(), "byte {i}");
        }
        assert_eq!(k.verify("nope", 0), Err(CapabilityError::Malformed));
        assert_eq!(k.verify("cap1.abc", 0), Err(CapabilityError::Malformed));
        // A stream token is not a capability.
        assert_eq!(k.verify("v1.abc.def", 0), Err(CapabilityError::Malformed));
    }

    #[test]
    fn lead_id_is_stable_per_session() {
        let s = Uuid::new_v4();
        assert_eq!(lead_id_for_session(s), lead_id_for_session(s));
        assert_ne!(lead_id_for_session(s), lead_id_for_session(Uuid::new_v4()));
    }

    #[test]
    fn during_a_rotation_capabilities_of_the_previous_secret_still_open_the_session() {
        let (old, new) = (
            b"stream-token-secret-before-rotation!".as_slice(),
            b"stream-token-secret-after-rotation!!".as_slice(),
        );
        let sid = Uuid::new_v4();
        let before = CapabilityKey::derive(old).mint(sid, 1_000);
        let rotating = CapabilityKey::derive_with_previous(new, Some(old));
        assert_eq!(rotating.verify(&before, 10), Ok(sid));
        assert_eq!(
            rotating.mint(sid, 1_000),
            CapabilityKey::derive(new).mint(sid, 1_000),
            "minted with the new one"
        );
        assert_eq!(
            CapabilityKey::derive(new).verify(&before, 10),
            Err(CapabilityError::Forged),
            "after the window"
        );
    }
}
