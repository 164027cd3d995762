//! OpenAI Realtime GA simulator: a WebSocket server (`/v1/realtime`), WebRTC calls
//! (`POST /v1/realtime/calls`) and the `client_secrets` REST endpoint on one local port,
//! behaving like the real service — event sequences, VAD, responses, tool calls, cancellation,
//! truncation and errors included — so Callway's tests, benchmarks and local demo (the web page
//! included) can run without reaching OpenAI.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use callway_sim_openai::{OpenAiSim, Reply, Script, SimConfig, ToolCall};
//! let sim = OpenAiSim::spawn(SimConfig {
//!     script: Script::replies([Reply::tone(440.0, 800, "Bonjour !")])
//!         .with_tool_call(ToolCall::new(2, "save_lead", r#"{"first_name":"Zoé"}"#)),
//!     ..SimConfig::default()
//! })
//! .await?;
//! let url = sim.ws_url(); // ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime-2.1, Bearer sk-test
//! // … run the code under test against `url` / `sim.base_url()` …
//! sim.wait_until(|s| s.sessions().first().is_some_and(|r| r.ended.is_some())).await;
//! let received = sim.sessions()[0].received_of("input_audio_buffer.append");
//! # let _ = (url, received);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Time: every delay (time to first byte, pacing, faults, the session cap) runs on tokio's
//! clock, so a test on a paused clock (`#[tokio::test(start_paused = true)]`) sees them
//! without waiting. Tests wait for facts, not durations: [`SimHandle::wait_until`].
//!
//! WebRTC, compared with the real API. Does: `Bearer` API key or ephemeral key (unexpired; one
//! call per key), `application/sdp` or multipart `sdp` + `session` bodies, `201` with the SDP
//! answer and `Location: /v1/realtime/calls/rtc_…`, CORS for a page on another origin; real
//! ICE (ICE-lite, one host candidate on 127.0.0.1 UDP), DTLS-SRTP and SCTP (str0m); the GA
//! events on the `oai-events` channel from the same session code as the WebSocket path; Opus
//! both ways (turn detection on the decoded caller audio, the scripted replies played at 20 ms
//! pacing); `output_audio_buffer.started/stopped/cleared`, `output_audio_buffer.clear`, and on
//! barge-in the buffer cleared and the item truncated at what was heard. Does not: TURN, TCP
//! or IPv6 candidates, trickle ICE, the sideband WebSocket (`?call_id=`), `/accept` `/hangup`
//! `/refer` on the call, SIP, the RTP audio-level extension, faults (`Fault` applies to
//! WebSocket sessions only); `session.audio.*.format` is ignored on WebRTC (Opus), as it is by
//! the service. Codes the public record does not show (a refused offer `invalid_offer`, a reused
//! key, a wrong content type) are the simulator's choice.
//!
//! GPT-Live (`GET /v1/live/sessions`, a different protocol): the same scripted agent behind a
//! second front end, in `live/` (what it does and does not do: [`live`]).
//!
//! Layout: `server.rs` (listener, handshake), `ws.rs` (a session's socket loop and faults),
//! `calls.rs` (`POST /v1/realtime/calls`; its body read by `calls_body.rs`), `rtc.rs` (a WebRTC session's loop: str0m and Opus),
//! `playout.rs` (the WebRTC output audio buffer),
//! `session.rs` (a session's behaviour), `response.rs` (one response's event sequence),
//! `vad.rs`, `conversation.rs`, `session_config.rs`, `rest.rs` (`client_secrets`),
//! `schema.rs` (the vendored schemas), `script.rs`, `faults.rs`, `record.rs`, `audio.rs`.

pub mod audio;
pub mod calls_body;
pub mod cli;
pub mod faults;
pub mod live;
pub mod record;
pub mod schema;
pub mod script;

mod api_error;
mod calls;
mod config;
mod conversation;
mod http;
mod ids;
mod models;
mod playout;
mod response;
mod rest;
mod rtc;
mod server;
mod session;
mod session_config;
mod state;
mod vad;
mod wire;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::SimConfig;
pub use faults::{Fault, Refusal, StallMode};
pub use record::{
    Auth, ClientSecretRequest, HandshakeRecord, LiveRecord, RecordedEvent, SessionEnd, SessionRecord,
};
pub use script::{AudioSource, Reply, Script, ToolCall};

use state::{Shared, lock};

/// The simulator.
#[derive(Debug)]
pub struct OpenAiSim;

impl OpenAiSim {
    /// Binds `config.addr` and serves on the current tokio runtime until
    /// [`SimHandle::shutdown`] (or the handle is dropped).
    pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
        schema::warm_up();
        static LIVE_WARM: std::sync::Once = std::sync::Once::new();
        LIVE_WARM.call_once(|| {
            std::thread::spawn(live::schema::warm_up);
        });
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(SimHandle { addr, shared, task: std::sync::Mutex::new(Some(task)) })
    }
}

/// A running simulator: its address, its records, run-time controls.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (REST base; `/v1/realtime/client_secrets` is under it).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT` (for clients that append `/v1/realtime?model=…` themselves).
    pub fn ws_base_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime-2.1`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/realtime?model=gpt-realtime-2.1", self.addr)
    }

    /// `ws://127.0.0.1:PORT/v1/live/sessions` (GPT-Live; no query string, the model goes in
    /// `session.start`).
    pub fn live_url(&self) -> String {
        format!("ws://{}/v1/live/sessions", self.addr)
    }

    /// The API key sessions must present.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Snapshot of every session accepted so far, in order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        let list: Vec<_> = lock(&self.shared.sessions).clone();
        list.iter().map(|r| lock(r).clone()).collect()
    }

    /// Snapshot of session `index` (0-based, in order of acceptance).
    pub fn session(&self, index: usize) -> Option<SessionRecord> {
        let rec = lock(&self.shared.sessions).get(index).cloned();
        rec.map(|r| lock(&r).clone())
    }

    /// Every WebSocket handshake attempt, accepted or refused.
    pub fn handshakes(&self) -> Vec<HandshakeRecord> {
        lock(&self.shared.handshakes).clone()
    }

    /// Every `POST /v1/realtime/client_secrets`.
    pub fn client_secret_requests(&self) -> Vec<ClientSecretRequest> {
        lock(&self.shared.secret_requests).clone()
    }

    /// Server events that failed the server schema, across sessions (`"sess_…: …"`).
    pub fn schema_violations(&self) -> Vec<String> {
        self.sessions()
            .into_iter()
            .flat_map(|s| s.schema_violations.into_iter().map(move |v| format!("{}: {v}", s.id)))
            .collect()
    }

    /// Sessions currently open.
    pub fn active_sessions(&self) -> usize {
        self.shared.active_sessions.load(Ordering::SeqCst)
    }

    /// Replaces the faults (counters of `times` restart). Timed faults apply to sessions
    /// accepted afterwards.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared.set_faults(faults);
    }

    /// Changes the configuration for sessions accepted afterwards (`addr` and `api_key` are
    /// fixed at spawn; use [`SimHandle::set_faults`] for faults so their counters restart).
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        let mut live = lock(&self.shared.live);
        let faults = live.config.faults.clone();
        f(&mut live.config);
        live.config.faults = faults;
    }

    /// Waits until `pred` holds, re-checking whenever the simulator records something. No
    /// sleeping: the check runs on every change.
    pub async fn wait_until(&self, mut pred: impl FnMut(&SimHandle) -> bool) {
        let mut rx = self.shared.changes.subscribe();
        loop {
            rx.borrow_and_update();
            if pred(self) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops accepting, closes open sessions (1001, without waiting for the clients' replies)
    /// and waits for them to end. The records stay readable.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.wait_until(|h| h.active_sessions() == 0).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
