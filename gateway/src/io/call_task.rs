//! One call's task: owns the [`Call`], the Twilio socket (split in halves), the OpenAI socket
//! when there is one, both receive buffers, and runs the core's loop (see the `call` module
//! docs) with tokio: one `select!` over reads, writes, the core's timer, connect, tool and
//! answering-machine completions, the event tick and the drain signal. Every branch is cancel-safe: a read or
//! write that loses the race has transferred nothing, flushes are idempotent.
//!
//! Backpressure: when `handle_*` answers [`Handled::SendBufferFull`] the bytes stay in the
//! receive buffer and that socket is not read again until the other side's writes made room.
//!
//! What is not byte moving (events, tools, hang-ups, counters, the end-of-call line) is the
//! shared [`Driver`]'s, so this shell and the io_uring one do not copy each other.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::BoxIo;
use super::conn::DOWN_RECV;
use super::driver::{self, Action, Driver, ToolDone};
use super::server::Worker;
use super::upstream;
use crate::core::buf::RecvBuf;
use crate::core::call::{AmdOutcome, Call, CloseReason, Handled, Peer};
use crate::core::ws::Limits;
use crate::core::ws::encoder::MAX_HEADER_LEN;
use crate::metrics::Metrics;

/// OpenAI → gateway receive buffer: sized for the usual events (audio deltas of 1–3 KiB);
/// a larger one (`session.updated` echoing long instructions, a long `response.done`) grows it
/// for the time it takes (`RecvBuf::fit`, up to OpenAI's 1 MiB per message). Small because under
/// call turnover the allocator hands freed, already-touched memory to new calls: a buffer's
/// whole size ends up resident per call.
pub(crate) const UP_RECV: usize = 8 * 1024;
/// How often events are sent to the control plane while the call runs.
pub(crate) const EVENT_TICK: Duration = Duration::from_secs(1);
/// After the end: longest wait to write the close frames.
pub(crate) const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// After our close frame: longest wait for Twilio's.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A masked, empty close frame: what the shell feeds the core when Twilio's socket ends
/// without one, so the call closes as `twilio_closed` (the core has no "socket gone" input
/// for the downstream side).
pub(crate) const SYNTHETIC_CLOSE: [u8; 6] = [0x88, 0x80, 0, 0, 0, 0];

/// What woke the loop.
enum Step {
    Force,
    DownWrote(io::Result<Wrote>),
    UpWrote(io::Result<Wrote>),
    DownRead(io::Result<usize>),
    UpRead(io::Result<usize>),
    Connected(io::Result<BoxIo>),
    Tool(ToolDone),
    Amd(AmdOutcome),
    Timer,
    Tick,
}

enum Wrote {
    Bytes(usize),
    Flushed,
}

/// Keeps `active_calls` right whatever way the task ends.
pub(crate) struct Active(Arc<Metrics>);

impl Active {
    pub(crate) fn new(m: &Arc<Metrics>) -> Self {
        m.active_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(m.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs the call to its end (in the caller's span, which carries its ids).
pub(crate) async fn run(worker: Arc<Worker>, call: Call, io: BoxIo, down_buf: RecvBuf, call_id: String) {
    drive(worker, call, io, down_buf, call_id).await;
}

async fn write_or_flush(w: Option<&mut WriteHalf<BoxIo>>, data: Option<&[u8]>) -> io::Result<Wrote> {
    let Some(w) = w else { return std::future::pending().await };
    match data {
        Some(d) => match w.write(d).await? {
            0 => Err(io::ErrorKind::WriteZero.into()),
            n => Ok(Wrote::Bytes(n)),
        },
        None => w.flush().await.map(|()| Wrote::Flushed),
    }
}

async fn read_opt(r: Option<&mut ReadHalf<BoxIo>>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn connected_opt(rx: Option<&mut oneshot::Receiver<io::Result<BoxIo>>>) -> io::Result<BoxIo> {
    match rx {
        Some(rx) => rx.await.unwrap_or_else(|_| Err(io::Error::other("connect task vanished"))),
        None => std::future::pending().await,
    }
}

async fn amd_opt(rx: Option<&mut oneshot::Receiver<AmdOutcome>>) -> AmdOutcome {
    match rx {
        Some(rx) => rx.await.unwrap_or(AmdOutcome::Undecided),
        None => std::future::pending().await,
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Writes everything `call` has for `peer` to `w`, then flushes.
async fn flush_all(call: &mut Call, peer: Peer, w: &mut WriteHalf<BoxIo>) -> io::Result<()> {
    while let Some(bytes) = call.poll_transmit(peer) {
        let n = w.write(bytes).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        call.transmitted(peer, n);
    }
    w.flush().await
}

/// Forgets what `call` has for `peer` (its socket is gone).
fn discard(call: &mut Call, peer: Peer) {
    while let Some(bytes) = call.poll_transmit(peer) {
        let n = bytes.len();
        call.transmitted(peer, n);
    }
}

#[allow(clippy::too_many_lines, reason = "one loop, read top to bottom like the core's call order")]
async fn drive(worker: Arc<Worker>, mut call: Call, io: BoxIo, mut down_buf: RecvBuf, call_id: String) {
    let shared = worker.shared.clone();
    let metrics = shared.metrics.clone();
    let _active = Active::new(&metrics);
    tracing::info!("call upgraded; opening OpenAI");

    let (mut down_r, down_w) = tokio::io::split(io);
    let mut down_w = Some(down_w);
    let (mut down_eof, mut down_flush) = (false, false);
    let mut up_r: Option<ReadHalf<BoxIo>> = None;
    let mut up_w: Option<WriteHalf<BoxIo>> = None;
    let mut up_flush = false;
    let mut up_buf = RecvBuf::with_capacity(UP_RECV);
    let mut connecting: Option<oneshot::Receiver<io::Result<BoxIo>>> = None;
    let mut amd: Option<oneshot::Receiver<AmdOutcome>> = None;
    let (tool_tx, mut tool_rx) = mpsc::unbounded_channel::<ToolDone>();
    let (mut driver, poster) = Driver::new(worker.control.clone(), call_id.clone(), metrics.clone());
    let mut force = worker.force.clone();
    let mut forced = false;
    let mut tick = tokio::time::interval(EVENT_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangups = 0u32;

    let reason: CloseReason = loop {
        let now = Instant::now();
        // Bytes already received (again after a flush if the core stopped for room).
        let down_blocked =
            !down_buf.is_empty() && call.handle_downstream(&mut down_buf, now) == Handled::SendBufferFull;
        let mut up_blocked = up_r.is_some()
            && !up_buf.is_empty()
            && call.handle_upstream(&mut up_buf, now) == Handled::SendBufferFull;

        let mut actions = Vec::new();
        let closed = driver.poll_events(&mut call, |a| actions.push(a));
        for action in actions {
            match action {
                Action::OpenUpstream => {
                    // A reconnect: the old connection's close frame goes out (best effort),
                    // then the socket is dropped and its unread bytes forgotten.
                    if let Some(mut w) = up_w.take() {
                        let _ = tokio::time::timeout(
                            Duration::from_millis(500),
                            flush_all(&mut call, Peer::OpenAi, &mut w),
                        )
                        .await;
                        let _ = tokio::time::timeout(Duration::from_millis(200), w.shutdown()).await;
                    }
                    up_r = None;
                    up_flush = false;
                    up_buf.consume(up_buf.len());
                    up_blocked = false;
                    let (tx, rx) = oneshot::channel();
                    let s = shared.clone();
                    tokio::spawn(async move {
                        let r = upstream::connect(&s.config.openai_ws, &s.connector).await;
                        let _ = tx.send(r.map(|stream| -> BoxIo { Box::new(stream) }));
                    });
                    connecting = Some(rx);
                }
                Action::AskAmd { wait_ms } => {
                    let (tx, rx) = oneshot::channel();
                    let (control, m, cid) = (worker.control.clone(), metrics.clone(), call_id.clone());
                    tokio::spawn(
                        async move {
                            let _ = tx.send(driver::ask_amd(control, m, cid, wait_ms).await);
                        }
                        .in_current_span(),
                    );
                    amd = Some(rx);
                }
                Action::Tool { call_id: tool_call_id, name, arguments } => {
                    let (control, m, tx) = (worker.control.clone(), metrics.clone(), tool_tx.clone());
                    let cid = call_id.clone();
                    tokio::spawn(
                        async move {
                            let _ = tx
                                .send(driver::run_tool(control, m, cid, tool_call_id, name, arguments).await);
                        }
                        .in_current_span(),
                    );
                }
                Action::HangUp { tool_call_id, arguments } => {
                    hangups += 1;
                    let (control, m, cid) = (worker.control.clone(), metrics.clone(), call_id.clone());
                    tokio::spawn(
                        driver::hang_up(control, m, cid, hangups, tool_call_id, arguments).in_current_span(),
                    );
                }
            }
        }
        if let Some(reason) = closed {
            break reason;
        }
        if down_w.is_none() {
            discard(&mut call, Peer::Twilio);
        }

        let timer = call.poll_timeout();
        let tw = call.poll_transmit(Peer::Twilio).filter(|_| down_w.is_some());
        let oa = call.poll_transmit(Peer::OpenAi).filter(|_| up_w.is_some());
        let down_write = tw.is_some() || (down_flush && down_w.is_some());
        let up_write = oa.is_some() || (up_flush && up_w.is_some());
        // A frame larger than the buffer: grow it up to what the decoder accepts (Twilio 64 KiB,
        // OpenAI 1 MiB), so the enforced limits are exactly the documented ones; shrink back
        // once it is gone.
        if !down_blocked {
            down_buf.fit(DOWN_RECV, Limits::TWILIO.max_frame + MAX_HEADER_LEN);
        }
        if !up_blocked {
            up_buf.fit(UP_RECV, Limits::OPENAI.max_frame + MAX_HEADER_LEN);
        }
        let down_read = !down_eof && !down_blocked && down_buf.len() < down_buf.capacity();
        let up_read = up_r.is_some() && !up_blocked && up_buf.len() < up_buf.capacity();
        let step = tokio::select! {
            biased;
            _ = force.wait_for(|f| *f), if !forced => Step::Force,
            r = write_or_flush(down_w.as_mut(), tw), if down_write => Step::DownWrote(r),
            r = write_or_flush(up_w.as_mut(), oa), if up_write => Step::UpWrote(r),
            r = down_r.read(down_buf.spare()), if down_read => Step::DownRead(r),
            r = read_opt(up_r.as_mut(), up_buf.spare()), if up_read => Step::UpRead(r),
            r = connected_opt(connecting.as_mut()), if connecting.is_some() => Step::Connected(r),
            Some(t) = tool_rx.recv() => Step::Tool(t),
            o = amd_opt(amd.as_mut()), if amd.is_some() => Step::Amd(o),
            () = sleep_opt(timer), if timer.is_some() => Step::Timer,
            _ = tick.tick() => Step::Tick,
        };

        let now = Instant::now();
        match step {
            Step::Force => {
                forced = true;
                tracing::info!("drain deadline reached: shutting the call down");
                call.shutdown(now);
            }
            Step::DownWrote(Ok(Wrote::Bytes(n))) => {
                call.transmitted(Peer::Twilio, n);
                down_flush = true;
            }
            Step::DownWrote(Ok(Wrote::Flushed)) => down_flush = false,
            Step::DownWrote(Err(e)) => {
                tracing::info!(error = %e, "Twilio socket write failed");
                down_w = None;
                down_eof = true;
                down_buf.consume(down_buf.len());
                down_buf.push(&SYNTHETIC_CLOSE);
            }
            Step::UpWrote(Ok(Wrote::Bytes(n))) => {
                call.transmitted(Peer::OpenAi, n);
                up_flush = true;
            }
            Step::UpWrote(Ok(Wrote::Flushed)) => up_flush = false,
            Step::UpWrote(Err(e)) => {
                tracing::warn!(error = %e, "OpenAI socket write failed");
                (up_r, up_w, up_flush) = (None, None, false);
                up_buf.consume(up_buf.len());
                call.upstream_closed(now);
            }
            Step::DownRead(Ok(n)) if n > 0 => down_buf.filled(n),
            Step::DownRead(r) => {
                if let Err(e) = r {
                    tracing::info!(error = %e, "Twilio socket read failed");
                }
                down_eof = true;
                if !call.peer_closed(Peer::Twilio) {
                    // Ended without a close frame: let the core close as `twilio_closed`.
                    down_buf.consume(down_buf.len());
                    down_buf.push(&SYNTHETIC_CLOSE);
                }
            }
            Step::UpRead(Ok(n)) if n > 0 => up_buf.filled(n),
            Step::UpRead(r) => {
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "OpenAI socket read failed");
                }
                (up_r, up_w, up_flush) = (None, None, false);
                up_buf.consume(up_buf.len());
                call.upstream_closed(now);
            }
            Step::Connected(r) => {
                connecting = None;
                match r {
                    Ok(io) => {
                        let (r, w) = tokio::io::split(io);
                        (up_r, up_w, up_flush) = (Some(r), Some(w), false);
                        call.upstream_connected(now);
                    }
                    Err(e) => {
                        Metrics::inc(&metrics.upstream_connect_failures);
                        tracing::warn!(error = %e, openai = %shared.config.openai_ws.url(), "OpenAI connect failed");
                        call.upstream_closed(now);
                    }
                }
            }
            Step::Tool(t) => call.tool_result(&t.call_id, t.ok, &t.output, now),
            Step::Amd(o) => {
                amd = None;
                call.amd_result(o, now);
            }
            Step::Timer => call.handle_timeout(now),
            Step::Tick => driver.tick(&call),
        }
    };

    // The end: close frames out, Twilio's close awaited briefly, sockets shut, events delivered.
    driver.ended(&call, reason);
    if let Some(w) = up_w.as_mut() {
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush_all(&mut call, Peer::OpenAi, w)).await;
        let _ = tokio::time::timeout(CLOSE_FLUSH, w.shutdown()).await;
    }
    drop((up_r, up_w));
    if let Some(mut w) = down_w {
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush_all(&mut call, Peer::Twilio, &mut w)).await;
        if !down_eof && !call.peer_closed(Peer::Twilio) {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while !call.peer_closed(Peer::Twilio) {
                    match down_r.read(down_buf.spare()).await {
                        Ok(n) if n > 0 => {
                            down_buf.filled(n);
                            let _ = call.handle_downstream(&mut down_buf, Instant::now());
                        }
                        _ => break,
                    }
                }
            })
            .await;
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, w.shutdown()).await;
    }
    driver.close(&mut call);
    poster.finish().await;
}
