//! One accepted connection up to the 101: TLS, the upgrade head (size limit, timeout), the
//! checks of [`crate::core::auth`], the token's single-use redemption at the control plane.
//! Every failure is answered with a precise HTTP status and closes the connection; no OpenAI
//! connection is ever opened for a request that is refused.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::rand::SecureRandom as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracing::Instrument as _;

use super::call_task;
use super::control::{RedeemError, now_unix};
use super::driver::{Driver, Poster};
use super::server::Worker;
use super::stream::Stream;
use super::uring;
use crate::core::auth::STREAM_PATH_PREFIX;
use crate::core::buf::RecvBuf;
use crate::core::call::Call;
use crate::core::ws::upgrade::{self, Parse};
use crate::metrics::Metrics;

/// The TLS handshake and the upgrade head must both arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Twilio → gateway receive buffer: the upgrade head (at most 8 KiB, `upgrade.rs` refuses more
/// with 431) and then frames of a few hundred bytes (`start` with its parameters a few KiB);
/// a larger frame grows it for the time it takes (`RecvBuf::fit`, up to Twilio's 64 KiB).
pub(crate) const DOWN_RECV: usize = 8 * 1024;

/// Serves one connection to its end.
///
/// The connection's task lives as long as the call, and a future is as large as its largest
/// state, so nothing big is ever held across one of its awaits: the set-up runs in its own
/// heap-allocated future (freed once the call is upgraded: no room kept for the handshake, the
/// redemption's request or a refusal), the upgraded call comes back boxed, and what runs after
/// the 101 is boxed too ([`relay`]). The heap profile in `benches/README.md` found 4.9 KiB per
/// call here when the call's state was a local moved into a future across an await.
pub(crate) async fn serve(worker: Arc<Worker>, tcp: tokio::net::TcpStream, peer: SocketAddr) {
    let Some(up) = Box::pin(set_up(&worker, tcp, peer)).await else { return };
    let relaying = relay(&worker, up);
    relaying.await;
}

/// What relays an upgraded call, boxed: the epoll shell's call task, or (io_uring) the wait
/// for the engine to finish it.
fn relay(worker: &Arc<Worker>, up: Box<Upgraded>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    match &worker.uring {
        None => {
            let Upgraded { call, io, buf, call_id, span } = *up;
            Box::pin(call_task::run(worker.clone(), call, Box::new(io), buf, call_id).instrument(span))
        }
        Some(engine) => match send_to_engine(worker, engine, up) {
            Some(handed) => Box::pin(handed.wait()),
            None => Box::pin(std::future::ready(())),
        },
    }
}

/// A call past its 101.
struct Upgraded {
    call: Call,
    io: Stream,
    buf: RecvBuf,
    call_id: String,
    span: tracing::Span,
}

/// Everything up to the 101; `None` when the connection was refused or closed.
async fn set_up(worker: &Arc<Worker>, tcp: tokio::net::TcpStream, peer: SocketAddr) -> Option<Box<Upgraded>> {
    let _ = tcp.set_nodelay(true);
    let shared = &worker.shared;
    let io = match &shared.acceptor {
        Some(acceptor) => match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Server(tls),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
        },
        None => Stream::Plain(tcp),
    };
    let mut io = io;
    let mut buf = RecvBuf::with_capacity(DOWN_RECV);
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut io, &mut buf)).await;
    match head {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) | Ok(Err(_)) => return None, // closed before a full head: nothing to answer
        Err(_) => {
            tracing::info!(%peer, "upgrade head not received in time");
            refuse(&mut io, &shared.metrics, 408, "request head not received in time").await;
            return None;
        }
    }
    // The head is complete: parse it for good and run the checks.
    let (head_len, key, token, claims) = match upgrade::parse_request(buf.data()) {
        Ok(Parse::Complete(req)) => match shared.authorizer.authorize(&req, now_unix()) {
            Ok(claims) => {
                let token = req.path.strip_prefix(STREAM_PATH_PREFIX).unwrap_or_default();
                let token = token.strip_suffix('/').unwrap_or(token).to_owned();
                (req.head_len, req.key.to_owned(), token, claims)
            }
            Err(e) => {
                tracing::warn!(%peer, status = e.status(), reason = %e, "upgrade refused");
                let (status, msg) = (e.status(), e.to_string());
                refuse(&mut io, &shared.metrics, status, &msg).await;
                return None;
            }
        },
        Ok(Parse::Partial) => return None,
        Err(e) => {
            tracing::info!(%peer, status = e.status(), reason = %e, "malformed upgrade refused");
            refuse(&mut io, &shared.metrics, e.status(), &e.to_string()).await;
            return None;
        }
    };
    let call_id = uuid_string(&claims.call_id);
    let lead_id = uuid_string(&claims.lead_id);
    let context = match worker.control.redeem(&token).await {
        Ok(ctx) => ctx,
        Err(RedeemError::Refused { status, code }) => {
            // What Twilio is told: the token's fate, or — for anything else the control plane
            // says (our own HMAC refused, a bug) — that it cannot be served now.
            let (answer, msg) = match status {
                409 => (409, "stream token already used"),
                404 => (404, "stream token unknown"),
                410 => (410, "stream token expired"),
                403 => (403, "stream token refused"),
                _ => (503, "control plane refused the redemption, try again"),
            };
            if answer == 503 {
                tracing::error!(%peer, %call_id, %lead_id, status, %code, "the control plane refused a token redemption: check INTERNAL_API_SECRET and CONTROL_PLANE_URL on both sides");
            } else {
                tracing::warn!(%peer, %call_id, %lead_id, status, %code, "stream token refused by the control plane");
            }
            refuse(&mut io, &shared.metrics, answer, msg).await;
            return None;
        }
        Err(RedeemError::Unavailable(why)) => {
            tracing::error!(%peer, %call_id, %lead_id, error = %why, "stream token could not be redeemed");
            refuse(&mut io, &shared.metrics, 503, "control plane unavailable, try again").await;
            return None;
        }
    };
    buf.consume(head_len);
    let mut out = [0u8; 256];
    let Ok(n) = upgrade::write_accept(&mut out, &key) else { return None };
    if io.write_all(&out[..n]).await.is_err() || io.flush().await.is_err() {
        return None;
    }
    Metrics::inc(&shared.metrics.upgrades_accepted);
    let mut config = shared.call_config.clone();
    if ring::rand::SystemRandom::new().fill(&mut config.seed).is_err() {
        tracing::error!("the OS random source failed; refusing the call");
        return None;
    }
    let call = Call::new(config, context, Instant::now());
    let span = tracing::info_span!(
        "call",
        %call_id,
        %lead_id,
        call_sid = tracing::field::Empty,
        stream_sid = tracing::field::Empty
    );
    Some(Box::new(Upgraded { call, io, buf, call_id, span }))
}

/// What the connection task keeps while the engine relays the call.
struct Handed {
    _active: call_task::Active,
    poster: Poster,
    finished: tokio::sync::oneshot::Receiver<()>,
}

impl Handed {
    async fn wait(self) {
        let _ = self.finished.await;
        self.poster.finish().await;
    }
}

/// The io_uring shell: the call and its socket go to the worker's engine; the connection's
/// task keeps only [`Handed`] (the call counted, its last events delivered).
fn send_to_engine(worker: &Arc<Worker>, engine: &uring::Handle, up: Box<Upgraded>) -> Option<Handed> {
    let Upgraded { call, io, buf, call_id, span } = *up;
    let down = match io.into_parts() {
        Ok(parts) => parts,
        Err(e) => {
            tracing::error!(parent: &span, error = %e, "cannot hand the socket to the io_uring engine; call dropped");
            return None;
        }
    };
    let metrics = &worker.shared.metrics;
    let active = call_task::Active::new(metrics);
    let (driver, poster) =
        span.in_scope(|| Driver::new(worker.control.clone(), call_id.clone(), metrics.clone()));
    tracing::info!(parent: &span, "call upgraded; opening OpenAI");
    let (done, finished) = tokio::sync::oneshot::channel();
    let new = uring::NewCall { call, driver, down, down_buf: buf, span, call_id, done };
    engine.send(uring::Command::Call(Box::new(new)));
    Some(Handed { _active: active, poster, finished })
}

/// Reads until the upgrade head is complete (`true`) or refused by the parser (`true` too: the
/// caller parses again and refuses), `false` if the peer closed first.
async fn read_head(io: &mut Stream, buf: &mut RecvBuf) -> std::io::Result<bool> {
    loop {
        match upgrade::parse_request(buf.data()) {
            Ok(Parse::Partial) => {}
            Ok(Parse::Complete(_)) | Err(_) => return Ok(true),
        }
        let spare = buf.spare();
        if spare.is_empty() {
            return Ok(true);
        }
        let n = io.read(spare).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.filled(n);
    }
}

async fn refuse(io: &mut Stream, metrics: &Metrics, status: u16, message: &str) {
    metrics.upgrade_refused(status);
    let mut out = [0u8; 1024];
    if let Ok(n) = upgrade::write_refusal(&mut out, status, message) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = io.write_all(&out[..n]).await;
            let _ = io.shutdown().await;
        })
        .await;
    }
}

/// A 16-byte id as a hyphenated UUID string (for logs; the control plane's call id).
fn uuid_string(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    s
}
