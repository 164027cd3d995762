//! Twilio's REST API for outbound calls, and what Twilio does with the calls it accepts.
//!
//! Endpoints (HTTP Basic auth with the Account SID and auth token, or an API key and secret):
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`: validated as Twilio does
//!   ([`validate`]); 201 with the Call resource (`status: queued`), or Twilio's error JSON.
//! - `GET  …/Calls.json`, `GET …/Calls/{Sid}.json`: list and fetch.
//! - `POST …/Calls/{Sid}.json` with `Status=completed` hangs up an answered call; a call not yet
//!   answered becomes `canceled`; unknown sid → 404 20404.
//! - `GET  …/OutgoingCallerIds.json[?PhoneNumber=…]`: the verified caller IDs.
//!
//! Every request is also addressed by its `Host`: `api.twilio.com`, the regional form
//! `api.{edge}.{region}.twilio.com` (`api.dublin.ie1.twilio.com`), or the simulator's own
//! address (standing for `api.twilio.com`); retired and unknown Twilio names are refused, and an
//! account given a region only answers requests addressed to that region ([`host`]).
//!
//! An accepted call then rings for the configured delay and, per the callee's [`Outcome`], is
//! answered, busy, unanswered or failed. An answered call runs its TwiML: `<Connect><Stream>`
//! starts a [`crate::caller`] against the stream URL, and the document continues when the
//! stream closes. Status callbacks and stream status callbacks go out signed
//! ([`crate::callbacks`]). Everything is recorded on the [`ApiHandle`].

pub mod amd;
pub mod dial;
pub mod errors;
pub mod host;
pub mod resources;
mod routes;
mod runner;
pub mod state;
pub mod validate;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use errors::ApiError;
pub use state::{CallError, CallSnapshot, CallStatus, RecordedRequest, SimClock, StatusChange};
use tokio::sync::{oneshot, watch};
pub use validate::CreateCall;

use crate::callbacks::{CallbackRecord, CallbackSender};
use crate::caller::{CallerConfig, DtmfPress, EndPolicy, Pacing, Segment};
use crate::sids;
use state::{Inner, Shared};

/// What happens when the simulator dials a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered after the ring delay (the default).
    Answer,
    /// Busy after the ring delay (`busy`).
    Busy,
    /// Rings until `Timeout` (`no-answer`).
    NoAnswer,
    /// Cannot be placed (`failed`, no ringing).
    Failed,
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "answer" => Ok(Outcome::Answer),
            "busy" => Ok(Outcome::Busy),
            "no-answer" => Ok(Outcome::NoAnswer),
            "failed" => Ok(Outcome::Failed),
            _ => Err(format!("`{s}`: expected answer, busy, no-answer or failed")),
        }
    }
}

/// A failure served to the next create-call request (then forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with code 20429.
    RateLimited,
    /// 500 with code 20500.
    ServerError,
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "429" | "rate-limit" => Ok(Fault::RateLimited),
            "500" | "server-error" => Ok(Fault::ServerError),
            _ => Err(format!("`{s}`: expected 429 (rate-limit) or 500 (server-error)")),
        }
    }
}

/// How the simulated callee behaves on the Media Stream of an answered call.
#[derive(Debug, Clone)]
pub struct CallerSettings {
    /// What the callee says.
    pub script: Vec<Segment>,
    /// Key presses.
    pub dtmf: Vec<DtmfPress>,
    /// Clock.
    pub pacing: Pacing,
    /// When the callee hangs up.
    pub end: EndPolicy,
    /// Longest stream (besides `TimeLimit` and the trial limit).
    pub max_duration: Option<Duration>,
    /// PEM CA(s) trusted for `wss://` stream URLs.
    pub ca_pem: Option<Vec<u8>>,
    /// TCP/TLS/upgrade timeout, each.
    pub connect_timeout: Duration,
}

impl Default for CallerSettings {
    fn default() -> Self {
        let c = CallerConfig::new("", "");
        Self {
            script: c.script,
            dtmf: c.dtmf,
            pacing: c.pacing,
            end: c.end,
            max_duration: c.max_duration,
            ca_pem: c.ca_pem,
            connect_timeout: c.connect_timeout,
        }
    }
}

/// The simulated account and its behaviour.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `AC…` (Basic auth user).
    pub account_sid: String,
    /// Auth token (Basic auth password; signs callbacks and stream upgrades).
    pub auth_token: String,
    /// API keys: (`SK…`, secret), also accepted for Basic auth.
    pub api_keys: Vec<(String, String)>,
    /// Twilio numbers the account owns (valid `From`).
    pub owned_numbers: Vec<String>,
    /// Verified caller IDs (valid `From`; on trial, the only valid `To`).
    pub verified_numbers: Vec<String>,
    /// Trial account: calls only to verified numbers (21219), ten minutes at most.
    pub trial: bool,
    /// How long the callee's phone rings before the outcome.
    pub ring_delay: Duration,
    /// How long a [`Outcome::NoAnswer`] phone rings before `no-answer` (at most the request's
    /// `Timeout`; `None` = the whole `Timeout`, as Twilio does). Lets tests of unanswered calls
    /// finish without waiting 30 s.
    pub no_answer_after: Option<Duration>,
    /// Outcome per `To` number (others answer).
    pub outcomes: HashMap<String, Outcome>,
    /// What answering-machine detection finds per `To` number (others: a person).
    pub amd: HashMap<String, amd::AmdScript>,
    /// What a `<Dial>`led party does, per number or SIP URI (others answer after the ring delay
    /// and talk for a second).
    pub dial: HashMap<String, dial::DialScript>,
    /// Failures for the next create-call requests, in order.
    pub faults: Vec<Fault>,
    /// The callee on the Media Stream.
    pub caller: CallerSettings,
    /// Refuse `ws://` stream URLs (31922) as Twilio does; off by default for local tests.
    pub strict_wss: bool,
    /// PEM CA(s) trusted for `https` callbacks and TwiML URLs.
    pub callback_ca_pem: Option<Vec<u8>>,
    /// Limit for each callback request.
    pub callback_timeout: Duration,
    /// The Twilio region the account's credentials belong to (`us1`, `ie1`, `au1`): requests
    /// addressed by `Host` to another region fail with 401 20003, as region-specific
    /// credentials do; the simulator's own address stands for `api.twilio.com` (US1), so an
    /// `ie1` account must be addressed as `api.dublin.ie1.twilio.com` ([`host`]). `None`: any
    /// region's host is accepted.
    pub region: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        let token = sids::new_sid("XX")[2..].to_owned();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            account_sid: sids::new_sid(sids::ACCOUNT),
            auth_token: token,
            api_keys: Vec::new(),
            owned_numbers: vec!["+15005550006".into()],
            verified_numbers: Vec::new(),
            trial: false,
            ring_delay: Duration::from_secs(1),
            no_answer_after: None,
            outcomes: HashMap::new(),
            amd: HashMap::new(),
            dial: HashMap::new(),
            faults: Vec::new(),
            caller: CallerSettings::default(),
            strict_wss: false,
            callback_ca_pem: None,
            callback_timeout: Duration::from_secs(15),
            region: None,
        }
    }
}

/// Starts the REST simulator.
pub struct TwilioApiSim;

impl TwilioApiSim {
    /// Binds `config.listen` and serves until the handle is dropped or shut down.
    pub async fn spawn(config: ApiConfig) -> anyhow::Result<ApiHandle> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let clock = SimClock::new();
        let sender = CallbackSender::new(
            &config.auth_token,
            config.callback_ca_pem.as_deref(),
            config.callback_timeout,
        )?;
        let inner = Inner {
            requests: Vec::new(),
            calls: Vec::new(),
            callbacks: Vec::new(),
            faults: config.faults.iter().copied().collect::<VecDeque<_>>(),
            outcomes: config.outcomes.clone(),
            amd: config.amd.clone(),
            dial: config.dial.clone(),
            verified: config
                .verified_numbers
                .iter()
                .map(|n| (n.clone(), sids::new_sid(sids::PHONE_NUMBER), Duration::ZERO))
                .collect(),
            owned_sids: config
                .owned_numbers
                .iter()
                .map(|n| (n.clone(), sids::new_sid(sids::PHONE_NUMBER)))
                .collect(),
        };
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared { cfg: config, clock, inner: Mutex::new(inner), changed, sender });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        tracing::info!(%addr, account = %shared.cfg.account_sid, "Twilio REST simulator listening");
        Ok(ApiHandle { shared, addr, stop: Some(stop_tx), server: Some(server) })
    }
}

/// A running REST simulator: its address and everything it saw and did.
pub struct ApiHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl ApiHandle {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — use it where the application expects `https://api.twilio.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The account's `Calls.json` URL.
    pub fn calls_url(&self) -> String {
        format!("{}{}/Calls.json", self.base_url(), resources::account_path(&self.shared.cfg.account_sid))
    }

    /// `AC…`.
    pub fn account_sid(&self) -> &str {
        &self.shared.cfg.account_sid
    }

    /// The auth token.
    pub fn auth_token(&self) -> &str {
        &self.shared.cfg.auth_token
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ApiConfig {
        &self.shared.cfg
    }

    /// The simulator's clock (what the recorded times are measured on).
    pub fn clock(&self) -> &SimClock {
        &self.shared.clock
    }

    /// Every request received, with its answer, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.read(|i| i.requests.clone())
    }

    /// Every call created, oldest first.
    pub fn calls(&self) -> Vec<CallSnapshot> {
        self.shared.read(|i| i.calls.iter().map(|c| c.snap.clone()).collect())
    }

    /// One call.
    pub fn call(&self, sid: &str) -> Option<CallSnapshot> {
        self.shared.call(sid)
    }

    /// Every callback and TwiML fetch made, in the order their answers came.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.shared.read(|i| i.callbacks.clone())
    }

    /// The callbacks of one call.
    pub fn callbacks_for(&self, sid: &str) -> Vec<CallbackRecord> {
        self.shared.read(|i| i.callbacks.iter().filter(|c| c.call_sid == sid).cloned().collect())
    }

    /// Serves `fault` to the next create-call request (after those already queued).
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.update(|i| i.faults.push_back(fault));
    }

    /// Sets what happens when `number` is dialled.
    pub fn set_outcome(&self, number: &str, outcome: Outcome) {
        self.shared.update(|i| {
            i.outcomes.insert(number.to_owned(), outcome);
        });
    }

    /// Sets what answering-machine detection finds when `number` answers.
    pub fn set_amd(&self, number: &str, script: amd::AmdScript) {
        self.shared.update(|i| {
            i.amd.insert(number.to_owned(), script);
        });
    }

    /// Sets what the party at `address` (a number or a SIP URI) does when a `<Dial>` calls it.
    pub fn set_dial(&self, address: &str, script: dial::DialScript) {
        self.shared.update(|i| {
            i.dial.insert(address.to_owned(), script);
        });
    }

    /// Verifies a caller ID (as done in Twilio's console).
    pub fn verify_number(&self, number: &str) {
        let now = self.shared.clock.elapsed();
        self.shared.update(|i| {
            if !i.verified.iter().any(|(n, _, _)| n == number) {
                i.verified.push((number.to_owned(), sids::new_sid(sids::PHONE_NUMBER), now));
            }
        });
    }

    /// Waits until `f` returns `Some` (checked after every change of the simulator's state).
    pub async fn wait_until<R>(&self, mut f: impl FnMut(&Self) -> Option<R>) -> R {
        let mut rx = self.shared.changed.subscribe();
        loop {
            if let Some(r) = f(self) {
                return r;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `shared`, which `self` holds: this cannot happen.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until at least `n` calls exist.
    pub async fn wait_for_calls(&self, n: usize) -> Vec<CallSnapshot> {
        self.wait_until(|h| Some(h.calls()).filter(|c| c.len() >= n)).await
    }

    /// Waits until call `sid` has reached `status` (or any later one).
    pub async fn wait_call_status(&self, sid: &str, status: CallStatus) -> CallSnapshot {
        self.wait_until(|h| {
            h.call(sid).filter(|c| c.timeline.iter().any(|s| s.status == status) || c.status.is_final())
        })
        .await
    }

    /// Waits until call `sid` is over and all its callbacks have been answered.
    pub async fn wait_call_finished(&self, sid: &str) -> CallSnapshot {
        self.wait_until(|h| h.call(sid).filter(|c| c.finished)).await
    }

    /// Waits until at least `n` callbacks have been made.
    pub async fn wait_callbacks(&self, n: usize) -> Vec<CallbackRecord> {
        self.wait_until(|h| Some(h.callbacks()).filter(|c| c.len() >= n)).await
    }

    /// Stops serving (calls under way keep running to their end).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}
