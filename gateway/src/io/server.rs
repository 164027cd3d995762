//! Starting and stopping the gateway: the shared state built once (config, authorizer, TLS),
//! one worker thread per listener, the ops thread, the signal thread (`SIGHUP` reloads the
//! TLS certificate, [`Gateway::reload_tls`]), and the drain.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use contract::internal_api::InternalAuth;
use contract::stream_token::StreamTokenVerifier;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::control::ControlPlane;
use super::reload::{self, ReloadError};
use super::tls::{CertSummary, ReloadableCert};
use super::{conn, listener, ops, tls, uring};
use crate::config::{Config, IoShell};
use crate::core::auth::UpgradeAuthorizer;
use crate::core::call::CallConfig;
use crate::metrics::Metrics;

/// Clock skew tolerated on stream-token expiry (seconds).
const TOKEN_LEEWAY_SECS: u64 = 30;

/// What every worker shares (read-only after start).
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) call_config: CallConfig,
    pub(crate) authorizer: UpgradeAuthorizer,
    pub(crate) acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) internal: Arc<InternalAuth>,
    pub(crate) metrics: Arc<Metrics>,
    /// Calls are relayed by io_uring engines (else by the epoll tasks).
    pub(crate) uring: bool,
}

/// One worker thread's view: the shared state, its own control-plane client, its drain signal.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) control: ControlPlane,
    /// Becomes true when the drain deadline has passed: calls still running shut down.
    pub(crate) force: watch::Receiver<bool>,
    /// This worker's io_uring engine, when calls are relayed on io_uring.
    pub(crate) uring: Option<Arc<uring::Handle>>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The TLS files could not be used.
    #[error("{0}")]
    Tls(String),
    /// A secret was refused.
    #[error("{0}")]
    Config(String),
    /// An address could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// `GATEWAY_LISTEN_ADDR` or `GATEWAY_OPS_ADDR`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A thread or runtime could not be created.
    #[error("cannot start a worker: {0}")]
    Runtime(io::Error),
    /// `GATEWAY_IO=uring` and the kernel refuses io_uring.
    #[error(
        "GATEWAY_IO=uring but io_uring cannot be used here ({0}): allow the io_uring_setup, io_uring_enter and io_uring_register system calls (container seccomp profile), set sysctl kernel.io_uring_disabled=0, or run with GATEWAY_IO=auto or epoll"
    )]
    Uring(io::Error),
}

/// A running gateway.
pub struct Gateway {
    local_addr: SocketAddr,
    ops_addr: SocketAddr,
    metrics: Arc<Metrics>,
    draining: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    /// The served certificate, when the gateway terminates TLS.
    cert: Option<Arc<ReloadableCert>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("ops_addr", &self.ops_addr)
            .field("workers", &self.threads.len().saturating_sub(2)) // less the ops and signal threads
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Binds the listeners and the ops port, and starts the worker threads. Returns once every
    /// socket is bound (connections are accepted from then on).
    pub fn start(config: Config) -> Result<Gateway, StartError> {
        // The current secret and, during a rotation, the previous one.
        let secrets: Vec<&[u8]> = std::iter::once(&config.stream_token_secret)
            .chain(&config.stream_token_secret_previous)
            .map(|s| &s[..])
            .collect();
        let verifier = StreamTokenVerifier::new(&secrets, TOKEN_LEEWAY_SECS)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let authorizer =
            UpgradeAuthorizer::new(config.twilio_auth_token.as_bytes(), &config.public_origin(), verifier);
        let cert = match &config.tls {
            Some(files) => Some(Arc::new(ReloadableCert::load(files).map_err(StartError::Tls)?)),
            None => {
                tracing::info!(
                    "GATEWAY_TLS_CERT/GATEWAY_TLS_KEY unset: plain TCP on {} (a proxy in front must terminate TLS for wss://{})",
                    config.listen_addr,
                    config.twilio_stream_domain
                );
                None
            }
        };
        let acceptor = match &cert {
            Some(cert) => Some(tls::acceptor(cert.clone()).map_err(StartError::Tls)?),
            None => None,
        };
        let connector = tls::connector(config.openai_ca_file.as_deref()).map_err(StartError::Tls)?;
        let workers = config.workers.max(1);
        let (local_addr, listeners) = listener::listeners(config.listen_addr, workers).map_err(|source| {
            StartError::Bind { what: "GATEWAY_LISTEN_ADDR", addr: config.listen_addr, source }
        })?;
        let ops_listener = std::net::TcpListener::bind(config.ops_addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartError::Bind { what: "GATEWAY_OPS_ADDR", addr: config.ops_addr, source })?;
        let ops_addr = ops_listener.local_addr().map_err(StartError::Runtime)?;

        let (uring, why) = choose_shell(config.io)?;
        let metrics = Arc::new(Metrics::default());
        if let Some(cert) = &cert {
            metrics.tls_certificate_loaded(&cert.summary().sha256);
        }
        metrics.workers_total.store(workers as u64, Ordering::Relaxed);
        let _ = metrics.io_shell.set(if uring { "uring" } else { "epoll" });
        let _ = metrics.voice_engine.set((config.voice_api.as_str(), config.openai_model.clone()));
        let shared = Arc::new(Shared {
            call_config: config.call_config(),
            internal: Arc::new(InternalAuth::new(&config.internal_api_secret)),
            config,
            authorizer,
            acceptor,
            connector,
            metrics: metrics.clone(),
            uring,
        });
        tracing::info!(
            listen = %local_addr,
            ops = %ops_addr,
            workers,
            tls = shared.acceptor.is_some(),
            tls_cert_sha256 = cert.as_ref().map(|c| c.summary().sha256).unwrap_or_default(),
            openai = %shared.config.openai_ws.url(),
            engine = %shared.config.voice_api,
            model = %shared.config.openai_model,
            control_plane = %shared.config.control_plane_url,
            public_origin = %shared.config.public_origin(),
            io = if uring { "uring" } else { "epoll" },
            "gateway starting (thread per core; calls relayed on {}: {why})",
            if uring { "io_uring" } else { "tokio epoll" }
        );

        let (draining, _) = watch::channel(false);
        let mut threads = Vec::with_capacity(workers + 2);
        // First, so that a failure here leaves no worker running behind the error.
        threads.push(
            reload::on_sighup(cert.clone(), metrics.clone(), draining.subscribe())
                .map_err(StartError::Runtime)?,
        );
        for (i, l) in listeners.into_iter().enumerate() {
            let (shared, rx) = (shared.clone(), draining.subscribe());
            let t = std::thread::Builder::new()
                .name(format!("gw-worker-{i}"))
                .spawn(move || worker_main(i, shared, l, rx))
                .map_err(StartError::Runtime)?;
            threads.push(t);
        }
        let (m, rx) = (metrics.clone(), draining.subscribe());
        let t = std::thread::Builder::new()
            .name("gw-ops".into())
            .spawn(move || ops::run(ops_listener, m, rx))
            .map_err(StartError::Runtime)?;
        threads.push(t);
        Ok(Gateway { local_addr, ops_addr, metrics, draining, threads, cert })
    }

    /// Reads `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY` again (what `SIGHUP` does): new handshakes
    /// present the new certificate, calls already connected carry on with the session they
    /// have. When a file cannot be used the old certificate stays and the error says which
    /// file and what to do. Logged and counted (`callway_gateway_tls_reloads_total`) either way.
    pub fn reload_tls(&self) -> Result<CertSummary, ReloadError> {
        reload::reload(self.cert.as_deref(), &self.metrics)
    }

    /// Where Twilio connects (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts draining: stop accepting (`/readyz` 503), let calls finish for
    /// `GATEWAY_DRAIN_SECS`, then shut the rest down. Returns at once.
    pub fn drain(&self) {
        self.metrics.draining.store(true, Ordering::Relaxed);
        self.draining.send_replace(true);
    }

    /// Waits (blocking) for every worker to finish; call after [`Gateway::drain`].
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Drains and waits, from async code (tests).
    pub async fn shutdown(self) {
        self.drain();
        let _ = tokio::task::spawn_blocking(move || self.join()).await;
    }
}

fn worker_main(
    index: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    draining: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot build the worker's runtime");
            return;
        }
    };
    let engine = rt.block_on(serve(index, shared, listener, draining));
    if let Some(thread) = engine {
        let _ = thread.join();
    }
}

/// Which shell relays calls, and why (for the start-up line).
fn choose_shell(choice: IoShell) -> Result<(bool, String), StartError> {
    match choice {
        IoShell::Epoll => Ok((false, "GATEWAY_IO=epoll".into())),
        IoShell::Uring => {
            uring::probe().map(|()| (true, "GATEWAY_IO=uring".into())).map_err(StartError::Uring)
        }
        IoShell::Auto => match uring::probe() {
            Ok(()) => Ok((true, "GATEWAY_IO=auto and the kernel allows io_uring".into())),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "io_uring refused by the kernel (seccomp or kernel.io_uring_disabled): calls are relayed on epoll; allow io_uring for the leaner shell, or set GATEWAY_IO=epoll to silence this"
                );
                Ok((false, format!("GATEWAY_IO=auto and io_uring is refused ({e})")))
            }
        },
    }
}

/// Serves until drained; returns the io_uring engine's thread to join, if any.
async fn serve(
    index: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    mut draining: watch::Receiver<bool>,
) -> Option<std::thread::JoinHandle<()>> {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot register the listener");
            return None;
        }
    };
    let (force_tx, force) = watch::channel(false);
    let control = ControlPlane::new(&shared.config.control_plane_url, shared.internal.clone());
    let metrics = shared.metrics.clone();
    let drain = shared.config.drain;
    let (uring, engine_thread) = if shared.uring {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        match uring::Handle::start(index, metrics.clone(), tx) {
            Ok((handle, thread)) => {
                let handle = Arc::new(handle);
                tokio::spawn(uring::serve_requests(shared.clone(), control.clone(), handle.clone(), rx));
                (Some(handle), Some(thread))
            }
            Err(e) => {
                tracing::error!(worker = index, error = %e, "cannot start the io_uring engine; this worker does not serve");
                return None;
            }
        }
    } else {
        (None, None)
    };
    let worker = Arc::new(Worker { shared, control, force, uring: uring.clone() });
    metrics.workers_ready.fetch_add(1, Ordering::Relaxed);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(conn::serve(worker.clone(), tcp, peer));
                }
                Err(e) => {
                    // EMFILE and friends: back off a little rather than spin.
                    tracing::warn!(worker = index, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = draining.wait_for(|d| *d) => break,
        }
    }
    drop(listener);
    metrics.workers_ready.fetch_sub(1, Ordering::Relaxed);
    tracing::info!(
        worker = index,
        calls = tasks.len(),
        drain_secs = drain.as_secs(),
        "draining: no longer accepting"
    );
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                tracing::info!(worker = index, calls = tasks.len(), "drain deadline: shutting remaining calls down");
                force_tx.send_replace(true);
                if let Some(engine) = &uring {
                    engine.send(uring::Command::Force);
                }
                break;
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    if let Some(engine) = &uring {
        engine.send(uring::Command::Stop);
    }
    tracing::info!(worker = index, "worker stopped");
    engine_thread
}
