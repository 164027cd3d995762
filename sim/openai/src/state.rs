//! State shared by the listener, the sessions, the REST endpoint and the handle: the live
//! configuration, fault counters, issued ephemeral keys, the records, and the change signal
//! the handle's waiters listen to.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::faults::{Fault, Refusal};
use crate::record::{ClientSecretRequest, HandshakeRecord, SessionRecord};

/// Locks, shrugging off poisoning (a panicking test thread must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves once shutdown is signalled (the guard `wait_for` returns is dropped here, so the
/// future stays `Send`).
pub(crate) async fn shutdown_signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The simulator's clock: tokio time (virtual under a paused clock) anchored to Unix time at
/// spawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_unix: Duration,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let start_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self { start: Instant::now(), start_unix }
    }

    /// Unix seconds now, on the simulator's clock.
    pub(crate) fn unix_secs(&self) -> u64 {
        (self.start_unix + self.start.elapsed()).as_secs()
    }
}

/// An ephemeral key issued by `client_secrets`.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// Unix seconds after which no session may start with it.
    pub expires_at: u64,
    /// The session configuration it carries.
    pub session: Value,
}

/// Live configuration and fault counters.
#[derive(Debug)]
pub(crate) struct Live {
    pub config: SimConfig,
    used: Vec<u32>,
}

impl Live {
    /// Takes one refusal of the given kind if a fault still has some.
    pub(crate) fn take_refusal(&mut self, handshake: bool) -> Option<Refusal> {
        self.used.resize(self.config.faults.len(), 0);
        for (i, f) in self.config.faults.iter().enumerate() {
            let (refusal, times) = match *f {
                Fault::RefuseHandshake { refusal, times } if handshake => (refusal, times),
                Fault::RefuseClientSecrets { refusal, times } if !handshake => (refusal, times),
                _ => continue,
            };
            if times.is_none_or(|t| self.used[i] < t) {
                self.used[i] += 1;
                return Some(refusal);
            }
        }
        None
    }
}

/// Everything shared.
#[derive(Debug)]
pub(crate) struct Shared {
    pub api_key: String,
    pub clock: Clock,
    pub live: Mutex<Live>,
    pub sessions: Mutex<Vec<Arc<Mutex<SessionRecord>>>>,
    pub handshakes: Mutex<Vec<HandshakeRecord>>,
    pub secret_requests: Mutex<Vec<ClientSecretRequest>>,
    pub issued: Mutex<HashMap<String, Issued>>,
    /// Ephemeral keys that have started a WebRTC call (one call per key).
    pub redeemed: Mutex<HashSet<String>>,
    pub changes: watch::Sender<u64>,
    pub shutdown: watch::Sender<bool>,
    pub active_sessions: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        Self {
            api_key: config.api_key.clone(),
            clock: Clock::new(),
            live: Mutex::new(Live { config, used: Vec::new() }),
            sessions: Mutex::new(Vec::new()),
            handshakes: Mutex::new(Vec::new()),
            secret_requests: Mutex::new(Vec::new()),
            issued: Mutex::new(HashMap::new()),
            redeemed: Mutex::new(HashSet::new()),
            changes: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            active_sessions: AtomicUsize::new(0),
        }
    }

    /// Tells waiters something changed.
    pub(crate) fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Replaces the fault list, resetting its counters.
    pub(crate) fn set_faults(&self, faults: Vec<Fault>) {
        let mut live = lock(&self.live);
        live.config.faults = faults;
        live.used.clear();
    }

    pub(crate) fn session_started(&self) {
        self.active_sessions.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn session_finished(&self) {
        self.active_sessions.fetch_sub(1, Ordering::SeqCst);
        self.bump();
    }
}
