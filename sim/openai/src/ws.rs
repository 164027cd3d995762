//! The WebSocket side of a session: reads client frames into the [`Session`], sends what it
//! queues, runs its timers, applies the timed faults (close, drop, stall, session cap) and
//! writes the session record.
//!
//! The socket endings (`send_close`, `drain`, `close_and_drain`, `park`) and the record batch
//! serve the GPT-Live driver (`live/driver.rs`) too.
//!
//! One task per session, one `select!` loop, client frames first (`biased`): a client event
//! already received is always handled before the next scheduled step of a response, so a
//! cancel lands between chunks even when audio streams back to back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::faults::{FaultTimes, SessionFaults, StallMode};
use crate::record::{RecordedEvent, SessionEnd, SessionRecord};
use crate::schema::validate_server_event;
use crate::session::{Out, Session};
use crate::state::{Shared, lock, shutdown_signalled};
use crate::wire::{echo_delta, to_wire};

/// What a session's driver needs besides the socket and the session.
pub(crate) struct WsCtx {
    pub shared: Arc<Shared>,
    pub record: Arc<Mutex<SessionRecord>>,
    pub faults: SessionFaults,
    pub cap: Duration,
    pub beta: bool,
    pub record_events: bool,
    pub check_outgoing: bool,
}

/// Per-iteration record buffer, written under one lock (both transports).
#[derive(Default)]
pub(crate) struct Batch {
    pub received: Vec<RecordedEvent>,
    pub sent: Vec<RecordedEvent>,
    pub deltas: u64,
    pub withheld: u64,
    pub violations: Vec<String>,
    pub media_in: u64,
    pub media_out: u64,
}

impl Batch {
    /// Moves the batch into the session record (with the session's counters, and its end if
    /// `end` is set) and wakes the handle's waiters.
    pub(crate) fn write(
        &mut self,
        shared: &Shared,
        record: &Mutex<SessionRecord>,
        session: &Session,
        stalled: bool,
        end: Option<SessionEnd>,
    ) {
        self.write_counts(shared, record, (session.appends, session.appended_bytes), stalled, end);
    }

    /// [`Batch::write`] with the session's counters given as (`appends`, `appended_bytes`)
    /// (the GPT-Live front end's).
    pub(crate) fn write_counts(
        &mut self,
        shared: &Shared,
        record: &Mutex<SessionRecord>,
        (appends, appended_bytes): (u64, u64),
        stalled: bool,
        end: Option<SessionEnd>,
    ) {
        let b = std::mem::take(self);
        {
            let mut r = lock(record);
            r.received.extend(b.received);
            r.sent.extend(b.sent);
            r.audio_deltas_sent += b.deltas;
            r.withheld += b.withheld;
            r.stalled = stalled;
            r.schema_violations.extend(b.violations);
            r.media_frames_in += b.media_in;
            r.media_frames_out += b.media_out;
            r.appends = appends;
            r.appended_bytes = appended_bytes;
            if end.is_some() {
                r.ended = end;
            }
        }
        shared.bump();
    }
}

/// Turns one queued output into wire text: assigns the `event_id`, checks the event against
/// the server schema when `check` is set (a violation is logged and kept in `batch`), and
/// records it when `record` is set. Returns the event type and the text.
pub(crate) fn render(
    session: &mut Session,
    out: Out,
    check: bool,
    record: Option<Duration>,
    batch: &mut Batch,
) -> (String, String) {
    let event_id = session.ids.next("event");
    let (kind, text) = match out {
        Out::Event(mut v) => {
            v["event_id"] = Value::String(event_id);
            let kind = v["type"].as_str().unwrap_or("?").to_owned();
            if check && let Err(e) = validate_server_event(&v) {
                tracing::error!(kind, error = %e, "simulator sent an event outside the server schema");
                batch.violations.push(format!("{kind}: {e}"));
            }
            (kind, to_wire(&v))
        }
        Out::Echo(audio) => {
            let (r, i) = session.echo_ids();
            let text = echo_delta(&event_id, r, i, &audio);
            if check {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Err(e) = validate_server_event(&v) {
                    batch.violations.push(format!("response.output_audio.delta: {e}"));
                }
            }
            ("response.output_audio.delta".to_owned(), text)
        }
    };
    if kind == "response.output_audio.delta" {
        batch.deltas += 1;
    }
    if let Some(at) = record {
        batch.sent.push(RecordedEvent { at, kind: kind.clone(), text: Arc::from(text.as_str()) });
    }
    (kind, text)
}

enum Action {
    Continue,
    Park,
    Close(u16, String),
    Drop,
}

struct Driver<S> {
    ws: WebSocketStream<S>,
    session: Session,
    ctx: WsCtx,
    started: Instant,
    stalled: bool,
    batch: Batch,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    fn at(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sends everything the session queued; `Err` ends the session.
    async fn flush(&mut self) -> Result<(), SessionEnd> {
        let outs: Vec<Out> = std::mem::take(&mut self.session.out);
        if outs.is_empty() {
            return Ok(());
        }
        if self.stalled {
            self.batch.withheld += outs.len() as u64;
            return Ok(());
        }
        for out in outs {
            let at = self.ctx.record_events.then(|| self.at());
            let (_, text) = render(&mut self.session, out, self.ctx.check_outgoing, at, &mut self.batch);
            if let Err(e) = self.ws.feed(Message::text(text)).await {
                return Err(SessionEnd::ClientGone(e.to_string()));
            }
        }
        self.ws.flush().await.map_err(|e| SessionEnd::ClientGone(e.to_string()))
    }

    fn write_record(&mut self, end: Option<SessionEnd>) {
        self.batch.write(&self.ctx.shared, &self.ctx.record, &self.session, self.stalled, end);
    }

    /// Closes from our side and waits (bounded) for the client's close.
    async fn close(&mut self, code: u16, reason: &str) {
        close_and_drain(&mut self.ws, code, reason).await;
    }

    /// Writes the first bytes of a text message (a header announcing 200 bytes, then 45 of
    /// them) straight to the socket, for [`crate::Fault::DropMidMessage`].
    async fn write_half_message(&mut self) {
        const START: &[u8] = b"{\"type\":\"response.output_audio.delta\",\"delta\"";
        let mut bytes = vec![0x81, 0x7e, 0x00, 200];
        bytes.extend_from_slice(START);
        let io = self.ws.get_mut();
        let _ = io.write_all(&bytes).await;
        let _ = io.flush().await;
    }

    /// Sends a close frame without waiting for the reply.
    async fn send_close(&mut self, code: u16, reason: &str) {
        send_close(&mut self.ws, code, reason).await;
    }

    fn on_message(&mut self, msg: Message) -> Result<(), SessionEnd> {
        let now = Instant::now();
        match msg {
            Message::Text(t) => {
                let kind = self.session.on_text(t.as_str(), now);
                if self.ctx.record_events {
                    let at = self.at();
                    self.batch.received.push(RecordedEvent { at, kind, text: Arc::from(t.as_str()) });
                }
            }
            Message::Binary(b) => {
                self.session.on_binary();
                if self.ctx.record_events {
                    let at = self.at();
                    let text = Arc::from(format!("<binary frame, {} bytes>", b.len()).as_str());
                    self.batch.received.push(RecordedEvent { at, kind: "?".to_owned(), text });
                }
            }
            Message::Close(f) => return Err(SessionEnd::ClientClosed(f.map(|f| u16::from(f.code)))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    async fn run(mut self) {
        let mut shutdown = self.ctx.shared.shutdown.subscribe();
        let FaultTimes { cap: cap_at, close: close_at, drop: drop_at, stall: stall_at, .. } =
            self.ctx.faults.times(self.started, self.ctx.cap);
        let drop_mid_message = self.ctx.faults.drop_mid_message;
        let mut frozen = false;

        if self.ctx.beta {
            self.session.beta_refused();
            let end = match self.flush().await {
                Ok(()) => {
                    self.close(4000, "beta_api_shape_disabled").await;
                    SessionEnd::ServerClosed { code: 4000, reason: "beta_api_shape_disabled".into() }
                }
                Err(e) => e,
            };
            self.write_record(Some(end));
            return;
        }
        self.session.on_connect();

        let end = loop {
            if let Err(end) = self.flush().await {
                break end;
            }
            self.write_record(None);
            if frozen {
                shutdown_signalled(&mut shutdown).await;
                break SessionEnd::Shutdown;
            }
            let mut deadline = cap_at;
            for d in [self.session.next_due(), close_at.map(|c| c.0), drop_at]
                .into_iter()
                .flatten()
                .chain(stall_at.filter(|_| !self.stalled).map(|s| s.0))
            {
                deadline = deadline.min(d);
            }
            let action = tokio::select! {
                biased;
                () = shutdown_signalled(&mut shutdown) => {
                    // Shutting down: say so, do not wait for the client's reply.
                    self.send_close(1001, "going away").await;
                    break SessionEnd::Shutdown;
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(m)) => match self.on_message(m) {
                        Ok(()) => Action::Continue,
                        Err(end) => {
                            drain(&mut self.ws).await;
                            break end;
                        }
                    },
                    Some(Err(e)) => break SessionEnd::ClientGone(e.to_string()),
                    None => break SessionEnd::ClientGone("connection closed without a close frame".into()),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if drop_at.is_some_and(|d| d <= now) {
                        Action::Drop
                    } else if self.stalled {
                        // Nothing is sent any more; time-driven work stops too.
                        if self.session.next_due().is_some_and(|d| d <= now) {
                            self.session.on_timer(now);
                        }
                        if cap_at <= now || close_at.is_some_and(|c| c.0 <= now) {
                            // Withheld like everything else: keep reading until the client
                            // leaves or the simulator shuts down.
                            Action::Park
                        } else {
                            Action::Continue
                        }
                    } else if let Some((_, code)) = close_at.filter(|c| c.0 <= now) {
                        Action::Close(code, String::new())
                    } else if cap_at <= now {
                        self.session.expire(self.ctx.cap);
                        Action::Close(1001, "session_expired".into())
                    } else if let Some((_, mode)) = stall_at.filter(|s| s.0 <= now) {
                        self.stalled = true;
                        frozen = mode == StallMode::Frozen;
                        Action::Continue
                    } else {
                        self.session.on_timer(now);
                        Action::Continue
                    }
                }
            };
            match action {
                Action::Continue => {}
                Action::Park => break park(&mut self.ws, &mut shutdown).await,
                Action::Drop => {
                    if drop_mid_message {
                        self.write_half_message().await;
                    }
                    break SessionEnd::Dropped;
                }
                Action::Close(code, reason) => {
                    if let Err(end) = self.flush().await {
                        break end;
                    }
                    self.close(code, &reason).await;
                    break SessionEnd::ServerClosed { code, reason };
                }
            }
        };
        self.write_record(Some(end));
    }
}

/// Sends a close frame without waiting for the reply.
pub(crate) async fn send_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame { code: code.into(), reason: reason.into() };
    let _ = ws.close(Some(frame)).await;
}

/// Reads (and drops) what the client still sends, until it leaves or for 5 s at most.
pub(crate) async fn drain<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    let _ =
        tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} })
            .await;
}

/// Closes from the server side and waits (bounded) for the client's close.
pub(crate) async fn close_and_drain<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
) {
    send_close(ws, code, reason).await;
    drain(ws).await;
}

/// A stalled session whose end is withheld too: reads until the client leaves or the
/// simulator shuts down.
pub(crate) async fn park<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> SessionEnd {
    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(shutdown) => return SessionEnd::Shutdown,
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(f))) => return SessionEnd::ClientClosed(f.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(e)) => return SessionEnd::ClientGone(e.to_string()),
                None => return SessionEnd::ClientGone("connection closed without a close frame".into()),
            }
        }
    }
}

/// Runs a session on an accepted WebSocket until it ends.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    session: Session,
    ctx: WsCtx,
) {
    let shared = ctx.shared.clone();
    shared.session_started();
    let driver =
        Driver { ws, session, ctx, started: Instant::now(), stalled: false, batch: Batch::default() };
    driver.run().await;
    shared.session_finished();
}
