//! The io_uring shell: each worker's calls relayed by one engine thread around one ring
//! ([`engine`]), with one `io_uring_enter` per loop turn for every call's sends and receives.
//!
//! # Who does what
//! A worker is two threads. Its tokio thread does everything that is not the frame path, with
//! the same code as the epoll shell: accept, the TLS handshake, the upgrade head and its checks,
//! the token's redemption, the 101 (`conn.rs`); the OpenAI connect and TLS handshake
//! (`upstream.rs`); tool and hang-up requests and event batches to the control plane
//! (`driver.rs`). Its engine thread relays: once a call is upgraded the Twilio socket leaves
//! tokio ([`crate::io::stream::Stream::into_parts`], TLS session included) and is handed over
//! with the [`crate::core::call::Call`] ([`Command::Call`]); OpenAI sockets follow the same way
//! when connected. Work the call asks for goes back as a [`Request`]; its result comes as a
//! [`Command`].
//!
//! # Why not tokio-uring
//! Unmaintained, and it drops in-flight operations without cancelling them (a read abandoned
//! by `select!` still consumes the peer's next bytes; `shared/rust-notes.md`). This engine is
//! the `io-uring` crate driven directly: nothing is ever abandoned — an operation ends by its
//! completion, and a socket is retired with `shutdown`, which completes what is pending.
//!
//! # Files
//! [`engine`]: the loop, calls and sockets; [`leg`]: one socket, its buffers and TLS;
//! [`timers`]: deadlines; [`token`]: what a completion is about.

mod engine;
mod leg;
mod timers;
mod token;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::control::ControlPlane;
use super::driver::{self, Driver, ToolDone};
use super::server::Shared;
use super::stream::Parts;
use super::upstream;
use crate::core::buf::RecvBuf;
use crate::core::call::{AmdOutcome, Call};
use crate::metrics::Metrics;

/// A call's place in its engine: slot index and generation.
pub(crate) type SlotKey = (u32, u32);

/// An upgraded call handed to the engine.
pub(crate) struct NewCall {
    /// The call, as `Call::new` made it.
    pub(crate) call: Call,
    /// Its bookkeeping (built on the tokio thread: it owns the event poster's sender).
    pub(crate) driver: Driver,
    /// The Twilio socket.
    pub(crate) down: Parts,
    /// Bytes already read after the upgrade head.
    pub(crate) down_buf: RecvBuf,
    /// The call's span (`call_id`, `lead_id`, then `stream_sid`, `call_sid`).
    pub(crate) span: tracing::Span,
    /// The control plane's call id.
    pub(crate) call_id: String,
    /// Fired when the call is over and its sockets retired.
    pub(crate) done: oneshot::Sender<()>,
}

/// What the worker's tokio thread tells its engine.
pub(crate) enum Command {
    /// A new call.
    Call(Box<NewCall>),
    /// The answer to [`Request::Connect`].
    Connected {
        /// The call.
        slot: SlotKey,
        /// Which request this answers.
        seq: u32,
        /// The socket, or why not.
        result: io::Result<Parts>,
    },
    /// A tool's result.
    Tool {
        /// The call.
        slot: SlotKey,
        /// The outcome.
        done: ToolDone,
    },
    /// The answer to [`Request::AskAmd`].
    Amd {
        /// The call.
        slot: SlotKey,
        /// Who answered the phone, as far as the control plane knows.
        outcome: AmdOutcome,
    },
    /// The drain deadline passed: every call shuts down.
    Force,
    /// The worker is done: the engine ends once its calls have.
    Stop,
}

/// What an engine asks its worker's tokio thread to do.
pub(crate) enum Request {
    /// Open a connection to OpenAI (resolve, TCP, TLS) and hand it over.
    Connect {
        /// The call.
        slot: SlotKey,
        /// Echoed in [`Command::Connected`].
        seq: u32,
        /// The call's span.
        span: tracing::Span,
    },
    /// Ask the control plane about answering-machine detection.
    AskAmd {
        /// The call.
        slot: SlotKey,
        /// The control plane's call id.
        call_id: String,
        /// How long the control plane may hold the question.
        wait_ms: u32,
        /// The call's span.
        span: tracing::Span,
    },
    /// Run a tool at the control plane.
    Tool {
        /// The call.
        slot: SlotKey,
        /// The control plane's call id.
        call_id: String,
        /// The model's function call id.
        tool_call_id: String,
        /// The tool.
        name: String,
        /// Its JSON arguments.
        arguments: String,
        /// The call's span.
        span: tracing::Span,
    },
    /// Ask the control plane to hang up.
    HangUp {
        /// The control plane's call id.
        call_id: String,
        /// How many hang-ups this call asked for, this one included.
        hangups: u32,
        /// The model's `end_call` id, if any.
        tool_call_id: Option<String>,
        /// Its arguments, if any.
        arguments: Option<String>,
        /// The call's span.
        span: tracing::Span,
    },
}

/// The tokio side's handle on one engine.
pub(crate) struct Handle {
    commands: std::sync::mpsc::Sender<Command>,
    wake: OwnedFd,
}

/// Whether io_uring can be used here, and why not: builds a ring as the engine would.
pub(crate) fn probe() -> io::Result<()> {
    engine::build_ring().map(drop)
}

impl Handle {
    /// Starts worker `index`'s engine thread (its requests arrive on `requests`); join the
    /// thread after [`Command::Stop`].
    pub(crate) fn start(
        index: usize,
        metrics: Arc<Metrics>,
        requests: mpsc::UnboundedSender<Request>,
    ) -> io::Result<(Handle, JoinHandle<()>)> {
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        let (commands, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let wake_fd = wake.try_clone()?;
        let thread = std::thread::Builder::new().name(format!("gw-uring-{index}")).spawn(move || {
            // Built on its own thread: with SINGLE_ISSUER only this thread may submit.
            match engine::build_ring() {
                Ok(ring) => {
                    let _ = ready_tx.send(Ok(()));
                    engine::Engine::new(ring, rx, wake_fd, requests, metrics).run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the engine thread ended before its ring was built"))??;
        Ok((Handle { commands, wake }, thread))
    }

    /// Hands `command` to the engine and wakes it.
    pub(crate) fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
    }
}

/// Serves one engine's requests on the worker's tokio thread, until the engine is gone.
pub(crate) async fn serve_requests(
    shared: Arc<Shared>,
    control: ControlPlane,
    handle: Arc<Handle>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    while let Some(request) = requests.recv().await {
        match request {
            Request::Connect { slot, seq, span } => {
                let (shared, handle) = (shared.clone(), handle.clone());
                tokio::spawn(
                    async move {
                        let result = upstream::connect(&shared.config.openai_ws, &shared.connector)
                            .await
                            .and_then(super::stream::Stream::into_parts);
                        handle.send(Command::Connected { slot, seq, result });
                    }
                    .instrument(span),
                );
            }
            Request::Tool { slot, call_id, tool_call_id, name, arguments, span } => {
                let (control, metrics, handle) = (control.clone(), shared.metrics.clone(), handle.clone());
                tokio::spawn(
                    async move {
                        let done =
                            driver::run_tool(control, metrics, call_id, tool_call_id, name, arguments).await;
                        handle.send(Command::Tool { slot, done });
                    }
                    .instrument(span),
                );
            }
            Request::AskAmd { slot, call_id, wait_ms, span } => {
                let (control, metrics, handle) = (control.clone(), shared.metrics.clone(), handle.clone());
                tokio::spawn(
                    async move {
                        let outcome = driver::ask_amd(control, metrics, call_id, wait_ms).await;
                        handle.send(Command::Amd { slot, outcome });
                    }
                    .instrument(span),
                );
            }
            Request::HangUp { call_id, hangups, tool_call_id, arguments, span } => {
                let (control, metrics) = (control.clone(), shared.metrics.clone());
                tokio::spawn(
                    driver::hang_up(control, metrics, call_id, hangups, tool_call_id, arguments)
                        .instrument(span),
                );
            }
        }
    }
}
