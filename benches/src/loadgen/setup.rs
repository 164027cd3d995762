//! What the gateway and the simulated parties must agree on: the shared secrets, each call's
//! stream token, signed upgrade URL and Twilio ids, and the environment a spawned gateway gets.
//!
//! Everything here is computed before a run starts (minting a token and signing a URL cost a
//! few microseconds each), so none of it is on the measured path.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use contract::stream_token::{StreamClaims, StreamTokenMinter};
use contract::twilio_signature::TwilioSigner;

/// The path prefix the gateway serves Media Streams on (`core::auth::STREAM_PATH_PREFIX`).
pub const STREAM_PATH_PREFIX: &str = callway_gateway::core::auth::STREAM_PATH_PREFIX;

/// Secrets and the public stream domain, shared with the gateway.
#[derive(Clone)]
pub struct Secrets {
    /// `TWILIO_AUTH_TOKEN`: signs the upgrades.
    pub twilio_auth_token: String,
    /// `STREAM_TOKEN_SECRET`: mints the stream tokens.
    pub stream_token_secret: String,
    /// `INTERNAL_API_SECRET`: the gateway signs its control-plane requests with it (the stub
    /// control plane does not check).
    pub internal_api_secret: String,
    /// `TWILIO_STREAM_DOMAIN`: the host the upgrade signature is computed over.
    pub stream_domain: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("stream_domain", &self.stream_domain).finish_non_exhaustive()
    }
}

/// `n` random bytes as hex (from `/dev/urandom`; the clock if it cannot be read).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        let mut x = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
        for b in &mut bytes {
            x = splitmix(x);
            *b = x as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One step of splitmix64 (seeds, keys: nothing here needs to be unpredictable).
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Secrets {
    /// Fresh random secrets for a spawned gateway; the given values where set.
    pub fn new(
        twilio_auth_token: Option<String>,
        stream_token_secret: Option<String>,
        internal_api_secret: Option<String>,
        stream_domain: String,
    ) -> Result<Self, String> {
        let s = Self {
            twilio_auth_token: twilio_auth_token.unwrap_or_else(|| random_hex(16)),
            stream_token_secret: stream_token_secret.unwrap_or_else(|| random_hex(32)),
            internal_api_secret: internal_api_secret.unwrap_or_else(|| random_hex(32)),
            stream_domain,
        };
        if s.stream_token_secret.len() < contract::stream_token::MIN_SECRET_LEN {
            return Err(format!(
                "STREAM_TOKEN_SECRET must be at least {} bytes",
                contract::stream_token::MIN_SECRET_LEN
            ));
        }
        if s.internal_api_secret.len() < 32 {
            return Err("INTERNAL_API_SECRET must be at least 32 bytes".into());
        }
        Ok(s)
    }
}

/// Everything one simulated call needs to open its stream and speak Twilio.
#[derive(Debug, Clone)]
pub struct CallIdentity {
    /// Request target: `/api/twilio/media-stream/<token>`.
    pub path: String,
    /// `x-twilio-signature` over `wss://{domain}{path}`.
    pub signature: String,
    /// `MZ` + 32 hex.
    pub stream_sid: String,
    /// `CA` + 32 hex.
    pub call_sid: String,
    /// `AC` + 32 hex (the same for every call).
    pub account_sid: String,
}

fn sid(prefix: &str, a: u64, b: u64) -> String {
    format!("{prefix}{:016x}{:016x}", splitmix(a), splitmix(b))
}

/// Stream tokens, signatures and Twilio ids for `calls` calls of run `run_tag`.
pub fn identities(secrets: &Secrets, run_tag: u64, calls: u32, valid_secs: u64) -> Vec<CallIdentity> {
    let minter = StreamTokenMinter::new(secrets.stream_token_secret.as_bytes())
        .expect("the secret length was checked in Secrets::new");
    let signer = TwilioSigner::new(secrets.twilio_auth_token.as_bytes());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let account_sid = sid("AC", 0xAC, run_tag);
    (0..calls)
        .map(|i| {
            let i = u64::from(i);
            let mut call_id = [0u8; 16];
            call_id[..8].copy_from_slice(&run_tag.to_be_bytes());
            call_id[8..].copy_from_slice(&i.to_be_bytes());
            let mut lead_id = call_id;
            lead_id[0] ^= 0xFF;
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&splitmix(run_tag ^ i.rotate_left(32)).to_be_bytes());
            let claims = StreamClaims { call_id, lead_id, expires_at: now + valid_secs, nonce };
            let path = format!("{STREAM_PATH_PREFIX}{}", minter.mint(&claims));
            let signature = signer.sign(&format!("wss://{}{path}", secrets.stream_domain), &[]);
            CallIdentity {
                path,
                signature,
                stream_sid: sid("MZ", run_tag, i),
                call_sid: sid("CA", i, run_tag),
                account_sid: account_sid.clone(),
            }
        })
        .collect()
}

/// Addresses a spawned gateway is given.
#[derive(Debug, Clone, Copy)]
pub struct GatewayAddrs {
    /// `GATEWAY_LISTEN_ADDR`: where the callers connect.
    pub listen: SocketAddr,
    /// `GATEWAY_OPS_ADDR`.
    pub ops: SocketAddr,
    /// The OpenAI stand-in (`OPENAI_BASE_URL=http://…`).
    pub openai: SocketAddr,
    /// The stub control plane (`CONTROL_PLANE_URL=http://…`).
    pub control: SocketAddr,
}

/// The gateway's environment for a load run: plain TCP on both legs, one worker, `warn` logs
/// (the per-call `info` lines are not what is measured).
pub fn gateway_env(secrets: &Secrets, a: &GatewayAddrs) -> Vec<(String, String)> {
    [
        ("OPENAI_API_KEY", "sk-loadgen-not-a-real-key".to_owned()),
        ("OPENAI_BASE_URL", format!("http://{}", a.openai)),
        ("TWILIO_AUTH_TOKEN", secrets.twilio_auth_token.clone()),
        ("TWILIO_STREAM_DOMAIN", secrets.stream_domain.clone()),
        ("STREAM_TOKEN_SECRET", secrets.stream_token_secret.clone()),
        ("INTERNAL_API_SECRET", secrets.internal_api_secret.clone()),
        ("CONTROL_PLANE_URL", format!("http://{}", a.control)),
        ("GATEWAY_LISTEN_ADDR", a.listen.to_string()),
        ("GATEWAY_OPS_ADDR", a.ops.to_string()),
        ("GATEWAY_WORKERS", "1".to_owned()),
        ("GATEWAY_DRAIN_SECS", "1".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use callway_gateway::core::auth::UpgradeAuthorizer;
    use callway_gateway::core::ws::upgrade::UpgradeRequest;
    use contract::stream_token::StreamTokenVerifier;

    #[test]
    fn identities_pass_the_gateways_own_checks() {
        let secrets = Secrets::new(None, None, None, "gw.loadgen.test".into()).unwrap();
        let ids = identities(&secrets, 7, 3, 600);
        let auth = UpgradeAuthorizer::new(
            secrets.twilio_auth_token.as_bytes(),
            "wss://gw.loadgen.test",
            StreamTokenVerifier::new(&[secrets.stream_token_secret.as_bytes()], 0).unwrap(),
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        for (i, id) in ids.iter().enumerate() {
            let req = UpgradeRequest {
                head_len: 0,
                path: &id.path,
                host: "127.0.0.1",
                key: "dGhlIHNhbXBsZSBub25jZQ==",
                twilio_signature: Some(&id.signature),
            };
            let claims = auth.authorize(&req, now).unwrap();
            assert_eq!(claims.call_id[15], i as u8);
            assert!(id.stream_sid.starts_with("MZ") && id.stream_sid.len() == 34);
            assert!(id.call_sid.starts_with("CA") && id.call_sid.len() == 34);
        }
        assert_ne!(ids[0].stream_sid, ids[1].stream_sid);
        assert!(Secrets::new(None, Some("short".into()), None, "x".into()).is_err());
    }

    #[test]
    fn gateway_env_is_a_valid_gateway_config() {
        let secrets = Secrets::new(None, None, None, "gw.loadgen.test".into()).unwrap();
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let env = gateway_env(
            &secrets,
            &GatewayAddrs { listen: addr(1), ops: addr(2), openai: addr(3), control: addr(4) },
        );
        let c = callway_gateway::config::Config::from_lookup(&|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        assert_eq!(c.workers, 1);
        assert_eq!(c.openai_ws.url(), format!("ws://127.0.0.1:3/v1/realtime?model={}", c.openai_model));
        assert!(c.tls.is_none());
    }
}
