//! The WebSocket side of a GPT-Live session: reads client frames into the [`LiveSession`],
//! sends what it queues (each event checked against the Live server schema), runs its timers
//! and the timed faults, and writes the session record. One task per session, one `select!`
//! loop, client frames first, like the Realtime driver (`crate::ws`).
//!
//! Endings: `session.close` → `session.closed` `close_requested`, close 1000; the session cap →
//! `session.closed` `expired`, close 1001; the client's socket going (close frame without
//! `session.close`, or no close frame at all), a `DropAfter` or `CloseAfter` fault, or the
//! simulator shutting down → recorded as `connection_lost` (nothing more can be said).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::schema::validate_live_server_event;
use super::session::{LiveOut, LiveSession};
use crate::faults::{FaultTimes, SessionFaults, StallMode};
use crate::record::{LiveRecord, RecordedEvent, SessionEnd, SessionRecord};
use crate::state::{Shared, lock, shutdown_signalled};
use crate::wire::to_wire;
use crate::ws::{Batch, close_and_drain, drain, park, send_close};

/// What a Live session's driver needs besides the socket and the session.
pub(crate) struct LiveCtx {
    pub shared: Arc<Shared>,
    pub record: Arc<Mutex<SessionRecord>>,
    pub faults: SessionFaults,
    pub cap: Duration,
    pub record_events: bool,
    pub check_outgoing: bool,
}

/// A `session.output_audio.delta` as the service writes it: type and delta, nothing else.
fn audio_delta(b64: &str) -> String {
    let mut s = String::with_capacity(48 + b64.len());
    s.push_str(r#"{"type":"session.output_audio.delta","delta":""#);
    s.push_str(b64);
    s.push_str(r#""}"#);
    s
}

struct Driver<S> {
    ws: WebSocketStream<S>,
    session: LiveSession,
    ctx: LiveCtx,
    accepted: Instant,
    stalled: bool,
    batch: Batch,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Turns one queued output into wire text, checking and recording it.
    fn render(&mut self, out: LiveOut) -> String {
        let (kind, text, value) = match out {
            LiveOut::Event(mut v) => {
                v["event_id"] = Value::String(self.session.ids.next("event"));
                let kind = v["type"].as_str().unwrap_or("?").to_owned();
                let text = to_wire(&v);
                (kind, text, Some(v))
            }
            LiveOut::Audio(bytes) => {
                self.batch.deltas += 1;
                ("session.output_audio.delta".to_owned(), audio_delta(&B64.encode(bytes)), None)
            }
        };
        if self.ctx.check_outgoing {
            let v = value.unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::Null));
            if let Err(e) = validate_live_server_event(&v) {
                tracing::error!(kind, error = %e, "simulator sent an event outside the Live server schema");
                self.batch.violations.push(format!("{kind}: {e}"));
            }
        }
        if self.ctx.record_events {
            let at = self.accepted.elapsed();
            self.batch.sent.push(RecordedEvent { at, kind, text: Arc::from(text.as_str()) });
        }
        text
    }

    /// Sends everything the session queued; `Err` ends the session.
    async fn flush(&mut self) -> Result<(), SessionEnd> {
        let outs: Vec<LiveOut> = std::mem::take(&mut self.session.out);
        if outs.is_empty() {
            return Ok(());
        }
        if self.stalled {
            self.batch.withheld += outs.len() as u64;
            return Ok(());
        }
        for out in outs {
            let text = self.render(out);
            if let Err(e) = self.ws.feed(Message::text(text)).await {
                return Err(SessionEnd::ClientGone(e.to_string()));
            }
        }
        self.ws.flush().await.map_err(|e| SessionEnd::ClientGone(e.to_string()))
    }

    fn write_record(&mut self, end: Option<SessionEnd>) {
        let s = &self.session;
        {
            let mut r = lock(&self.ctx.record);
            if s.started() || r.model.is_empty() {
                r.model = s.model().to_owned();
            }
            let live = r.live.get_or_insert_with(LiveRecord::default);
            live.started |= s.started();
            live.closed_reason.clone_from(&s.closed_reason);
            live.usage_seconds = s.usage_seconds;
            live.client_schema_violations.clone_from(&s.client_violations);
        }
        let counts = (s.appends, s.appended_bytes);
        self.batch.write_counts(&self.ctx.shared, &self.ctx.record, counts, self.stalled, end);
    }

    fn on_message(&mut self, msg: Message) -> Result<(), SessionEnd> {
        let at = self.accepted.elapsed();
        let (kind, text) = match msg {
            Message::Text(t) => (self.session.on_text(t.as_str(), Instant::now()), Arc::from(t.as_str())),
            Message::Binary(b) => {
                self.session.on_binary();
                ("?".to_owned(), Arc::from(format!("<binary frame, {} bytes>", b.len()).as_str()))
            }
            Message::Close(f) => return Err(SessionEnd::ClientClosed(f.map(|f| u16::from(f.code)))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
        };
        if self.ctx.record_events {
            self.batch.received.push(RecordedEvent { at, kind, text });
        }
        Ok(())
    }

    async fn run(mut self) {
        let mut shutdown = self.ctx.shared.shutdown.subscribe();
        let FaultTimes { cap: cap_at, close: close_at, drop: drop_at, stall: stall_at, error: mut error_at } =
            self.ctx.faults.times(self.accepted, self.ctx.cap);
        let mut frozen = false;
        let end = loop {
            if let Err(end) = self.flush().await {
                break end;
            }
            self.write_record(None);
            if let Some((code, reason)) = self.session.close_with.take() {
                if self.stalled {
                    // Withheld like the session.closed before it.
                    break park(&mut self.ws, &mut shutdown).await;
                }
                close_and_drain(&mut self.ws, code, reason).await;
                break SessionEnd::ServerClosed { code, reason: reason.to_owned() };
            }
            if frozen {
                shutdown_signalled(&mut shutdown).await;
                break SessionEnd::Shutdown;
            }
            let mut deadline = cap_at;
            for d in [self.session.next_due(), close_at.map(|c| c.0), drop_at, error_at]
                .into_iter()
                .flatten()
                .chain(stall_at.filter(|_| !self.stalled).map(|s| s.0))
            {
                deadline = deadline.min(d);
            }
            tokio::select! {
                biased;
                () = shutdown_signalled(&mut shutdown) => {
                    send_close(&mut self.ws, 1001, "going away").await;
                    break SessionEnd::Shutdown;
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(m)) => if let Err(end) = self.on_message(m) {
                        drain(&mut self.ws).await;
                        break end;
                    },
                    Some(Err(e)) => break SessionEnd::ClientGone(e.to_string()),
                    None => break SessionEnd::ClientGone("connection closed without a close frame".into()),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if drop_at.is_some_and(|d| d <= now) {
                        break SessionEnd::Dropped;
                    } else if let Some((_, code)) = close_at.filter(|c| c.0 <= now && !self.stalled) {
                        close_and_drain(&mut self.ws, code, "").await;
                        break SessionEnd::ServerClosed { code, reason: String::new() };
                    } else if cap_at <= now && !self.stalled {
                        self.session.expire(now);
                    } else if let Some((_, mode)) = stall_at.filter(|s| s.0 <= now && !self.stalled) {
                        self.stalled = true;
                        frozen = mode == StallMode::Frozen;
                    } else if error_at.is_some_and(|e| e <= now) {
                        error_at = None;
                        self.session.server_error();
                    } else if self.stalled && (cap_at <= now || close_at.is_some_and(|c| c.0 <= now)) {
                        // Withheld like everything else: read until the client leaves.
                        break park(&mut self.ws, &mut shutdown).await;
                    } else {
                        self.session.on_timer(now);
                    }
                }
            }
        };
        self.session.lost(Instant::now());
        self.write_record(Some(end));
    }
}

/// Runs a Live session on an accepted WebSocket until it ends.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    session: LiveSession,
    ctx: LiveCtx,
) {
    let shared = ctx.shared.clone();
    shared.session_started();
    let driver =
        Driver { ws, session, ctx, accepted: Instant::now(), stalled: false, batch: Batch::default() };
    driver.run().await;
    shared.session_finished();
}
