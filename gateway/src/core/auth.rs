//! Who may open a Media Stream: the checks on the upgrade request, before the 101 and before
//! any upstream work is paid for.
//!
//! In order (cheapest and most telling first):
//! 1. the path is `{prefix}{token}` with no query string (Twilio never sends one: a `?` means
//!    someone else is knocking);
//! 2. `X-Twilio-Signature` is HMAC-SHA1 of the **configured public URL** (not the request's
//!    `Host`, which a proxy may rewrite) plus the path, with or without a trailing `/`;
//! 3. the stream token in the path is ours, untampered and unexpired ([`contract::stream_token`]).
//!
//! Single-use redemption of the token happens next, at the control plane (it needs the
//! database); this module is pure and allocation-free.

use contract::stream_token::{StreamClaims, StreamTokenVerifier, TokenError};
use contract::twilio_signature::{MAX_UPGRADE_URL, TwilioSigner, UpgradeSignature};

use crate::core::ws::upgrade::UpgradeRequest;

/// The path prefix of the original design: `/api/twilio/media-stream/<token>`.
pub const STREAM_PATH_PREFIX: &str = "/api/twilio/media-stream/";

/// Why an upgrade was refused. [`AuthError::status`] is the HTTP answer; the `Display` text is
/// for the operator's log and says what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The path is not a media-stream path.
    #[error("path is not {STREAM_PATH_PREFIX}<token>: check the <Stream url> the control plane writes")]
    UnknownPath,
    /// The request has a query string (Twilio's `<Stream url>` cannot carry one).
    #[error("query string on a media-stream upgrade: Twilio never sends one, refusing")]
    QueryString,
    /// No `X-Twilio-Signature`.
    #[error("no X-Twilio-Signature header: the request does not come from Twilio")]
    MissingSignature,
    /// The signature does not match the public URL.
    #[error(
        "X-Twilio-Signature does not match: check TWILIO_AUTH_TOKEN and that TWILIO_STREAM_DOMAIN is the host written in the TwiML"
    )]
    BadSignature,
    /// The stream token was refused.
    #[error("stream token refused: {0}")]
    Token(TokenError),
    /// The public URL would be longer than the signature check supports.
    #[error("stream URL longer than {MAX_UPGRADE_URL} bytes")]
    UrlTooLong,
}

impl AuthError {
    /// HTTP status for the refusal.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::UnknownPath => 404,
            AuthError::QueryString | AuthError::UrlTooLong => 400,
            AuthError::MissingSignature => 401,
            AuthError::BadSignature => 403,
            AuthError::Token(TokenError::Expired { .. }) => 410,
            AuthError::Token(_) => 403,
        }
    }
}

/// Checks upgrade requests against the gateway's configuration.
pub struct UpgradeAuthorizer {
    signer: TwilioSigner,
    /// `wss://{TWILIO_STREAM_DOMAIN}` with no trailing slash.
    public_origin: String,
    verifier: StreamTokenVerifier,
}

impl UpgradeAuthorizer {
    /// From the Twilio auth token, the public origin Twilio connects to (`wss://edge.example.eu`)
    /// and the stream-token verifier.
    pub fn new(twilio_auth_token: &[u8], public_origin: &str, verifier: StreamTokenVerifier) -> Self {
        Self {
            signer: TwilioSigner::new(twilio_auth_token),
            public_origin: public_origin.trim_end_matches('/').to_owned(),
            verifier,
        }
    }

    /// Runs every check on `req` at unix time `now`; the token's claims on success.
    pub fn authorize(&self, req: &UpgradeRequest<'_>, now: u64) -> Result<StreamClaims, AuthError> {
        if req.path.contains('?') {
            return Err(AuthError::QueryString);
        }
        let token = req.path.strip_prefix(STREAM_PATH_PREFIX).ok_or(AuthError::UnknownPath)?;
        let token = token.strip_suffix('/').unwrap_or(token);
        if token.is_empty() || token.contains('/') {
            return Err(AuthError::UnknownPath);
        }
        let signature = req.twilio_signature.ok_or(AuthError::MissingSignature)?;

        let url_len = self.public_origin.len() + req.path.len();
        if url_len > MAX_UPGRADE_URL {
            return Err(AuthError::UrlTooLong);
        }
        let mut url = [0u8; MAX_UPGRADE_URL];
        url[..self.public_origin.len()].copy_from_slice(self.public_origin.as_bytes());
        url[self.public_origin.len()..url_len].copy_from_slice(req.path.as_bytes());
        // Both halves are UTF-8 strings.
        let url = std::str::from_utf8(&url[..url_len]).map_err(|_| AuthError::UnknownPath)?;
        match self.signer.verify_upgrade(url, signature.as_bytes()) {
            UpgradeSignature::Valid => {}
            UpgradeSignature::Malformed | UpgradeSignature::Mismatch => return Err(AuthError::BadSignature),
        }
        self.verifier.verify(token.as_bytes(), now).map_err(AuthError::Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::stream_token::StreamTokenMinter;

    const SECRET: &[u8] = b"stream-token-secret-stream-token-secret";

    fn setup() -> (UpgradeAuthorizer, String) {
        let claims = StreamClaims { call_id: [1; 16], lead_id: [2; 16], expires_at: 1000, nonce: [3; 12] };
        let token = StreamTokenMinter::new(SECRET).unwrap().mint(&claims);
        let auth = UpgradeAuthorizer::new(
            b"12345",
            "wss://edge.example.eu/",
            StreamTokenVerifier::new(&[SECRET], 5).unwrap(),
        );
        (auth, token)
    }

    fn request<'a>(path: &'a str, sig: Option<&'a str>) -> UpgradeRequest<'a> {
        UpgradeRequest {
            head_len: 0,
            path,
            host: "internal-lb:8080",
            key: "dGhlIHNhbXBsZSBub25jZQ==",
            twilio_signature: sig,
        }
    }

    #[test]
    fn the_testing_md_vector_passes_signature_then_fails_on_its_fake_token() {
        let (auth, _) = setup();
        let path = "/api/twilio/media-stream/v1.abc.def";
        // Signature of testing.md: valid; the token `v1.abc.def` is not a real token.
        let r = auth.authorize(&request(path, Some("24fy8gg1vgNB/teYcvsiUvJw6Zo=")), 0);
        assert_eq!(r, Err(AuthError::Token(TokenError::Malformed)));
        let r = auth.authorize(&request(path, Some("H3wCTAT7wFDOgJHsvxr9HX2thw4=")), 0);
        assert_eq!(r, Err(AuthError::Token(TokenError::Malformed)));
    }

    #[test]
    fn a_signed_real_token_is_authorised_until_it_expires() {
        let (auth, token) = setup();
        let path = format!("{STREAM_PATH_PREFIX}{token}");
        let sig = TwilioSigner::new(b"12345").sign(&format!("wss://edge.example.eu{path}"), &[]);
        let claims = auth.authorize(&request(&path, Some(&sig)), 1000).unwrap();
        assert_eq!(claims.lead_id, [2; 16]);
        let expired = auth.authorize(&request(&path, Some(&sig)), 1006).unwrap_err();
        assert_eq!(expired.status(), 410);
        // Trailing slash on the request, signature over the URL without it.
        let slashed = format!("{path}/");
        assert!(auth.authorize(&request(&slashed, Some(&sig)), 1000).is_ok());
    }

    #[test]
    fn refusals_have_precise_statuses() {
        let (auth, token) = setup();
        let path = format!("{STREAM_PATH_PREFIX}{token}");
        let sig = TwilioSigner::new(b"12345").sign(&format!("wss://edge.example.eu{path}"), &[]);
        let cases = [
            (format!("{path}?x=1"), Some(sig.clone()), AuthError::QueryString, 400),
            ("/other".to_owned(), Some(sig.clone()), AuthError::UnknownPath, 404),
            (STREAM_PATH_PREFIX.to_owned(), Some(sig.clone()), AuthError::UnknownPath, 404),
            (path.clone(), None, AuthError::MissingSignature, 401),
            (path.clone(), Some("24fy8gg1vgNB/teYcvsiUvJw6Zo=".to_owned()), AuthError::BadSignature, 403),
            (path.clone(), Some("garbage".to_owned()), AuthError::BadSignature, 403),
        ];
        for (p, s, err, status) in cases {
            let got = auth.authorize(&request(&p, s.as_deref()), 1000);
            assert_eq!(got, Err(err), "{p}");
            assert_eq!(err.status(), status);
        }
        // Signed with another auth token.
        let other = TwilioSigner::new(b"54321").sign(&format!("wss://edge.example.eu{path}"), &[]);
        assert_eq!(auth.authorize(&request(&path, Some(&other)), 1000), Err(AuthError::BadSignature));
        // Signed over another host (the request's Host is ignored; the configured origin counts).
        let wrong_host = TwilioSigner::new(b"12345").sign(&format!("wss://internal-lb:8080{path}"), &[]);
        assert_eq!(auth.authorize(&request(&path, Some(&wrong_host)), 1000), Err(AuthError::BadSignature));
    }
}
