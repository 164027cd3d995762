//! What the control plane's integration tests share: a fresh database per test (real
//! PostgreSQL from `scripts/test`, or a SQLite file), a private PostgreSQL cluster a test may
//! stop and start, a control plane serving on a loopback port, and a recording HTTP endpoint
//! that stands in for an upstream when a test must check each request exactly.
#![allow(dead_code, reason = "each test binary uses a different part of this module")]

pub mod browser;
pub mod edge;
pub mod gateway;
pub mod pg;
pub mod recorder;
pub mod records;
pub mod web;
pub mod world;

use std::collections::HashMap;
use std::sync::Arc;

use callway_control::config::Config;
use callway_control::routes::SharedApp;
use tokio::sync::oneshot;

/// Secrets used by every test app (≥ 32 bytes each).
pub const STREAM_TOKEN_SECRET: &str = "test-stream-token-secret-0123456789abcdef";
/// See [`STREAM_TOKEN_SECRET`].
pub const INTERNAL_API_SECRET: &str = "test-internal-api-secret-0123456789abcdef";
/// Twilio account of the tests.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Twilio auth token of the tests.
pub const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Our Twilio number.
pub const FROM: &str = "+33159000000";
/// Admin token of the tests.
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

/// Where a test app keeps its data.
#[derive(Debug, Clone)]
pub enum Db {
    /// A database URL (`postgres://…` or `sqlite:…`).
    Url(String),
    /// Supabase REST at this base URL.
    Supabase(String),
}

/// The environment of a test app; `overrides` win.
pub fn env_for(db: &Db, openai_base: &str, twilio_base: &str) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = [
        ("OPENAI_API_KEY", "sk-test-key"),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("TWILIO_PHONE_NUMBER_FROM", FROM),
        ("TWILIO_STREAM_DOMAIN", "edge.example.eu"),
        ("STREAM_TOKEN_SECRET", STREAM_TOKEN_SECRET),
        ("INTERNAL_API_SECRET", INTERNAL_API_SECRET),
        ("ADMIN_API_TOKEN", ADMIN_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    m.insert("OPENAI_BASE_URL".into(), openai_base.into());
    m.insert("TWILIO_API_BASE".into(), twilio_base.into());
    match db {
        Db::Url(u) => {
            m.insert("DATABASE_URL".into(), u.clone());
        }
        Db::Supabase(u) => {
            m.insert("SUPABASE_URL".into(), u.clone());
            m.insert("SUPABASE_SERVICE_ROLE_KEY".into(), "sb_secret_test".into());
        }
    }
    m
}

/// A control plane serving on 127.0.0.1.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state (storage, config…), for assertions.
    pub app: SharedApp,
    /// A client for it.
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _outbox: tempfile::TempDir,
}

/// Runs the `callway-control` binary with `ARGS` and only `env`; returns (stdout, stderr,
/// success).
pub fn control(env: &HashMap<String, String>, args: &[&str]) -> (String, String, bool) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callway-control"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

impl Running {
    /// Starts with `env` (PUBLIC_APP_URL defaults to the app's own address, OUTBOX_DIR to a
    /// fresh temporary directory). Migrates like the binary does.
    pub async fn start(env: HashMap<String, String>) -> Running {
        Self::start_at(env, "127.0.0.1:0").await
    }

    /// [`Running::start`] on a given address (when others must know it beforehand).
    pub async fn start_at(env: HashMap<String, String>, addr: &str) -> Running {
        Self::start_with_clock(env, addr, Arc::new(callway_control::clock::SystemClock)).await
    }

    /// [`Running::start_at`] with the clock its scheduled work (retries) reads.
    pub async fn start_with_clock(
        mut env: HashMap<String, String>,
        addr: &str,
        clock: Arc<dyn callway_control::clock::Clock>,
    ) -> Running {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let outbox = tempfile::tempdir().unwrap();
        env.entry("PUBLIC_APP_URL".into()).or_insert_with(|| base.clone());
        env.insert("OUTBOX_DIR".into(), outbox.path().display().to_string());
        let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"));
        let app = callway_control::build_app_with_clock(config, clock).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(callway_control::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        Running { base, app, http: reqwest::Client::new(), stop: Some(tx), _outbox: outbox }
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A capability for a new web session, as `/api/session` would hand out.
    pub fn capability(&self) -> (uuid::Uuid, String) {
        let session = uuid::Uuid::new_v4();
        let cap = self.app.capabilities.mint(session, callway_control::routes::now_secs() + 600);
        (session, cap)
    }

    /// POSTs JSON with an optional bearer.
    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &serde_json::Value) -> Answer {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        Answer::of(req.send().await.unwrap()).await
    }

    /// POSTs raw bytes with a content type and optional bearer.
    pub async fn post_raw(
        &self,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self.http.post(self.url(path)).header("content-type", content_type).body(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        Answer::of(req.send().await.unwrap()).await
    }

    /// POSTs to an internal route, signed as the gateway signs.
    pub async fn post_internal(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.post_internal_signed(path, body, INTERNAL_API_SECRET).await
    }

    /// POSTs to an internal route signed with `secret` (a gateway of another configuration).
    pub async fn post_internal_signed(&self, path: &str, body: &serde_json::Value, secret: &str) -> Answer {
        self.send_internal(path, body, secret, None).await
    }

    /// POSTs to an internal route as a gateway announcing call-context version `version`
    /// (`x-callway-context-version`; `post_internal` announces none, as gateways before it).
    pub async fn post_internal_as_version(
        &self,
        path: &str,
        body: &serde_json::Value,
        version: u32,
    ) -> Answer {
        self.send_internal(path, body, INTERNAL_API_SECRET, Some(version)).await
    }

    async fn send_internal(
        &self,
        path: &str,
        body: &serde_json::Value,
        secret: &str,
        version: Option<u32>,
    ) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        let ts = callway_control::routes::now_secs();
        let auth = contract::internal_api::InternalAuth::new(secret.as_bytes());
        let sig = auth.sign(ts, "POST", path, &bytes);
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header(contract::internal_api::TIMESTAMP_HEADER, ts.to_string())
            .header(contract::internal_api::SIGNATURE_HEADER, sig);
        if let Some(v) = version {
            req = req.header(contract::internal_api::CONTEXT_VERSION_HEADER, v);
        }
        Answer::of(req.body(bytes).send().await.unwrap()).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Null` if it is not JSON).
    pub json: serde_json::Value,
    /// Body as text.
    pub text: String,
}

impl Answer {
    /// Reads a response whole.
    pub async fn of_response(res: reqwest::Response) -> Answer {
        Self::of(res).await
    }

    async fn of(res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Answer { status, headers, json, text }
    }

    /// The `code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

/// A shared handle type for recorded state.
pub type Shared<T> = Arc<std::sync::Mutex<T>>;
