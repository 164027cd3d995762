//! Shared harness code for the fuzz targets in `fuzz_targets/` (see `README.md`).
//!
//! - [`ws`]: drives the WebSocket [`Decoder`](callway_gateway::core::ws::Decoder) over a
//!   [`RecvBuf`](callway_gateway::core::buf::RecvBuf) in arbitrary chunk splits and checks it
//!   against a whole-buffer run and, for well-framed input, against a model of RFC 6455.
//! - [`json`]: a small JSON generator driven by the fuzzer's bytes, so the differential targets
//!   reach the parsers' fast paths (key order, whitespace, duplicates, nested and empty objects,
//!   escapes) far more often than byte mutations of seeds alone would.
//! - [`call`]: drives one call state machine through arbitrary interleavings of both peers'
//!   bytes and events, connects, drops, tool results and time, checking its invariants.
//! - [`within`]: whether a slice borrowed from the input really points into it.

pub mod call;
pub mod json;
pub mod ws;

/// Whether `part` lies inside `whole` (the parsers return borrowed slices of their input).
pub fn within(whole: &[u8], part: &[u8]) -> bool {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// Secrets, keys and clocks shared by the targets and the seed generator (so the seeds carry
/// valid signatures and tokens and reach the accepting paths).
pub mod fixtures {
    use callway_gateway::core::auth::UpgradeAuthorizer;
    use contract::stream_token::{StreamClaims, StreamTokenMinter, StreamTokenVerifier};

    /// Twilio auth token signing the upgrades.
    pub const TWILIO_AUTH_TOKEN: &[u8] = b"12345";
    /// The public origin Twilio connects to.
    pub const PUBLIC_ORIGIN: &str = "wss://edge.example.eu";
    /// Stream token secret in use.
    pub const TOKEN_SECRET: &[u8] = b"fuzz-stream-token-secret-0123456789abcdef";
    /// A second secret (rotation).
    pub const OLD_TOKEN_SECRET: &[u8] = b"fuzz-old-stream-token-secret-fedcba987654";
    /// A secret the verifier does not have.
    pub const FOREIGN_SECRET: &[u8] = b"fuzz-foreign-token-secret-000000000000000";
    /// The clock the targets verify at (2026-01-01T00:00:00Z).
    pub const NOW: u64 = 1_767_225_600;
    /// Tolerated clock skew.
    pub const LEEWAY: u64 = 30;
    /// The client handshake key of `upgrade_response` (RFC 6455 §1.3's example).
    pub const CLIENT_KEY: [u8; 16] = *b"the sample nonce";
    /// Its `Sec-WebSocket-Accept`.
    pub const CLIENT_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// The verifier: both secrets accepted.
    pub fn verifier() -> StreamTokenVerifier {
        StreamTokenVerifier::new(&[TOKEN_SECRET, OLD_TOKEN_SECRET], LEEWAY).expect("strong secrets")
    }

    /// The upgrade authorizer of the gateway, configured with the fixtures.
    pub fn authorizer() -> UpgradeAuthorizer {
        UpgradeAuthorizer::new(TWILIO_AUTH_TOKEN, PUBLIC_ORIGIN, verifier())
    }

    /// A token valid at [`NOW`] for a while.
    pub fn valid_token() -> String {
        let claims =
            StreamClaims { call_id: [0x11; 16], lead_id: [0x22; 16], expires_at: NOW + 600, nonce: [7; 12] };
        StreamTokenMinter::new(TOKEN_SECRET).expect("strong secret").mint(&claims)
    }
}
