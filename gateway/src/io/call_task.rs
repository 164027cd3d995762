//! One call's task: owns the [`Call`], the Twilio socket (split in halves), the OpenAI socket
//! when there is one, both receive buffers, and runs the core's loop (see the `call` module
//! docs) with tokio: one `select!` over reads, writes, the core's timer, connect and tool
//! completions, the event tick and the drain signal. Every branch is cancel-safe: a read or
//! write that loses the race has transferred nothing, flushes are idempotent.
//!
//! Backpressure: when `handle_*` answers [`Handled::SendBufferFull`] the bytes stay in the
//! receive buffer and that socket is not read again until the other side's writes made room.
//!
//! Events for the control plane are batched: sent every second and at the end, in order, by a
//! poster task with a growing `seq` (the control plane stores each `seq` once).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::internal_api::{CallEvent, CallEventsBatch, ToolRequest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::BoxIo;
use super::conn::DOWN_RECV;
use super::control::ControlPlane;
use super::server::Worker;
use super::upstream;
use crate::core::buf::RecvBuf;
use crate::core::call::{Call, CloseReason, Event, Handled, Peer};
use crate::core::ws::Limits;
use crate::core::ws::encoder::MAX_HEADER_LEN;
use crate::metrics::{Metrics, Reported};

/// OpenAI → gateway receive buffer: must hold the largest frame OpenAI sends (audio deltas of
/// a second or two, `session.updated` echoing the instructions, `response.done`).
pub(crate) const UP_RECV: usize = 128 * 1024;
/// How often events are sent to the control plane while the call runs.
const EVENT_TICK: Duration = Duration::from_secs(1);
/// After the end: longest wait to write the close frames.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// After our close frame: longest wait for Twilio's.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// After the end: longest wait for the last event batches to be delivered.
const EVENTS_DRAIN: Duration = Duration::from_secs(20);
/// A masked, empty close frame: what the shell feeds the core when Twilio's socket ends
/// without one, so the call closes as `twilio_closed` (the core has no "socket gone" input
/// for the downstream side).
const SYNTHETIC_CLOSE: [u8; 6] = [0x88, 0x80, 0, 0, 0, 0];

/// A tool call's outcome, back from its task.
struct ToolDone {
    call_id: String,
    ok: bool,
    output: String,
}

/// What woke the loop.
enum Step {
    Force,
    DownWrote(io::Result<Wrote>),
    UpWrote(io::Result<Wrote>),
    DownRead(io::Result<usize>),
    UpRead(io::Result<usize>),
    Connected(io::Result<BoxIo>),
    Tool(ToolDone),
    Timer,
    Tick,
}

enum Wrote {
    Bytes(usize),
    Flushed,
}

/// Keeps `active_calls` right whatever way the task ends.
struct Active(Arc<Metrics>);

impl Active {
    fn new(m: &Arc<Metrics>) -> Self {
        m.active_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(m.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs the call to its end, in a span carrying its ids (never the phone number or secrets).
pub(crate) async fn run(
    worker: Arc<Worker>,
    call: Call,
    io: BoxIo,
    down_buf: RecvBuf,
    call_id: String,
    lead_id: String,
) {
    let span = tracing::info_span!(
        "call",
        %call_id,
        %lead_id,
        call_sid = tracing::field::Empty,
        stream_sid = tracing::field::Empty
    );
    drive(worker, call, io, down_buf, call_id).instrument(span).await;
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
    let (tool_tx, mut tool_rx) = mpsc::unbounded_channel::<ToolDone>();
    let mut events = Batcher::new(worker.control.clone(), call_id.clone(), metrics.clone());
    let mut force = worker.force.clone();
    let mut forced = false;
    let mut tick = tokio::time::interval(EVENT_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = Reported::default();
    let mut stream_sid_known = false;
    let mut hangups = 0u32;

    let reason: CloseReason = loop {
        let now = Instant::now();
        // Bytes already received (again after a flush if the core stopped for room).
        let down_blocked =
            !down_buf.is_empty() && call.handle_downstream(&mut down_buf, now) == Handled::SendBufferFull;
        let mut up_blocked = up_r.is_some()
            && !up_buf.is_empty()
            && call.handle_upstream(&mut up_buf, now) == Handled::SendBufferFull;

        let mut closed = None;
        while let Some(event) = call.poll_event() {
            match event {
                Event::OpenUpstream => {
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
                        let _ = tx.send(upstream::connect(&s.config.realtime, &s.connector).await);
                    });
                    connecting = Some(rx);
                }
                Event::ToolCall { call_id: tool_call_id, name, arguments } => {
                    Metrics::inc(&metrics.tool_calls);
                    tracing::info!(tool = %name, %tool_call_id, "tool call");
                    let (control, cid, tx, m) =
                        (worker.control.clone(), call_id.clone(), tool_tx.clone(), metrics.clone());
                    tokio::spawn(
                        async move {
                            let req = ToolRequest { tool_call_id: tool_call_id.clone(), arguments };
                            let done = match control.tool(&cid, &name, &req).await {
                                Ok(r) => ToolDone { call_id: tool_call_id, ok: r.ok, output: r.output },
                                Err(e) => {
                                    Metrics::inc(&m.tool_failures);
                                    tracing::warn!(tool = %name, error = %e, "tool failed");
                                    let output = serde_json::json!({"error": "tool_unavailable", "message": "the tool could not be run"});
                                    ToolDone { call_id: tool_call_id, ok: false, output: output.to_string() }
                                }
                            };
                            let _ = tx.send(done);
                        }
                        .in_current_span(),
                    );
                }
                Event::HangUp { tool_call_id, arguments } => {
                    hangups += 1;
                    let tool_call_id = tool_call_id.unwrap_or_else(|| format!("gateway-hangup-{hangups}"));
                    let arguments = arguments.unwrap_or_else(|| "{}".to_owned());
                    tracing::info!(%tool_call_id, "hanging up through the control plane (end_call)");
                    let (control, cid, m) = (worker.control.clone(), call_id.clone(), metrics.clone());
                    tokio::spawn(
                        async move {
                            let req = ToolRequest { tool_call_id, arguments };
                            match control.tool(&cid, crate::core::call::END_CALL, &req).await {
                                Ok(r) if r.ok => {}
                                Ok(r) => tracing::warn!(output = %r.output, "end_call refused; the call ends on its drain timer"),
                                Err(e) => {
                                    Metrics::inc(&m.tool_failures);
                                    tracing::warn!(error = %e, "end_call failed; the call ends on its drain timer");
                                }
                            }
                        }
                        .in_current_span(),
                    );
                }
                Event::Report(e) => events.push(e),
                Event::OpenAiError { code, message } => {
                    tracing::warn!(code = code.as_deref().unwrap_or(""), %message, "OpenAI error event");
                }
                Event::ForeignStream { stream_sid } => {
                    tracing::warn!(
                        foreign_stream_sid = %stream_sid,
                        "Twilio event for another stream ignored (counted in twilio_foreign_stream; logged once per call)"
                    );
                }
                Event::Closed { reason } => closed = Some(reason),
            }
        }
        if !stream_sid_known && let Some(sid) = call.stream_sid() {
            stream_sid_known = true;
            let span = tracing::Span::current();
            span.record("stream_sid", sid);
            if let Some(call_sid) = call.call_sid() {
                span.record("call_sid", call_sid);
            }
            tracing::info!("stream started");
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
                        tracing::warn!(error = %e, openai = %shared.config.realtime.url(), "OpenAI connect failed");
                        call.upstream_closed(now);
                    }
                }
            }
            Step::Tool(t) => call.tool_result(&t.call_id, t.ok, &t.output, now),
            Step::Timer => call.handle_timeout(now),
            Step::Tick => {
                events.flush();
                let before = reported.ignored();
                metrics.add_call_stats(&mut reported, call.stats(), call.hold_dropped().bytes);
                // At most one line a second per call, and only at debug.
                if tracing::enabled!(tracing::Level::DEBUG) && reported.ignored() != before {
                    let new: Vec<String> = reported
                        .ignored()
                        .iter()
                        .filter_map(|&(peer, kind, n)| {
                            let old =
                                before.iter().find(|(p, k, _)| (*p, *k) == (peer, kind)).map_or(0, |o| o.2);
                            (n > old).then(|| format!("{peer}/{kind}: {}", n - old))
                        })
                        .collect();
                    tracing::debug!(ignored = ?new, "events ignored in the last second");
                }
            }
        }
    };

    // The end: close frames out, Twilio's close awaited briefly, sockets shut, events delivered.
    metrics.call_ended(reason.code());
    metrics.add_call_stats(&mut reported, call.stats(), call.hold_dropped().bytes);
    let stats = call.stats();
    tracing::info!(
        reason = reason.code(),
        side = ?reason.side(),
        media_forwarded = stats.media_forwarded,
        agent_chunks = stats.agent_chunks_sent,
        barge_ins = stats.barge_ins,
        hold_dropped_bytes = call.hold_dropped().bytes,
        "call ended"
    );
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
    while let Some(event) = call.poll_event() {
        if let Event::Report(e) = event {
            events.push(e);
        }
    }
    events.finish().await;
}

/// Collects [`CallEvent`]s and hands them, in batches, to a poster task that delivers them in
/// order (retrying a failed batch a few times).
struct Batcher {
    pending: Vec<CallEvent>,
    next_seq: u64,
    tx: mpsc::UnboundedSender<CallEventsBatch>,
    task: tokio::task::JoinHandle<()>,
}

impl Batcher {
    fn new(control: ControlPlane, call_id: String, metrics: Arc<Metrics>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<CallEventsBatch>();
        let task = tokio::spawn(
            async move {
                while let Some(batch) = rx.recv().await {
                    let mut attempt = 0u32;
                    loop {
                        match control.events(&call_id, &batch).await {
                            Ok(()) => {
                                Metrics::inc(&metrics.event_batches);
                                break;
                            }
                            Err(e) if attempt < 3 => {
                                attempt += 1;
                                tracing::warn!(error = %e, attempt, seq = batch.seq, "event batch not delivered; retrying");
                                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                            }
                            Err(e) => {
                                Metrics::inc(&metrics.event_batches_failed);
                                tracing::error!(error = %e, seq = batch.seq, events = batch.events.len(), "event batch lost");
                                break;
                            }
                        }
                    }
                }
            }
            .in_current_span(),
        );
        Self { pending: Vec::new(), next_seq: 0, tx, task }
    }

    fn push(&mut self, e: CallEvent) {
        self.pending.push(e);
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pending);
        let seq = self.next_seq;
        self.next_seq += events.len() as u64;
        let _ = self.tx.send(CallEventsBatch { seq, events });
    }

    async fn finish(mut self) {
        self.flush();
        drop(self.tx);
        if tokio::time::timeout(EVENTS_DRAIN, &mut self.task).await.is_err() {
            tracing::error!("call events not delivered in time; giving up");
            self.task.abort();
        }
    }
}
