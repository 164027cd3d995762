//! The shell: sockets, TLS, clocks and threads around the sans-IO [`crate::core`]. Two of them
//! relay calls, chosen by `GATEWAY_IO` at start: the io_uring shell (`uring/`) and the epoll
//! shell (`call_task.rs`, tokio); everything else is shared.
//!
//! # Shape (thread per core)
//! - [`Gateway::start`] picks the shell (`auto`: io_uring when the kernel allows it, else epoll
//!   with one log line saying why; the choice is in `/metrics` and `/readyz`) and spawns
//!   `GATEWAY_WORKERS` workers, each with its own current-thread tokio runtime and its own
//!   `SO_REUSEPORT` listener on `GATEWAY_LISTEN_ADDR` (`listener.rs`): the kernel spreads
//!   connections across them and a call never leaves its worker. One more thread serves
//!   `/healthz`, `/readyz`, `/metrics` (`ops.rs`) and every 10 s hands the memory freed by
//!   ended calls back to the system (`memory.rs`).
//! - Per connection (`conn.rs`, on the worker's tokio thread whatever the shell): optional TLS
//!   (`tls.rs`, rustls with the ring provider), the upgrade head read into a
//!   [`crate::core::buf::RecvBuf`] under a size limit and a timeout, `parse_request` +
//!   `UpgradeAuthorizer::authorize`, the stream token redeemed at the control plane
//!   (`control.rs`, HMAC-signed) — any failure is a precise HTTP refusal and no upstream is
//!   ever opened for it — then the 101, and the call goes to the shell.
//! - Per call, what is not moving bytes is `driver.rs`: the core's events turned into work
//!   (OpenAI connects, tools, hang-ups), event batches to the control plane every second and at
//!   the end, the counters, the end-of-call line. Both shells use it; neither copies the other.
//! - epoll (`call_task.rs`): one tokio task per call owns the [`crate::core::call::Call`],
//!   both sockets' halves and their receive buffers; a `select!` reads, writes (honouring
//!   `Handled::SendBufferFull`), sleeps until `poll_timeout`, collects tool results and obeys
//!   the drain. Every branch is cancel-safe.
//! - io_uring (`uring/`): a second thread per worker runs one ring for all of the worker's
//!   calls; the sockets (TLS sessions included) leave tokio after the 101 (`stream.rs`) and
//!   every call's sends and receives go to the kernel in one `io_uring_enter` per loop turn.
//!   OpenAI connections are still opened on the tokio thread and handed over. No operation is
//!   ever abandoned (the tokio-uring trap of `shared/rust-notes.md`): each ends by its
//!   completion, and a socket is retired with `shutdown`.
//! - SIGHUP (`reload.rs`, [`Gateway::reload_tls`]): the certificate and key files are read
//!   again; new handshakes present the new certificate, connected calls keep their sessions,
//!   an unusable file leaves the old one in place (logged, `callway_gateway_tls_reloads_total`).
//! - SIGTERM / Ctrl-C ([`Gateway::drain`]): listeners close at once (`/readyz` goes 503),
//!   calls may finish for `GATEWAY_DRAIN_SECS`, then each remaining call gets
//!   `Call::shutdown` (close 1001 to both sides) and its events are flushed.

mod call_task;
mod conn;
mod control;
mod driver;
mod listener;
mod memory;
mod ops;
mod reload;
mod server;
mod stream;
mod tls;
mod upstream;
mod uring;

pub use memory::release_free_memory;
pub use reload::ReloadError;
pub use server::{Gateway, StartError};
pub use tls::CertSummary;

/// A socket the shell reads and writes: plain TCP or TLS over it.
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`] (one allocation per connection).
pub(crate) type BoxIo = Box<dyn Io>;
