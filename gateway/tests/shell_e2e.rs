//! The gateway's network shell end to end, through the binary's library entry point
//! ([`Gateway::start`]) with everything else real and in-process: the control plane (SQLite),
//! the OpenAI Realtime simulator with a scripted spoken greeting, and the Twilio simulator,
//! which places the call the control plane asks for and opens the `wss://` stream URL of the
//! TwiML, signed as Twilio signs. Plain mode runs behind a TLS-terminating proxy (what plain
//! mode is for); TLS mode terminates TLS in the gateway with a test CA the caller trusts.
//!
//! No timing assertions: waits are for facts, under a generous hang guard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use callway_control::routes::SharedApp;
use callway_gateway::config::Config;
use callway_gateway::io::Gateway;
use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig, SimHandle};
use callway_sim_twilio::api::{ApiConfig, ApiHandle, CallStatus, CallerSettings, Outcome, TwilioApiSim};
use callway_sim_twilio::caller::{EndPolicy, Pacing, Segment};
use contract::twilio_signature::TwilioSigner;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const STREAM_TOKEN_SECRET: &str = "test-stream-token-secret-0123456789abcdef";
const INTERNAL_API_SECRET: &str = "test-internal-api-secret-0123456789abcdef";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const FROM: &str = "+33159000000";
const OPENAI_KEY: &str = "sk-test-key";
const PROSPECT: &str = "+33612345678";

/// A hang guard, not a timing assertion.
async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(90), f).await.unwrap_or_else(|_| panic!("hang: {what}"))
}

/// A CA and a leaf for 127.0.0.1 signed by it.
struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "callway gateway test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key)).unwrap();
        TestPki { ca_pem: ca.pem(), cert_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{ServerConfig, crypto::ring};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// A TLS-terminating proxy in front of a plain server: the gateway (as a load balancer would
/// be) or the OpenAI simulator (as OpenAI's TLS front end is).
async fn tls_proxy(pki: &TestPki, listener: tokio::net::TcpListener, to: SocketAddr) {
    let acceptor = pki.acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut up) = tokio::net::TcpStream::connect(to).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain TCP gateway behind a TLS-terminating proxy.
    Plain,
    /// The gateway terminates TLS, and reaches OpenAI over TLS too (`wss://` to a TLS proxy
    /// in front of the simulator, its CA trusted through `OPENAI_CA_FILE`).
    Tls,
}

struct World {
    cp_base: String,
    app: SharedApp,
    http: reqwest::Client,
    openai: SimHandle,
    twilio: ApiHandle,
    gateway: Option<Gateway>,
    /// `TWILIO_STREAM_DOMAIN`: what Twilio dials.
    domain: String,
    _cp_stop: tokio::sync::oneshot::Sender<()>,
    /// The gateway's certificate (TLS mode) and the CA the caller trusts.
    pki: TestPki,
    /// `cert.pem` and `key.pem` (TLS mode), `cp.sqlite3`, the outbox.
    dir: tempfile::TempDir,
}

/// The I/O shell these tests run against: `CALLWAY_TEST_GATEWAY_IO` (`scripts/test` runs the
/// suite once per shell), epoll when unset.
fn shell_under_test() -> String {
    std::env::var("CALLWAY_TEST_GATEWAY_IO").unwrap_or_else(|_| "epoll".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn world(
    mode: Mode,
    caller: CallerSettings,
    script: Script,
    tune: impl FnOnce(&mut ApiConfig),
) -> World {
    world_with_env(mode, caller, script, tune, &[]).await
}

/// [`world`] with extra gateway environment variables.
async fn world_with_env(
    mode: Mode,
    caller: CallerSettings,
    script: Script,
    tune: impl FnOnce(&mut ApiConfig),
    extra_env: &[(&'static str, &'static str)],
) -> World {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let openai = OpenAiSim::spawn(SimConfig { api_key: OPENAI_KEY.into(), script, ..SimConfig::default() })
        .await
        .unwrap();
    let mut api = ApiConfig {
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        owned_numbers: vec![FROM.into()],
        ring_delay: Duration::from_millis(50),
        strict_wss: true,
        caller: CallerSettings { ca_pem: Some(pki.ca_pem.clone().into_bytes()), ..caller },
        ..ApiConfig::default()
    };
    tune(&mut api);
    let twilio = TwilioApiSim::spawn(api).await.unwrap();

    let cp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cp_base = format!("http://{}", cp_listener.local_addr().unwrap());

    // What Twilio dials: the proxy (plain) or the gateway itself (TLS, on a port chosen now).
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (domain, listen) = match mode {
        Mode::Plain => (proxy_listener.local_addr().unwrap().to_string(), "127.0.0.1:0".to_owned()),
        Mode::Tls => {
            let addr = format!("127.0.0.1:{}", free_port());
            (addr.clone(), addr)
        }
    };
    let openai_base = match mode {
        Mode::Plain => openai.base_url(),
        Mode::Tls => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("https://{}", listener.local_addr().unwrap());
            tls_proxy(&pki, listener, openai.addr()).await;
            base
        }
    };
    let mut env: Vec<(&str, String)> = vec![
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("OPENAI_BASE_URL", openai_base),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
        ("TWILIO_STREAM_DOMAIN", domain.clone()),
        ("STREAM_TOKEN_SECRET", STREAM_TOKEN_SECRET.into()),
        ("INTERNAL_API_SECRET", INTERNAL_API_SECRET.into()),
        ("CONTROL_PLANE_URL", cp_base.clone()),
        ("GATEWAY_LISTEN_ADDR", listen),
        ("GATEWAY_OPS_ADDR", "127.0.0.1:0".into()),
        ("GATEWAY_WORKERS", "2".into()),
        ("GATEWAY_DRAIN_SECS", "5".into()),
        ("GATEWAY_IO", shell_under_test()),
    ];
    env.extend(extra_env.iter().map(|&(k, v)| (k, v.to_owned())));
    if mode == Mode::Tls {
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &pki.cert_pem).unwrap();
        std::fs::write(&key, &pki.key_pem).unwrap();
        env.push(("GATEWAY_TLS_CERT", cert.display().to_string()));
        env.push(("GATEWAY_TLS_KEY", key.display().to_string()));
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        env.push(("OPENAI_CA_FILE", ca.display().to_string()));
    }
    // The last value of a name wins: `extra_env` overrides the defaults above.
    let config = Config::from_lookup(&|k| env.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let gateway = Gateway::start(config).unwrap();
    // The shell asked for is the shell running (GATEWAY_IO=uring fails to start rather than
    // fall back, so a kernel refusing io_uring fails here, loudly).
    assert_eq!(gateway.metrics().io_shell.get().copied(), Some(shell_under_test().as_str()));
    if mode == Mode::Plain {
        tls_proxy(&pki, proxy_listener, gateway.local_addr()).await;
    }

    let cp_env: Vec<(&str, String)> = vec![
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("OPENAI_BASE_URL", openai.base_url()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
        ("TWILIO_PHONE_NUMBER_FROM", FROM.into()),
        ("TWILIO_API_BASE", twilio.base_url()),
        ("TWILIO_STREAM_DOMAIN", domain.clone()),
        ("STREAM_TOKEN_SECRET", STREAM_TOKEN_SECRET.into()),
        ("INTERNAL_API_SECRET", INTERNAL_API_SECRET.into()),
        ("PUBLIC_APP_URL", cp_base.clone()),
        ("DATABASE_URL", format!("sqlite:{}?mode=rwc", dir.path().join("cp.sqlite3").display())),
        ("OUTBOX_DIR", dir.path().join("outbox").display().to_string()),
    ];
    let cp_config = callway_control::config::Config::from_lookup(&|k| {
        cp_env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let app = callway_control::build_app(cp_config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(callway_control::serve(app.clone(), cp_listener, async move {
        let _ = stopped.await;
    }));
    World {
        cp_base,
        app,
        http: reqwest::Client::new(),
        openai,
        twilio,
        gateway: Some(gateway),
        domain,
        _cp_stop: stop,
        pki,
        dir,
    }
}

impl World {
    fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().unwrap()
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.cp_base)).json(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The web agent's steps: a session, a lead, `trigger_call`. Returns the call id.
    async fn trigger_call(&self) -> String {
        let (status, s) = self.post("/api/session", None, &json!({})).await;
        assert_eq!(status, 200, "{s}");
        let cap = s["capability"].as_str().unwrap().to_owned();
        let lead = json!({"first_name": "Claire", "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});
        let (status, l) = self.post("/api/tools/save_lead", Some(&cap), &lead).await;
        assert_eq!(status, 200, "{l}");
        let t =
            json!({"lead_id": l["lead_id"], "summary": "Gérante d'une agence, veut qualifier ses appels."});
        let (status, c) = self.post("/api/tools/trigger_call", Some(&cap), &t).await;
        assert_eq!(status, 200, "{c}");
        c["call_id"].as_str().unwrap().to_owned()
    }

    /// The stream token of the last TwiML the control plane sent Twilio.
    fn last_token(&self) -> String {
        let reqs = self.twilio.requests();
        let create = reqs.iter().rev().find(|r| r.path.ends_with("/Calls.json")).unwrap();
        let twiml = &create.params.iter().find(|(k, _)| k == "Twiml").unwrap().1;
        let after = twiml.split("/api/twilio/media-stream/").nth(1).unwrap();
        after.split('"').next().unwrap().to_owned()
    }

    /// Waits until the control plane has stored the call's end.
    async fn end_reason(&self, call_id: &str) -> String {
        let id = call_id.parse().unwrap();
        within("the call's end reaches the control plane", async {
            loop {
                let row = self.app.storage.store.get_call(id).await.unwrap().unwrap();
                if let Some(r) = row.end_reason {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    async fn shutdown(&mut self) {
        if let Some(g) = self.gateway.take() {
            within("gateway drains", g.shutdown()).await;
        }
    }
}

/// Sends a raw upgrade for `path` to `addr` (plain TCP), signed over `wss://{domain}{path}`
/// with `auth_token` (or unsigned); returns the HTTP status and the body.
async fn raw_upgrade(addr: SocketAddr, domain: &str, path: &str, auth_token: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {domain}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(t) = auth_token {
        let sig = TwilioSigner::new(t.as_bytes()).sign(&format!("wss://{domain}{path}"), &[]);
        req.push_str(&format!("X-Twilio-Signature: {sig}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    within("refusal", s.read_to_end(&mut answer)).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let res = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// What the caller says: waits for the greeting, then 600 ms of a distinctive tone, then
/// silence; hangs up at the end of the script.
fn caller(sample: &[u8]) -> CallerSettings {
    CallerSettings {
        script: vec![
            Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 },
            Segment::Audio(sample.to_vec().into()),
            Segment::Silence { ms: 600 },
        ],
        pacing: Pacing::Unpaced,
        end: EndPolicy::ScriptEnd,
        ..CallerSettings::default()
    }
}

fn greeting() -> Script {
    Script::replies([Reply::tone(440.0, 600, "Bonjour Claire, ici Callway.")])
}

/// The whole call, checked from every side.
async fn full_call(mode: Mode) {
    let sample = callway_gateway::samples::ulaw_tone(600 * 8);
    let mut w = world(mode, caller(&sample), greeting(), |_| {}).await;
    let call_id = w.trigger_call().await;

    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    let report = &done.caller_reports[0];
    assert!(report.handshake_failure.is_none(), "{}", report.summary());
    assert!(
        report.url.starts_with(&format!("wss://{}/api/twilio/media-stream/v1.", w.domain)),
        "{}",
        report.url
    );

    // The caller heard the agent's greeting.
    assert!(report.first_agent_audio.is_some(), "{}", report.summary());
    assert!(!report.heard.is_empty(), "{}", report.summary());
    assert!(report.warnings.is_empty(), "Twilio would warn: {:?}", report.warnings);

    // The upgrade was authorized and the token redeemed once.
    let g = w.gateway();
    assert_eq!(g.metrics().upgrades_accepted.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(w.app.metrics.tokens_redeemed.load(std::sync::atomic::Ordering::Relaxed), 1);

    // OpenAI: one session, configured for μ-law both ways, fed the caller's own audio.
    let sessions = w.openai.sessions();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    let update = s.received_of("session.update");
    assert!(!update.is_empty());
    assert_eq!(update[0]["session"]["audio"]["input"]["format"]["type"], "audio/pcmu", "{}", update[0]);
    assert_eq!(update[0]["session"]["audio"]["output"]["format"]["type"], "audio/pcmu", "{}", update[0]);
    let mut appended = Vec::new();
    for a in s.received_of("input_audio_buffer.append") {
        appended
            .extend(base64::engine::general_purpose::STANDARD.decode(a["audio"].as_str().unwrap()).unwrap());
    }
    assert!(
        appended.windows(sample.len()).any(|win| win == sample.as_slice()),
        "the caller's tone is not in the {} bytes appended",
        appended.len()
    );
    assert!(s.schema_violations.is_empty(), "{:?}", s.schema_violations);

    // The end reached the control plane in an event batch (the `ended` event sets the
    // call's end reason when its batch is stored).
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    assert!(g.metrics().event_batches.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // A replay of the same stream URL is refused before any OpenAI session opens.
    if mode == Mode::Plain {
        let path = format!("/api/twilio/media-stream/{}", report.url.rsplit('/').next().unwrap());
        let (status, text) = raw_upgrade(g.local_addr(), &w.domain, &path, Some(AUTH_TOKEN)).await;
        assert_eq!(status, 409, "{text}");
        assert_eq!(g.metrics().upgrades_refused(409), 1);
    }
    assert_eq!(w.openai.sessions().len(), 1);
    assert_eq!(g.metrics().calls_ended("caller_hung_up"), 1);
    // What the call did not act on is counted by kind (the simulator's session.created, …).
    assert!(g.metrics().ignored("openai", "session.created") >= 1);
    let (_, text) = http_get(g.ops_addr(), "/metrics").await;
    assert!(
        text.contains(r#"callway_gateway_ignored_events_total{peer="openai",kind="session.created"}"#),
        "{text}"
    );
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_a_plain_gateway_behind_a_tls_proxy() {
    full_call(Mode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_terminating_tls() {
    full_call(Mode::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrades_are_refused_precisely_before_any_openai_session() {
    let sample = callway_gateway::samples::ulaw_tone(800);
    let mut w = world(Mode::Plain, caller(&sample), greeting(), |api| {
        // The phone is busy: the control plane mints a token, no stream is ever opened.
        api.outcomes.insert(PROSPECT.into(), Outcome::Busy);
    })
    .await;
    w.trigger_call().await;
    let token = w.last_token();
    let addr = w.gateway().local_addr();
    let path = format!("/api/twilio/media-stream/{token}");
    let minter = contract::stream_token::StreamTokenMinter::new(STREAM_TOKEN_SECRET.as_bytes()).unwrap();
    let claims = |expires_at| contract::stream_token::StreamClaims {
        call_id: [9; 16],
        lead_id: [8; 16],
        expires_at,
        nonce: [7; 12],
    };
    let now = callway_control::routes::now_secs();
    let expired = format!("/api/twilio/media-stream/{}", minter.mint(&claims(now - 3600)));
    let unknown = format!("/api/twilio/media-stream/{}", minter.mint(&claims(now + 60)));

    let cases: [(&str, String, Option<&str>, u16); 6] = [
        ("query string", format!("{path}?x=1"), Some(AUTH_TOKEN), 400),
        ("no signature", path.clone(), None, 401),
        ("bad signature", path.clone(), Some("another-auth-token-0123456789abcd"), 403),
        ("not a stream path", "/api/other".into(), Some(AUTH_TOKEN), 404),
        ("expired token", expired, Some(AUTH_TOKEN), 410),
        ("token of no call", unknown, Some(AUTH_TOKEN), 404),
    ];
    for (what, p, auth, expected) in &cases {
        let (status, text) = raw_upgrade(addr, &w.domain, p, *auth).await;
        assert_eq!(status, *expected, "{what}: {text}");
        let phrase = callway_gateway::core::ws::upgrade::reason_phrase(status);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} {phrase}\r\n")), "{what}: {text}");
    }
    // A replayed token: redeemed once already (as by another gateway), then refused with 409.
    let body = serde_json::to_vec(&json!({"token": token})).unwrap();
    let ts = callway_control::routes::now_secs();
    let auth = contract::internal_api::InternalAuth::new(INTERNAL_API_SECRET.as_bytes());
    let res = w
        .http
        .post(format!("{}{}", w.cp_base, contract::internal_api::REDEEM_PATH))
        .header("content-type", "application/json")
        .header(contract::internal_api::TIMESTAMP_HEADER, ts.to_string())
        .header(
            contract::internal_api::SIGNATURE_HEADER,
            auth.sign(ts, "POST", contract::internal_api::REDEEM_PATH, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, text) = raw_upgrade(addr, &w.domain, &path, Some(AUTH_TOKEN)).await;
    assert_eq!(status, 409, "replay: {text}");
    assert!(text.starts_with("HTTP/1.1 409 Conflict\r\n"), "{text}");

    // Nothing reached OpenAI.
    assert!(w.openai.sessions().is_empty());
    assert!(w.openai.handshakes().is_empty());
    let m = w.gateway().metrics();
    for (status, n) in [(400, 1), (401, 1), (403, 1), (404, 2), (410, 1), (409, 1)] {
        assert_eq!(m.upgrades_refused(status), n, "refusals with {status}");
    }
    assert_eq!(m.upgrades_accepted.load(std::sync::atomic::Ordering::Relaxed), 0);

    // The ops port.
    let ops = w.gateway().ops_addr();
    assert_eq!(http_get(ops, "/healthz").await.0, 200);
    assert_eq!(http_get(ops, "/readyz").await.0, 200);
    let (status, metrics) = http_get(ops, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("callway_gateway_upgrades_refused_total{status=\"409\"} 1"), "{metrics}");
    assert!(metrics.contains("callway_gateway_active_calls 0"), "{metrics}");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_barging_in_silences_the_agent_at_once() {
    barge_in_case(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_barging_in_with_semantic_vad_silences_the_agent_at_once() {
    barge_in_case(&[("REALTIME_TURN_DETECTION", "semantic_vad"), ("REALTIME_VAD_EAGERNESS", "high")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_barging_in_with_the_gateways_own_turn_taking_silences_the_agent_at_once() {
    barge_in_case(&[("REALTIME_TURN_DETECTION", "none")]).await;
}

/// A call on `env` whose caller speaks for a second `speak_at_ms` into the agent's 4 s
/// greeting, then is silent for `after_ms` and hangs up (real-time pacing): the world, the
/// call id and what the caller went through.
async fn call_with_barge_in(
    env: &[(&'static str, &'static str)],
    speak_at_ms: u64,
    after_ms: u64,
) -> (World, String, callway_sim_twilio::caller::CallerReport) {
    let settings = CallerSettings {
        script: vec![
            Segment::Silence { ms: speak_at_ms },
            Segment::Tone { hz: 300.0, ms: 1000 },
            Segment::Silence { ms: after_ms },
        ],
        pacing: Pacing::RealTime,
        end: EndPolicy::ScriptEnd,
        ..CallerSettings::default()
    };
    let script = Script::replies([Reply::tone(
        440.0,
        4000,
        "Bonjour Claire, ici Callway, je vous appelle au sujet de votre demande.",
    )]);
    let w = world_with_env(Mode::Plain, settings, script, |_| {}, env).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    (w, call_id, done.caller_reports[0].clone())
}

/// A long greeting; the caller starts speaking while it plays (real-time pacing). OpenAI (the
/// simulator, which behaves like the real server here) must never have to answer with an
/// error: no `response_cancel_not_active`, no truncate past an item's audio.
async fn barge_in_case(env: &[(&'static str, &'static str)]) {
    let (mut w, call_id, report) = call_with_barge_in(env, 800, 1200).await;
    let report = &report;
    assert!(report.first_agent_audio.is_some(), "{}", report.summary());
    assert!(!report.clears.is_empty(), "no clear on barge-in: {}", report.summary());
    for s in w.openai.sessions() {
        let errors = s.sent_of("error");
        assert!(errors.is_empty(), "OpenAI answered with errors ({env:?}): {errors:?}");
    }
    assert_eq!(report.audio_after_clear(), Duration::ZERO, "{}", report.summary());
    assert!(report.audio_played() < Duration::from_millis(4000), "{}", report.summary());
    print_barge_in(&format!("realtime {env:?}"), report, 800);
    let s = &w.openai.sessions()[0];
    assert!(!s.received_of("conversation.item.truncate").is_empty(), "the greeting was not truncated");
    assert!(w.gateway().metrics().barge_ins.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_corrects_the_lead_then_hangs_up_through_the_control_plane() {
    use callway_sim_openai::ToolCall;
    let turn = |ms| {
        [
            Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 },
            Segment::Tone { hz: 300.0, ms },
            Segment::Silence { ms: 1000 },
        ]
    };
    let settings = CallerSettings {
        script: turn(600).into_iter().chain(turn(600)).collect(),
        pacing: Pacing::Unpaced,
        end: EndPolicy::ServerCloses,
        max_duration: Some(Duration::from_secs(60)),
        ..CallerSettings::default()
    };
    let script =
        Script::replies([Reply::tone(440.0, 500, "Bonjour Claire."), Reply::tone(440.0, 500, "C'est noté.")])
            .with_tool_call(ToolCall::new(
                1,
                "save_lead",
                r#"{"first_name":null,"last_name":"Durand","phone":null}"#,
            ))
            .with_tool_call(ToolCall::new(2, "end_call", r#"{"reason":"completed"}"#));
    let mut w = world(Mode::Plain, settings, script, |_| {}).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the agent hangs up", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert_eq!(done.status, CallStatus::Completed, "{}", report.summary());

    // save_lead reached the control plane and its output went back to the model.
    let lead_id = w.app.storage.store.get_call(call_id.parse().unwrap()).await.unwrap().unwrap().lead_id;
    let lead = w.app.storage.store.get_lead(lead_id).await.unwrap().unwrap();
    assert_eq!(lead.last_name, "Durand");
    let s = &w.openai.sessions()[0];
    let outputs: Vec<Value> = s
        .received_of("conversation.item.create")
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .collect();
    assert!(!outputs.is_empty(), "no function_call_output sent");
    assert!(
        outputs[0]["item"]["output"].as_str().unwrap().contains("Durand")
            || outputs[0]["item"]["output"].as_str().unwrap().contains("saved"),
        "{}",
        outputs[0]
    );

    // end_call: the control plane asked Twilio to hang up, the call ended for that reason.
    assert_eq!(w.end_reason(&call_id).await, "agent_ended_call");
    let timeline = w.app.storage.store.status_timeline(call_id.parse().unwrap()).await.unwrap();
    assert!(timeline.iter().any(|s| s == "hangup-requested"), "{timeline:?}");
    let m = w.gateway().metrics();
    assert!(m.tool_calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(m.tool_failures.load(std::sync::atomic::Ordering::Relaxed), 0);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_lets_the_call_run_then_shuts_it_down_with_going_away() {
    drain_case(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_gpt_live_draining_closes_the_session_and_reports_its_seconds() {
    drain_case(LIVE).await;
}

/// A call under way when the gateway drains, on the engine `env` selects.
async fn drain_case(env: &[(&'static str, &'static str)]) {
    let live = !env.is_empty();
    // A caller who never hangs up.
    let settings = CallerSettings {
        script: vec![Segment::AwaitAgent { settle_ms: 200, timeout_ms: 20_000 }],
        pacing: Pacing::RealTime,
        end: EndPolicy::ServerCloses,
        max_duration: Some(Duration::from_secs(60)),
        ..CallerSettings::default()
    };
    let mut w = world_with_env(Mode::Plain, settings, greeting(), |_| {}, env).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let configured = if live { "session.commentary.append" } else { "session.update" };
    within(
        "the stream is live",
        w.openai.wait_until(|s| s.sessions().first().is_some_and(|r| !r.received_of(configured).is_empty())),
    )
    .await;
    let ops = w.gateway().ops_addr();
    let metrics = w.gateway().metrics().clone();
    assert_eq!(metrics.active_calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    w.gateway().drain();
    assert_eq!(http_get(ops, "/readyz").await.0, 503, "draining: not ready");
    // Every worker closes its listener: new connections are refused while the call goes on.
    within("listeners close", async {
        while metrics.workers_ready.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(tokio::net::TcpStream::connect(w.gateway().local_addr()).await.is_err());
    assert_eq!(metrics.active_calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    w.shutdown().await;
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert!(report.close_handshake_completed, "{}", report.summary());
    assert_eq!(w.end_reason(&call_id).await, "shutdown");
    assert_eq!(metrics.calls_ended("shutdown"), 1);
    assert_eq!(metrics.active_calls.load(std::sync::atomic::Ordering::Relaxed), 0);
    if live {
        // The session (billed by the second) was closed by us, not left to time out, and its
        // seconds reached the call's record.
        within(
            "the Live session closes",
            w.openai.wait_until(|s| {
                s.sessions()
                    .first()
                    .is_some_and(|r| r.live.as_ref().is_some_and(|l| l.closed_reason.is_some()))
            }),
        )
        .await;
        let sessions = w.openai.sessions();
        let s = &sessions[0];
        assert!(!s.received_of("session.close").is_empty(), "{s:?}");
        assert_eq!(live_record(s).closed_reason.as_deref(), Some("close_requested"));
        let events = stored_events(&w, &call_id).await;
        assert!(events.iter().any(|e| e["kind"] == "live_usage"), "{events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_drop_mid_call_is_reconnected_while_the_caller_stays_on_the_line() {
    // The first session's TCP connection drops (no close frame) 1.5 s after it opened.
    openai_drop_is_reconnected(callway_sim_openai::Fault::DropAfter { after: Duration::from_millis(1500) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_drop_in_the_middle_of_a_message_is_reconnected_too() {
    // The same, but the connection ends inside a message: its start is received, its rest
    // never comes. The unfinished message must not keep the dead connection alive.
    openai_drop_is_reconnected(callway_sim_openai::Fault::DropMidMessage {
        after: Duration::from_millis(1500),
    })
    .await;
}

/// Drops the call's first OpenAI session with `fault` and checks the call goes on, on a new
/// session that gets the caller's audio, to the caller's hang-up.
async fn openai_drop_is_reconnected(fault: callway_sim_openai::Fault) {
    use callway_sim_openai::SessionEnd;
    let settings = CallerSettings {
        script: vec![
            Segment::AwaitAgent { settle_ms: 200, timeout_ms: 20_000 },
            Segment::Silence { ms: 2500 },
            Segment::Tone { hz: 300.0, ms: 600 },
            Segment::Silence { ms: 1000 },
        ],
        pacing: Pacing::RealTime,
        end: EndPolicy::ScriptEnd,
        ..CallerSettings::default()
    };
    let mut w = world(Mode::Plain, settings, greeting(), |_| {}).await;
    w.openai.set_faults(vec![fault]);
    let call_id = w.trigger_call().await;
    within("the first session opens", w.openai.wait_until(|s| !s.sessions().is_empty())).await;
    w.openai.set_faults(Vec::new());
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert!(report.first_agent_audio.is_some(), "{}", report.summary());

    let sessions = w.openai.sessions();
    assert_eq!(sessions.len(), 2, "one reconnect: {sessions:?}");
    assert_eq!(sessions[0].ended, Some(SessionEnd::Dropped));
    let resumed = &sessions[1];
    assert!(!resumed.received_of("session.update").is_empty());
    assert!(resumed.appends > 0, "the caller's audio goes to the new session");
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_message_larger_than_the_receive_buffer_is_read_whole() {
    // A greeting whose transcript makes OpenAI messages of ~600 KiB (the receive buffer starts
    // at 128 KiB; the documented limit is 1 MiB): the call must not stall on it.
    let long = "Bonjour Claire, ici Callway. ".repeat(600 * 1024 / 29);
    let script = Script::replies([Reply::tone(440.0, 600, &long)]);
    let sample = callway_gateway::samples::ulaw_tone(600 * 8);
    let mut w = world(Mode::Plain, caller(&sample), script, |_| {}).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert!(report.first_agent_audio.is_some(), "{}", report.summary());
    assert_eq!(w.openai.sessions().len(), 1, "no reconnect: the large messages did not break the session");
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    w.shutdown().await;
}

/// The leaf certificate `addr` presents in a TLS handshake, trusting the CAs of `pkis`.
async fn served_certificate(addr: SocketAddr, pkis: &[&TestPki]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
    let mut roots = RootCertStore::empty();
    for pki in pkis {
        roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = within("a TLS handshake", connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp))
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_der(pki: &TestPki) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap().to_vec()
}

/// Sends this process `SIGHUP`, as `systemctl reload` or certbot's deploy hook would.
fn sighup() {
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status();
    assert!(status.unwrap().success());
}

/// Waits until `counter` reaches `n`.
async fn counted(what: &str, counter: &std::sync::atomic::AtomicU64, n: u64) {
    within(what, async {
        while counter.load(std::sync::atomic::Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_for_new_handshakes_while_a_call_connected_before_stays_up() {
    let settings = CallerSettings {
        script: vec![Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 }],
        end: EndPolicy::ServerCloses,
        ..CallerSettings::default()
    };
    let mut w = world(Mode::Tls, settings, greeting(), |_| {}).await;
    let b = TestPki::new();
    let addr = w.gateway().local_addr();
    assert_eq!(served_certificate(addr, &[&w.pki, &b]).await, leaf_der(&w.pki), "certificate A at start");

    // A call over TLS with certificate A, up and hearing the agent.
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let metrics = w.gateway().metrics().clone();
    counted("the agent's audio reaches the caller", &metrics.frames_to_twilio, 1).await;

    // Certificate B in place of A (the key first, as a renewal may write them), then SIGHUP.
    std::fs::write(w.dir.path().join("key.pem"), &b.key_pem).unwrap();
    std::fs::write(w.dir.path().join("cert.pem"), &b.cert_pem).unwrap();
    sighup();
    counted("the reload", &metrics.tls_reloads, 1).await;
    assert_eq!(served_certificate(addr, &[&w.pki, &b]).await, leaf_der(&b), "new handshakes present B");
    let b_sha: String = ring::digest::digest(&ring::digest::SHA256, &leaf_der(&b))
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(metrics.tls_certificate(), b_sha);

    // A broken file: refused, B still served, the error counted.
    std::fs::write(w.dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\ntruncated\n").unwrap();
    sighup();
    counted("the refused reload", &metrics.tls_reload_failures, 1).await;
    assert_eq!(served_certificate(addr, &[&w.pki, &b]).await, leaf_der(&b), "a bad file keeps B");
    let (_, text) = http_get(w.gateway().ops_addr(), "/metrics").await;
    assert!(text.contains(r#"callway_gateway_tls_reloads_total{result="ok"} 1"#), "{text}");
    assert!(text.contains(r#"callway_gateway_tls_reloads_total{result="error"} 1"#), "{text}");
    assert!(
        text.contains(&format!(r#"callway_gateway_tls_certificate_info{{sha256="{b_sha}"}} 1"#)),
        "{text}"
    );

    // The call opened under A is still up: nothing ended it, and its TLS session still
    // carries Twilio's `stop` when the call is hung up through the REST API.
    assert_eq!(metrics.active_calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(w.twilio.call(&sid).unwrap().status, CallStatus::InProgress);
    let res = w
        .http
        .post(format!("{}/Calls/{sid}.json", w.twilio.calls_url().trim_end_matches("/Calls.json")))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("Status", "completed")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    assert!(done.caller_reports[0].handshake_failure.is_none(), "{}", done.caller_reports[0].summary());
    w.shutdown().await;
}

/// Step 1 of the runbook's rotation of `STREAM_TOKEN_SECRET`: the gateway has the new secret
/// and the previous one while the control plane still mints with the previous: calls go
/// through; a token of a secret the gateway does not have is still refused before any OpenAI
/// session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_stream_token_secret_rotation_tokens_of_the_previous_secret_still_open_calls() {
    const NEW: &str = "rotated-stream-token-secret-0123456789abcdef";
    let sample = callway_gateway::samples::ulaw_tone(600 * 8);
    let env = [("STREAM_TOKEN_SECRET", NEW), ("STREAM_TOKEN_SECRET_PREVIOUS", STREAM_TOKEN_SECRET)];
    let mut w = world_with_env(Mode::Plain, caller(&sample), greeting(), |_| {}, &env).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    assert!(done.caller_reports[0].first_agent_audio.is_some(), "{}", done.caller_reports[0].summary());
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");

    let stranger =
        contract::stream_token::StreamTokenMinter::new(b"a-third-secret-nobody-configured-0123456789")
            .unwrap()
            .mint(&contract::stream_token::StreamClaims {
                call_id: [1; 16],
                lead_id: [2; 16],
                expires_at: callway_control::routes::now_secs() + 60,
                nonce: [3; 12],
            });
    let path = format!("/api/twilio/media-stream/{stranger}");
    let (status, text) = raw_upgrade(w.gateway().local_addr(), &w.domain, &path, Some(AUTH_TOKEN)).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(w.openai.sessions().len(), 1, "no OpenAI session for the refused token");
    w.shutdown().await;
}

// ---- GPT-Live (OPENAI_VOICE_API=live) -------------------------------------------------------

const LIVE: &[(&str, &str)] = &[("OPENAI_VOICE_API", "live")];

/// A caller who streams in real time, as a phone does (GPT-Live advances only while audio
/// keeps coming): waits for the greeting, speaks, listens, hangs up.
fn live_caller(turns: usize) -> CallerSettings {
    let mut script = Vec::new();
    for _ in 0..turns {
        script.push(Segment::AwaitAgent { settle_ms: 400, timeout_ms: 20_000 });
        script.push(Segment::Tone { hz: 300.0, ms: 700 });
        script.push(Segment::Silence { ms: 900 });
    }
    script.push(Segment::AwaitAgent { settle_ms: 400, timeout_ms: 20_000 });
    CallerSettings {
        script,
        pacing: Pacing::RealTime,
        end: EndPolicy::ScriptEnd,
        max_duration: Some(Duration::from_secs(60)),
        ..CallerSettings::default()
    }
}

/// Prints (for benches/README.md, never asserted: the machine is shared) when the first voiced
/// agent audio played (stream time, from `start`), and how long the agent's voice went on
/// playing after the caller turned loud at `loud_ms`: until the first 200 ms of silence (or
/// nothing) played after that moment. Digital silence played does not count as voice.
fn print_barge_in(engine: &str, report: &callway_sim_twilio::caller::CallerReport, loud_ms: u64) {
    const QUIET: u64 = 200 * 8;
    let track = report.heard_track();
    let voiced = |i: usize| track.get(i).is_some_and(|&b| b != 0xFF);
    let first = (0..track.len()).find(|&i| voiced(i)).map(|i| i / 8);
    let loud = (loud_ms * 8) as usize;
    let mut stopped = None;
    let mut i = loud;
    while i < track.len() {
        if !voiced(i) && (i..(i + QUIET as usize).min(track.len())).all(|j| !voiced(j)) {
            stopped = Some(i);
            break;
        }
        i += 1;
    }
    let stopped = stopped.unwrap_or(track.len().max(loud));
    eprintln!(
        "measure: {engine}: first voiced agent audio at {} ms; barge-in: caller loud at {loud_ms} ms, agent voice stopped at {} ms: {} ms",
        first.map_or("none".to_owned(), |f| f.to_string()),
        stopped / 8,
        (stopped - loud) / 8
    );
}

/// The Live session's record: started, no event refused by the client schema.
fn live_record(s: &callway_sim_openai::SessionRecord) -> &callway_sim_openai::LiveRecord {
    let live = s.live.as_ref().expect("a GPT-Live session");
    assert!(live.client_schema_violations.is_empty(), "{:?}", live.client_schema_violations);
    assert!(s.schema_violations.is_empty(), "{:?}", s.schema_violations);
    live
}

/// The events the control plane stored for a call, in order: `{kind, speaker, text, payload}`
/// (read from its SQLite file: the store has no reader for them yet).
async fn stored_events(w: &World, call_id: &str) -> Vec<Value> {
    use sqlx::Row as _;
    let id: uuid::Uuid = call_id.parse().unwrap();
    let url = format!("sqlite:{}", w.dir.path().join("cp.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows =
        sqlx::query("SELECT kind, speaker, text, payload FROM call_events WHERE call_id = ? ORDER BY seq")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            let payload: String = r.get("payload");
            json!({
                "kind": r.get::<String, _>("kind"),
                "speaker": r.get::<Option<String>, _>("speaker"),
                "text": r.get::<Option<String>, _>("text"),
                "payload": serde_json::from_str::<Value>(&payload).unwrap(),
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_gpt_live_from_greeting_to_hang_up() {
    live_full_call(Mode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_gpt_live_through_the_gateway_terminating_tls_on_both_legs() {
    live_full_call(Mode::Tls).await;
}

/// The whole call on GPT-Live, checked from every side.
async fn live_full_call(mode: Mode) {
    let script = Script::replies([
        Reply::tone(440.0, 800, "Bonjour Claire, ici Callway."),
        Reply::tone(440.0, 600, "Très bien, c'est noté."),
    ])
    .with_user_transcripts(["Oui bonjour"]);
    let mut w = world_with_env(mode, live_caller(1), script, |_| {}, LIVE).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert_eq!(done.status, CallStatus::Completed, "{}", report.summary());
    assert!(report.handshake_failure.is_none(), "{}", report.summary());
    assert!(report.first_agent_audio.is_some(), "the greeting was not heard: {}", report.summary());
    assert!(report.warnings.is_empty(), "Twilio would warn: {:?}", report.warnings);

    // The caller's hang-up and our session.close cross: the session's end is recorded once
    // the simulator has answered session.closed.
    within(
        "the Live session closes",
        w.openai.wait_until(|s| {
            s.sessions().first().is_some_and(|r| r.live.as_ref().is_some_and(|l| l.closed_reason.is_some()))
        }),
    )
    .await;
    let sessions = w.openai.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    let live = live_record(s);
    let start = &s.received_of("session.start")[0]["session"];
    assert_eq!(start["model"], "gpt-live-1.1");
    assert_eq!(start["audio"]["format"], json!({"type": "audio/pcmu", "rate": 8000}));
    let tools: Vec<&str> = start["delegation"]["responses"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["save_lead", "end_call"]);
    // Nothing but session.start before session.started; the greeting is a commentary.
    assert_eq!(s.received[0].kind, "session.start");
    let greeting = s.received_of("session.commentary.append");
    assert_eq!(greeting.len(), 1, "one greeting");
    assert!(greeting[0]["content"].as_str().unwrap().contains("Claire"), "{}", greeting[0]);
    // The caller's audio went in as appends; the session was closed by us, not dropped.
    assert!(s.appends > 0);
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    assert!(!s.received_of("session.close").is_empty());

    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    let events = stored_events(&w, &call_id).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"engine"), "{kinds:?}");
    assert!(kinds.contains(&"live_usage"), "the session's seconds are on the call: {kinds:?}");
    let engine = events.iter().find(|e| e["kind"] == "engine").unwrap();
    assert_eq!(
        (engine["payload"]["api"].as_str(), engine["payload"]["model"].as_str()),
        (Some("live"), Some("gpt-live-1.1"))
    );
    let lines: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "transcript")
        .map(|e| (e["speaker"].as_str().unwrap(), e["text"].as_str().unwrap()))
        .collect();
    assert!(lines.contains(&("agent", "Bonjour Claire, ici Callway.")), "{lines:?}");
    assert!(lines.contains(&("caller", "Oui bonjour")), "{lines:?}");
    let m = w.gateway().metrics();
    assert_eq!(m.calls_ended("caller_hung_up"), 1);
    assert!(m.live_silence_held_back.load(std::sync::atomic::Ordering::Relaxed) > 0);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_gpt_live_the_delegated_tools_correct_the_lead_then_hang_up_after_the_goodbye() {
    use callway_sim_openai::ToolCall;
    let script = Script::replies([
        Reply::tone(440.0, 500, "Bonjour Claire."),
        Reply::tone(440.0, 500, "C'est noté."),
        Reply::tone(440.0, 500, "Au revoir."),
    ])
    .with_tool_call(ToolCall::new(1, "save_lead", r#"{"first_name":null,"last_name":"Durand","phone":null}"#))
    .with_tool_call(ToolCall::new(2, "end_call", r#"{"reason":"completed"}"#));
    let mut settings = live_caller(2);
    settings.end = EndPolicy::ServerCloses;
    let mut w = world_with_env(Mode::Plain, settings, script, |_| {}, LIVE).await;
    let call_id = w.trigger_call().await;
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the agent hangs up", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert_eq!(done.status, CallStatus::Completed, "{}", report.summary());

    let lead_id = w.app.storage.store.get_call(call_id.parse().unwrap()).await.unwrap().unwrap().lead_id;
    assert_eq!(w.app.storage.store.get_lead(lead_id).await.unwrap().unwrap().last_name, "Durand");
    let s = &w.openai.sessions()[0];
    live_record(s);
    let outputs = s.received_of("response.item.create");
    assert!(
        outputs.iter().any(|o| o["item"]["output"].as_str().unwrap().contains(r#""saved":true"#)),
        "{outputs:?}"
    );
    assert!(s.received_of("response.create").len() >= 2, "each output continues the delegated response");
    assert_eq!(w.end_reason(&call_id).await, "agent_ended_call");
    let timeline = w.app.storage.store.status_timeline(call_id.parse().unwrap()).await.unwrap();
    assert!(timeline.iter().any(|s| s == "hangup-requested"), "{timeline:?}");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_gpt_live_a_dropped_session_is_resumed_with_the_conversation_as_history() {
    use callway_sim_openai::SessionEnd;
    let script =
        Script::replies([Reply::tone(440.0, 600, "Bonjour Claire."), Reply::tone(440.0, 600, "Parfait.")])
            .with_user_transcripts(["Oui", "Bien sûr"]);
    let mut w = world_with_env(Mode::Plain, live_caller(1), script, |_| {}, LIVE).await;
    // The first session's connection drops 2.5 s after it opened: the greeting has been said.
    w.openai.set_faults(vec![callway_sim_openai::Fault::DropAfter { after: Duration::from_millis(2500) }]);
    let call_id = w.trigger_call().await;
    within("the first session opens", w.openai.wait_until(|s| !s.sessions().is_empty())).await;
    w.openai.set_faults(Vec::new());
    let sid = within("Twilio places the call", w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within("the call finishes", w.twilio.wait_call_finished(&sid)).await;
    let report = &done.caller_reports[0];
    assert_eq!(done.status, CallStatus::Completed, "{}", report.summary());
    let sessions = w.openai.sessions();
    assert!(sessions.len() >= 2, "a new session after the drop: {sessions:?}");
    assert_eq!(sessions[0].ended, Some(SessionEnd::Dropped));
    let resumed = &sessions[1];
    live_record(resumed);
    let start = &resumed.received_of("session.start")[0]["session"];
    let history = start["input"].as_array().expect("the conversation so far as history");
    assert!(history.iter().any(|m| m["role"] == "assistant"), "{history:?}");
    assert!(resumed.received_of("session.commentary.append").is_empty(), "no second greeting");
    assert!(resumed.appends > 0, "the caller's audio goes to the new session");
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_gpt_live_the_model_stops_talking_when_the_caller_barges_in() {
    // The default, then the two choices the gateway offers: the session started at Twilio's
    // `start` rather than with the socket, and every silent chunk forwarded.
    for env in [
        &[("OPENAI_VOICE_API", "live")][..],
        &[("OPENAI_VOICE_API", "live"), ("LIVE_START_AT", "start")],
        &[("OPENAI_VOICE_API", "live"), ("LIVE_FORWARD_SILENCE", "true")],
    ] {
        live_barge_in_case(env).await;
    }
}

async fn live_barge_in_case(env: &[(&'static str, &'static str)]) {
    let (mut w, call_id, report) = call_with_barge_in(env, 1500, 1500).await;
    let report = &report;
    assert!(report.first_agent_audio.is_some(), "{env:?}: {}", report.summary());
    // The model cut its 4 s greeting short; the gateway had nothing to clear or truncate.
    assert!(report.audio_played() < Duration::from_millis(4000), "{env:?}: {}", report.summary());
    assert!(report.clears.is_empty(), "{env:?}");
    print_barge_in(&format!("live {:?}", &env[1..]), report, 1500);
    let s = &w.openai.sessions()[0];
    live_record(s);
    assert!(s.sent_of("error").is_empty(), "{:?}", s.sent_of("error"));
    assert_eq!(w.end_reason(&call_id).await, "caller_hung_up");
    let held = w.gateway().metrics().live_silence_held_back.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "measure: live {:?}: silent chunks held back {held}, chunks sent to Twilio {}",
        &env[1..],
        report.marks.len()
    );
    w.shutdown().await;
}
