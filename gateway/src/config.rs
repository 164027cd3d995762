//! The gateway's configuration, from the environment, validated at start: every missing or bad
//! value gets its own precise message (all of them at once, not the first only), and no message
//! or `Debug` output ever echoes a secret. Modelled on the control plane's `config.rs`; the names
//! are those of `shared/README.md`.
//!
//! | name | meaning | default |
//! |---|---|---|
//! | `OPENAI_API_KEY` | server-side key for the Realtime WebSocket | required |
//! | `OPENAI_BASE_URL` | `http(s)://host[:port]`; the voice URL is its `ws(s)://` twin + `/v1/realtime` (or `/v1/live/sessions`) | `https://api.openai.com` |
//! | `OPENAI_CA_FILE` | PEM file of extra CA certificates trusted for `wss://` to OpenAI (a private CA, an egress proxy, a test simulator); the web PKI roots stay trusted | unset |
//! | `OPENAI_VOICE_API` | `realtime` or `live` (GPT-Live, `/v1/live/sessions`; see `contract::voice_api`) | `realtime` |
//! | `OPENAI_REALTIME_MODEL` | Realtime: model in the URL and `session.update` (see `contract::realtime`) | `gpt-realtime-2.1` |
//! | `OPENAI_LIVE_MODEL` | GPT-Live: model in `session.start` | `gpt-live-1.1` |
//! | `LIVE_DELEGATION_MODEL` | GPT-Live: the Responses model running the phone tools | `gpt-5-mini` |
//! | `LIVE_START_AT` | GPT-Live: `start` (`session.start` at Twilio's `start`; the socket is opened at the upgrade either way) or `upgrade` (with the socket: measured slower barge-in, first audio no sooner; `benches/README.md`) | `start` |
//! | `LIVE_FORWARD_SILENCE` | GPT-Live: also forward silent output chunks when Twilio has nothing queued | `false` |
//! | `REALTIME_TURN_DETECTION` | `server_vad`, `semantic_vad` (OpenAI detects turns) or `none` (the gateway commits) | `server_vad` |
//! | `REALTIME_VAD_EAGERNESS` | with `semantic_vad`: `low`, `medium`, `high`, `auto` | `auto` |
//! | `REALTIME_USE_SERVER_VAD` | the original switch: `false` is `REALTIME_TURN_DETECTION=none` | `true` |
//! | `REALTIME_MIN_COMMIT_MS` | smallest commit, never below 100 | `120` |
//! | `REALTIME_MAX_COMMIT_MS` | largest commit | `800` |
//! | `TWILIO_AUTH_TOKEN` | checks `x-twilio-signature` | required |
//! | `TWILIO_STREAM_DOMAIN` | public `host[:port]` Twilio dials; signatures are over `wss://{it}{path}` | required |
//! | `STREAM_TOKEN_SECRET` | verifies stream tokens (same as the control plane) | required |
//! | `INTERNAL_API_SECRET` | signs internal API calls (same as the control plane) | required |
//! | `STREAM_TOKEN_SECRET_PREVIOUS` | during a rotation, stream tokens signed with it are accepted too | unset |
//! | `CONTROL_PLANE_URL` | base URL of the control plane's internal API | required |
//! | `GATEWAY_LISTEN_ADDR` | where Twilio connects | `0.0.0.0:8443` |
//! | `GATEWAY_OPS_ADDR` | `/healthz`, `/readyz`, `/metrics` | `127.0.0.1:9090` |
//! | `GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY` | PEM files; both unset = plain TCP behind a TLS proxy | unset |
//! | `GATEWAY_WORKERS` | worker threads (one runtime and listener each) | number of cores |
//! | `GATEWAY_IO` | the I/O shell relaying calls: `uring`, `epoll`, or `auto` (io_uring when the kernel allows it, else epoll, said in one log line) | `auto` |
//! | `GATEWAY_DRAIN_SECS` | on SIGTERM, how long calls may finish | `30` |
//! | `GATEWAY_START_TIMEOUT_SECS` | a stream without Twilio's `start` within this is closed (`no_start`) | `5` |
//! | `AMD_HOLD_MS` | longest wait for the control plane's answering-machine result before the agent greets (`0`: never ask; a call without detection is answered at once) | `4000` |
//! | `LOG_FORMAT` | `json` for JSON lines, else human-readable | text |

use std::net::SocketAddr;

use contract::env::EnvReader;
use std::path::PathBuf;
use std::time::Duration;

use contract::voice_api::{VoiceApi, VoiceEngine};

use crate::core::call::{CallConfig, DEFAULT_DELEGATION_MODEL, TurnTaking};

/// Where the OpenAI voice WebSocket is (Realtime or GPT-Live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiEndpoint {
    /// `wss` (true) or `ws`.
    pub tls: bool,
    /// Host name or IP, without port (TLS server name, DNS lookup).
    pub host: String,
    /// TCP port (443 / 80 when the URL has none).
    pub port: u16,
    /// The `Host` header: `host` or `host:port`, as in the URL.
    pub authority: String,
    /// Request target: `{base path}/v1/realtime?model={model}` (Realtime) or
    /// `{base path}/v1/live/sessions` (GPT-Live: no query string, the model goes in
    /// `session.start`).
    pub target: String,
}

impl OpenAiEndpoint {
    /// The `ws(s)://` URL, for logs.
    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.tls { "wss" } else { "ws" }, self.authority, self.target)
    }
}

/// The TLS certificate chain and key the gateway serves (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `GATEWAY_TLS_CERT`: the chain, leaf first.
    pub cert: PathBuf,
    /// `GATEWAY_TLS_KEY`: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Which shell relays calls (`GATEWAY_IO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoShell {
    /// io_uring if the kernel allows it (not refused by seccomp or `kernel.io_uring_disabled`),
    /// else epoll.
    Auto,
    /// io_uring, or the gateway does not start.
    Uring,
    /// tokio's epoll reactor.
    Epoll,
}

/// The whole configuration. `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct Config {
    /// `OPENAI_API_KEY`.
    pub openai_api_key: String,
    /// `OPENAI_BASE_URL`, without trailing `/`.
    pub openai_base_url: String,
    /// `OPENAI_VOICE_API`: Realtime or GPT-Live.
    pub voice_api: VoiceApi,
    /// The voice WebSocket derived from `OPENAI_BASE_URL`, the engine and the model.
    pub openai_ws: OpenAiEndpoint,
    /// `OPENAI_CA_FILE`: extra CA certificates (PEM) trusted beside the web PKI roots.
    pub openai_ca_file: Option<PathBuf>,
    /// The engine's model: `OPENAI_REALTIME_MODEL` or `OPENAI_LIVE_MODEL`.
    pub openai_model: String,
    /// `LIVE_DELEGATION_MODEL`: the Responses model that runs the phone tools on GPT-Live.
    pub live_delegation_model: String,
    /// `LIVE_START_AT`: `start` (at Twilio's `start`, the default) or `upgrade` (with the
    /// socket).
    pub live_start_at_upgrade: bool,
    /// `LIVE_FORWARD_SILENCE`.
    pub live_forward_silence: bool,
    /// `REALTIME_TURN_DETECTION` (+ `REALTIME_VAD_EAGERNESS`, `REALTIME_USE_SERVER_VAD`).
    pub turn_detection: TurnTaking,
    /// `REALTIME_MIN_COMMIT_MS`.
    pub min_commit_ms: u32,
    /// `AMD_HOLD_MS`: the greeting's longest wait for answering-machine detection.
    pub amd_hold: Duration,
    /// `REALTIME_MAX_COMMIT_MS`.
    pub max_commit_ms: u32,
    /// `TWILIO_AUTH_TOKEN`.
    pub twilio_auth_token: String,
    /// `TWILIO_STREAM_DOMAIN` (`host[:port]`).
    pub twilio_stream_domain: String,
    /// `STREAM_TOKEN_SECRET`.
    pub stream_token_secret: Vec<u8>,
    /// `INTERNAL_API_SECRET`.
    pub internal_api_secret: Vec<u8>,
    /// `STREAM_TOKEN_SECRET_PREVIOUS`: also accepted while the secret is rotated.
    pub stream_token_secret_previous: Option<Vec<u8>>,
    /// `CONTROL_PLANE_URL`, without trailing `/`.
    pub control_plane_url: String,
    /// `GATEWAY_LISTEN_ADDR`.
    pub listen_addr: SocketAddr,
    /// `GATEWAY_OPS_ADDR`.
    pub ops_addr: SocketAddr,
    /// `GATEWAY_TLS_CERT` + `GATEWAY_TLS_KEY`; `None`: plain TCP (a proxy terminates TLS).
    pub tls: Option<TlsFiles>,
    /// `GATEWAY_WORKERS`.
    pub workers: usize,
    /// `GATEWAY_IO`.
    pub io: IoShell,
    /// `GATEWAY_DRAIN_SECS`.
    pub drain: Duration,
    /// `GATEWAY_START_TIMEOUT_SECS`.
    pub start_timeout: Duration,
    /// `LOG_FORMAT=json`.
    pub log_json: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are left out on purpose.
        f.debug_struct("Config")
            .field("realtime", &self.openai_ws.url())
            .field("openai_ca_file", &self.openai_ca_file)
            .field("openai_model", &self.openai_model)
            .field("turn_detection", &self.turn_detection)
            .field("min_commit_ms", &self.min_commit_ms)
            .field("max_commit_ms", &self.max_commit_ms)
            .field("twilio_stream_domain", &self.twilio_stream_domain)
            .field("control_plane_url", &self.control_plane_url)
            .field("listen_addr", &self.listen_addr)
            .field("ops_addr", &self.ops_addr)
            .field("tls", &self.tls)
            .field("workers", &self.workers)
            .field("io", &self.io)
            .field("drain", &self.drain)
            .field("start_timeout", &self.start_timeout)
            .finish_non_exhaustive()
    }
}

pub use contract::env::ConfigErrors;

/// `OPENAI_BASE_URL` + model → the Realtime WebSocket endpoint.
fn openai_endpoint(base: &str, engine: &VoiceEngine) -> Option<OpenAiEndpoint> {
    let (tls, rest) = if let Some(r) = base.strip_prefix("https://") {
        (true, r)
    } else {
        (false, base.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => {
                if tls {
                    443
                } else {
                    80
                }
            }
            None => return None,
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), if tls { 443 } else { 80 }),
        }
    };
    if host.is_empty() {
        return None;
    }
    // OpenAI's own base URL is `https://api.openai.com` (the `/v1` is part of the route); a
    // base that already ends in `/v1` is accepted too.
    let path = path.strip_suffix("/v1").unwrap_or(path);
    Some(OpenAiEndpoint {
        tls,
        host,
        port,
        authority: authority.to_owned(),
        target: match engine.api {
            VoiceApi::Realtime => format!("{path}/v1/realtime?model={}", engine.model),
            VoiceApi::Live => format!("{path}/v1/live/sessions"),
        },
    })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut r = EnvReader::new(get);

        let openai_api_key = r.required("OPENAI_API_KEY", "the server-side OpenAI key for the Realtime API");
        let openai_base_url = r.url("OPENAI_BASE_URL", Some("https://api.openai.com"), "");
        let engine = contract::voice_api::read_engine(&mut r);
        let openai_ws = openai_endpoint(&openai_base_url, &engine).unwrap_or_else(|| {
            if openai_base_url.starts_with("http") {
                r.problem(format!(
                    "OPENAI_BASE_URL must be http(s)://host[:port][/path], got {openai_base_url:?}"
                ));
            }
            OpenAiEndpoint {
                tls: true,
                host: String::new(),
                port: 443,
                authority: String::new(),
                target: String::new(),
            }
        });
        let openai_ca_file = r.opt("OPENAI_CA_FILE").map(PathBuf::from);
        let live_delegation_model =
            r.opt("LIVE_DELEGATION_MODEL").unwrap_or_else(|| DEFAULT_DELEGATION_MODEL.to_owned());
        let live_start_at_upgrade = match r.opt("LIVE_START_AT").as_deref() {
            None | Some("start") => false,
            Some("upgrade") => true,
            Some(other) => {
                r.problem(format!(
                    "LIVE_START_AT must be start (session.start at Twilio's start, the default) or upgrade (as soon as the OpenAI socket is up), got {other:?}"
                ));
                false
            }
        };
        let live_forward_silence = r.bool("LIVE_FORWARD_SILENCE", false);
        let turn_detection = contract::realtime::read_turn_detection(&mut r);
        let min_commit_ms = r.number("REALTIME_MIN_COMMIT_MS", 120u32, 100, 10_000);
        let amd_hold = Duration::from_millis(u64::from(r.number(
            "AMD_HOLD_MS",
            4000u32,
            0,
            contract::internal_api::AMD_MAX_WAIT_MS,
        )));
        let max_commit_ms = r.number("REALTIME_MAX_COMMIT_MS", 800u32, 100, 60_000);
        if max_commit_ms < min_commit_ms {
            r.problem(format!(
                "REALTIME_MAX_COMMIT_MS ({max_commit_ms}) must not be below REALTIME_MIN_COMMIT_MS ({min_commit_ms})"
            ));
        }

        let twilio_auth_token =
            r.required("TWILIO_AUTH_TOKEN", "the Twilio auth token (checks x-twilio-signature)");
        let twilio_stream_domain = match r.opt("TWILIO_STREAM_DOMAIN") {
            Some(d) if d.contains('/') || d.contains('?') || d.contains(char::is_whitespace) => {
                r.problem(format!(
                    "TWILIO_STREAM_DOMAIN must be a bare host[:port] (edge.example.eu), without scheme or path, got {d:?}"
                ));
                String::new()
            }
            Some(d) => d,
            None => {
                r.problem(
                    "TWILIO_STREAM_DOMAIN is not set: the public host[:port] Twilio connects to, as the control plane writes it in the TwiML",
                );
                String::new()
            }
        };
        let stream_token_secret = r.secret("STREAM_TOKEN_SECRET", contract::stream_token::MIN_SECRET_LEN);
        let internal_api_secret = r.secret("INTERNAL_API_SECRET", 32);
        let stream_token_secret_previous = r.previous_secret(
            "STREAM_TOKEN_SECRET_PREVIOUS",
            "STREAM_TOKEN_SECRET",
            &stream_token_secret,
            contract::stream_token::MIN_SECRET_LEN,
        );
        let control_plane_url = r.url(
            "CONTROL_PLANE_URL",
            None,
            "the control plane's base URL (http(s)://…), for token redemption, tools and call events",
        );

        let listen_addr = r.addr("GATEWAY_LISTEN_ADDR", "0.0.0.0:8443");
        let ops_addr = r.addr("GATEWAY_OPS_ADDR", "127.0.0.1:9090");
        let tls = match (r.opt("GATEWAY_TLS_CERT"), r.opt("GATEWAY_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
            (None, None) => None,
            (Some(_), None) => {
                r.problem("GATEWAY_TLS_CERT is set but GATEWAY_TLS_KEY is not: set both (or neither, for plain TCP behind a TLS proxy)");
                None
            }
            (None, Some(_)) => {
                r.problem("GATEWAY_TLS_KEY is set but GATEWAY_TLS_CERT is not: set both (or neither, for plain TCP behind a TLS proxy)");
                None
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = r.number("GATEWAY_WORKERS", cores, 1, 1024);
        let drain = Duration::from_secs(r.number("GATEWAY_DRAIN_SECS", 30u64, 0, 3600));
        let io = match r.opt("GATEWAY_IO").as_deref() {
            None | Some("auto") => IoShell::Auto,
            Some("uring") => IoShell::Uring,
            Some("epoll") => IoShell::Epoll,
            Some(other) => {
                r.problem(format!(
                    "GATEWAY_IO must be uring, epoll or auto (io_uring when the kernel allows it), got {other:?}"
                ));
                IoShell::Auto
            }
        };
        let start_timeout = Duration::from_secs(r.number("GATEWAY_START_TIMEOUT_SECS", 5u64, 1, 60));
        let log_json = match r.opt("LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                r.problem(format!("LOG_FORMAT must be json or text, got {other:?}"));
                false
            }
        };

        r.finish()?;
        Ok(Config {
            openai_api_key,
            openai_ca_file,
            openai_base_url,
            openai_ws,
            voice_api: engine.api,
            openai_model: engine.model,
            live_delegation_model,
            live_start_at_upgrade,
            live_forward_silence,
            turn_detection,
            min_commit_ms,
            max_commit_ms,
            amd_hold,
            twilio_auth_token,
            twilio_stream_domain,
            stream_token_secret,
            internal_api_secret,
            stream_token_secret_previous,
            control_plane_url,
            listen_addr,
            ops_addr,
            tls,
            workers,
            io,
            drain,
            start_timeout,
            log_json,
        })
    }

    /// The public origin signatures are checked against: `wss://{TWILIO_STREAM_DOMAIN}`.
    pub fn public_origin(&self) -> String {
        format!("wss://{}", self.twilio_stream_domain)
    }

    /// What the operator should know about this configuration although it is valid, one line
    /// each (logged as warnings at start).
    pub fn notices(&self) -> Vec<String> {
        let mut out: Vec<String> =
            contract::realtime::shutdown_notice(&self.openai_model).into_iter().collect();
        let hold_ms = crate::core::call::HOLD_MS;
        if self.voice_api == VoiceApi::Live && self.amd_hold.as_millis() as u64 + 1000 > hold_ms {
            out.push(format!(
                "AMD_HOLD_MS={} on GPT-Live: the session waits for the answering-machine verdict while the caller's \
                 audio is held, and the gateway keeps the last {hold_ms} ms of it; a longer wait drops the caller's first \
                 words (callway_gateway_hold_dropped_bytes_total). Keep AMD_HOLD_MS at {} or below",
                self.amd_hold.as_millis(),
                hold_ms - 1000
            ));
        }
        out
    }

    /// Settings for every call (the shell fills in a fresh `seed` per call).
    pub fn call_config(&self) -> CallConfig {
        CallConfig {
            api: self.voice_api,
            openai_host: self.openai_ws.authority.clone(),
            openai_target: self.openai_ws.target.clone(),
            openai_api_key: self.openai_api_key.clone(),
            model: self.openai_model.clone(),
            turn_detection: self.turn_detection,
            min_commit_ms: self.min_commit_ms,
            max_commit_ms: self.max_commit_ms,
            amd_hold: self.amd_hold,
            start_timeout: self.start_timeout,
            delegation_model: self.live_delegation_model.clone(),
            live_start_at_upgrade: self.live_start_at_upgrade,
            live_forward_silence: self.live_forward_silence,
            ..CallConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("OPENAI_API_KEY", "sk-secret-value"),
            ("TWILIO_AUTH_TOKEN", "twilio-secret-value"),
            ("TWILIO_STREAM_DOMAIN", "edge.example.eu"),
            ("STREAM_TOKEN_SECRET", "0123456789abcdef0123456789abcdef!"),
            ("INTERNAL_API_SECRET", "0123456789abcdef0123456789abcdef?"),
            ("CONTROL_PLANE_URL", "https://cp.example.eu/"),
        ])
    }

    fn load(m: &HashMap<&str, &str>) -> Result<Config, ConfigErrors> {
        Config::from_lookup(&|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn a_live_answering_machine_hold_longer_than_the_hold_ring_is_pointed_out() {
        let mut m = base();
        m.insert("OPENAI_VOICE_API", "live");
        assert!(
            load(&m).unwrap().notices().is_empty(),
            "the default hold fits: {:?}",
            load(&m).unwrap().notices()
        );
        m.insert("AMD_HOLD_MS", "8000");
        let notices = load(&m).unwrap().notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].contains("AMD_HOLD_MS=8000") && notices[0].contains("4000 or below"),
            "{notices:?}"
        );
        m.insert("OPENAI_VOICE_API", "realtime");
        m.remove("OPENAI_LIVE_MODEL");
        assert!(load(&m).unwrap().notices().is_empty(), "Realtime relays the audio during the hold");
    }

    #[test]
    fn defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(c.openai_ws.url(), "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1");
        assert_eq!((c.openai_ws.host.as_str(), c.openai_ws.port), ("api.openai.com", 443));
        assert_eq!(c.control_plane_url, "https://cp.example.eu");
        assert_eq!(c.public_origin(), "wss://edge.example.eu");
        assert_eq!(c.listen_addr, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(c.ops_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!((c.min_commit_ms, c.max_commit_ms, c.turn_detection), (120, 800, TurnTaking::ServerVad));
        assert_eq!(c.drain, Duration::from_secs(30));
        assert!(c.tls.is_none() && c.workers >= 1 && !c.log_json);
        let cc = c.call_config();
        assert_eq!(
            (cc.openai_host.as_str(), cc.openai_target.as_str()),
            ("api.openai.com", "/v1/realtime?model=gpt-realtime-2.1")
        );
        let debug = format!("{c:?} {cc:?}");
        for secret in ["sk-secret-value", "twilio-secret-value", "0123456789abcdef"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn semantic_vad_reaches_every_call() {
        let mut m = base();
        m.insert("REALTIME_TURN_DETECTION", "semantic_vad");
        m.insert("REALTIME_VAD_EAGERNESS", "low");
        let cc = load(&m).unwrap().call_config();
        assert_eq!(
            cc.turn_detection,
            TurnTaking::SemanticVad { eagerness: crate::core::call::Eagerness::Low }
        );
        m.insert("REALTIME_TURN_DETECTION", "none");
        m.remove("REALTIME_VAD_EAGERNESS");
        assert_eq!(load(&m).unwrap().call_config().turn_detection, TurnTaking::Off);
    }

    #[test]
    fn realtime_url_follows_the_base_url() {
        let mut m = base();
        m.insert("OPENAI_BASE_URL", "http://127.0.0.1:8081");
        m.insert("OPENAI_REALTIME_MODEL", "gpt-realtime-mini");
        let c = load(&m).unwrap();
        assert_eq!(c.openai_ws.url(), "ws://127.0.0.1:8081/v1/realtime?model=gpt-realtime-mini");
        assert_eq!(
            (c.openai_ws.host.as_str(), c.openai_ws.port, c.openai_ws.tls),
            ("127.0.0.1", 8081, false)
        );
        m.insert("OPENAI_BASE_URL", "https://eu.api.openai.com/v1/");
        let c = load(&m).unwrap();
        assert_eq!(c.openai_ws.url(), "wss://eu.api.openai.com/v1/realtime?model=gpt-realtime-mini");
        m.insert("OPENAI_BASE_URL", "https://[::1]:9443");
        let c = load(&m).unwrap();
        assert_eq!((c.openai_ws.host.as_str(), c.openai_ws.port), ("::1", 9443));
    }

    #[test]
    fn one_precise_message_per_bad_value_without_secrets() {
        let mut m = base();
        m.remove("OPENAI_API_KEY");
        m.remove("CONTROL_PLANE_URL");
        m.insert("INTERNAL_API_SECRET", "short-secret");
        m.insert("REALTIME_MIN_COMMIT_MS", "50");
        m.insert("REALTIME_USE_SERVER_VAD", "maybe");
        m.insert("TWILIO_STREAM_DOMAIN", "wss://edge.example.eu/x");
        m.insert("GATEWAY_LISTEN_ADDR", "nowhere");
        m.insert("GATEWAY_TLS_CERT", "/etc/cert.pem");
        m.insert("GATEWAY_WORKERS", "0");
        let e = load(&m).unwrap_err();
        let text = e.to_string();
        for needle in [
            "OPENAI_API_KEY is not set",
            "CONTROL_PLANE_URL is not set",
            "INTERNAL_API_SECRET is 12 bytes",
            "REALTIME_MIN_COMMIT_MS must be a whole number from 100",
            "REALTIME_USE_SERVER_VAD must be 1/0",
            "TWILIO_STREAM_DOMAIN must be a bare host",
            "GATEWAY_LISTEN_ADDR must be ip:port",
            "GATEWAY_TLS_CERT is set but GATEWAY_TLS_KEY is not",
            "GATEWAY_WORKERS must be a whole number from 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(e.0.len(), 9, "{text}");
        assert!(!text.contains("short-secret") && !text.contains("twilio-secret-value"), "{text}");
        let mut m = base();
        m.insert("REALTIME_MIN_COMMIT_MS", "500");
        m.insert("REALTIME_MAX_COMMIT_MS", "200");
        assert!(load(&m).unwrap_err().to_string().contains("must not be below REALTIME_MIN_COMMIT_MS"));
    }
}
