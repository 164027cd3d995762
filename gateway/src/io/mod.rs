//! The shell: sockets, TLS, clocks and threads around the sans-IO [`crate::core`].
//!
//! # Shape (tokio, epoll, thread-per-core)
//! - [`Gateway::start`] spawns `GATEWAY_WORKERS` threads, each running its own current-thread
//!   tokio runtime with its own `SO_REUSEPORT` listener on `GATEWAY_LISTEN_ADDR` (`listener.rs`):
//!   the kernel spreads connections across them and a call never leaves the thread that
//!   accepted it. One more thread serves `/healthz`, `/readyz`, `/metrics` (`ops.rs`).
//! - Per connection (`conn.rs`): optional TLS (`tls.rs`, rustls with the ring provider), the
//!   upgrade head read into a [`crate::core::buf::RecvBuf`] under a size limit and a timeout,
//!   `parse_request` + `UpgradeAuthorizer::authorize`, the stream token redeemed at the control
//!   plane (`control.rs`, HMAC-signed) — any failure is a precise HTTP refusal and no upstream
//!   is ever opened for it — then the 101 and the call.
//! - Per call (`call_task.rs`): one task owns the [`crate::core::call::Call`], both sockets'
//!   halves and their receive buffers; a `select!` reads, writes (honouring
//!   `Handled::SendBufferFull`), sleeps until `poll_timeout`, collects tool results, batches
//!   call events to the control plane every second and at the end, and obeys the drain.
//!   OpenAI connections are opened by a spawned task (`upstream.rs`), so caller audio keeps
//!   flowing into the hold ring meanwhile.
//! - SIGTERM / Ctrl-C ([`Gateway::drain`]): listeners close at once (`/readyz` goes 503),
//!   calls may finish for `GATEWAY_DRAIN_SECS`, then each remaining call gets
//!   `Call::shutdown` (close 1001 to both sides) and its events are flushed.
//!
//! # Ready for an io_uring shell
//! Everything protocol-shaped is in the core; this shell only moves bytes between sockets and
//! `RecvBuf`s / `poll_transmit` and turns events into requests, so a tokio-uring shell can
//! reuse `conn.rs`'s decisions and `control.rs` as they are. One trap to design for:
//! **tokio-uring does not cancel an in-flight operation whose future is dropped** — a read
//! abandoned by `select!`/`timeout` still completes later and eats the peer's next bytes (see
//! `shared/rust-notes.md`). This epoll shell relies on tokio's reads and writes being
//! cancel-safe (it `select!`s over them); the io_uring shell must instead keep one reader task
//! per socket that is never dropped (ended with `shutdown()`), and deliver bytes, timers and
//! write completions to the call task by message.

mod call_task;
mod conn;
mod control;
mod driver;
mod listener;
mod ops;
mod server;
mod stream;
mod tls;
mod upstream;
mod uring;

pub use server::{Gateway, StartError};

/// A socket the shell reads and writes: plain TCP or TLS over it.
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`] (one allocation per connection).
pub(crate) type BoxIo = Box<dyn Io>;
