//! What both shells do with a call besides moving its bytes: the core's [`Event`]s turned into
//! work for the shell ([`Action`]) and for the control plane (event batches), the span's ids,
//! the shared counters every second, the end-of-call line, and the tool and hang-up requests.
//! The epoll shell (`call_task.rs`) and the io_uring shell (`uring/`) differ only in how bytes,
//! timers and completions reach the [`Call`]; this file is everything they would otherwise copy.

use std::sync::Arc;
use std::time::Duration;

use contract::internal_api::{CallEvent, CallEventsBatch, ToolRequest};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::control::ControlPlane;
use crate::core::call::{AmdOutcome, Call, CloseReason, Event};
use crate::metrics::{Metrics, Reported};

/// After the end: longest wait for the last event batches to be delivered.
const EVENTS_DRAIN: Duration = Duration::from_secs(20);

/// Work the shell must start for the call (each shell has its own way to deliver the result).
#[derive(Debug)]
pub(crate) enum Action {
    /// Open a (new) connection to OpenAI, dropping the current one.
    OpenUpstream,
    /// Ask the control plane about answering-machine detection ([`ask_amd`]) and give the
    /// outcome to the call ([`Call::amd_result`]).
    AskAmd {
        /// How long the control plane may hold the question.
        wait_ms: u32,
    },
    /// Run a tool at the control plane ([`run_tool`]) and give the result to the call.
    Tool {
        /// The model's id for this function call.
        call_id: String,
        /// The tool's name.
        name: String,
        /// Its JSON arguments.
        arguments: String,
    },
    /// Ask the control plane to hang up ([`hang_up`]).
    HangUp {
        /// The model's `end_call` id, if the model asked.
        tool_call_id: Option<String>,
        /// Its arguments, if any.
        arguments: Option<String>,
    },
}

/// A tool call's outcome, for [`Call::tool_result`].
#[derive(Debug)]
pub(crate) struct ToolDone {
    /// The model's id for the function call.
    pub(crate) call_id: String,
    /// Whether the tool succeeded.
    pub(crate) ok: bool,
    /// The output JSON.
    pub(crate) output: String,
}

/// One call's bookkeeping outside the core. Built on the worker's tokio thread (it spawns the
/// event poster), then owned by whichever shell relays the call.
pub(crate) struct Driver {
    metrics: Arc<Metrics>,
    reported: Reported,
    stream_sid_known: bool,
    events: Batcher,
    /// GPT-Live: the call's billed seconds so far (its last `LiveUsage` report).
    live_seconds: f64,
}

impl Driver {
    /// The driver and the poster task that delivers the call's events; await
    /// [`Poster::finish`] after [`Driver::close`].
    pub(crate) fn new(control: ControlPlane, call_id: String, metrics: Arc<Metrics>) -> (Driver, Poster) {
        let (events, poster) = Batcher::new(control, call_id, metrics.clone());
        (
            Driver {
                metrics,
                reported: Reported::default(),
                stream_sid_known: false,
                events,
                live_seconds: 0.0,
            },
            poster,
        )
    }

    /// Takes every event the core has: reports are batched, errors logged, work handed to `act`.
    /// Returns the close reason once the call has closed. Records the stream's ids on the
    /// current span when `start` made them known.
    pub(crate) fn poll_events(
        &mut self,
        call: &mut Call,
        mut act: impl FnMut(Action),
    ) -> Option<CloseReason> {
        let mut closed = None;
        while let Some(event) = call.poll_event() {
            match event {
                Event::OpenUpstream => act(Action::OpenUpstream),
                Event::AskAmd { wait_ms } => act(Action::AskAmd { wait_ms }),
                Event::ToolCall { call_id, name, arguments } => {
                    Metrics::inc(&self.metrics.tool_calls);
                    tracing::info!(tool = %name, tool_call_id = %call_id, "tool call");
                    act(Action::Tool { call_id, name, arguments });
                }
                Event::HangUp { tool_call_id, arguments } => act(Action::HangUp { tool_call_id, arguments }),
                Event::Report(e) => {
                    if let CallEvent::LiveUsage { seconds } = &e {
                        self.live_seconds = *seconds;
                    }
                    self.events.push(e)
                }
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
        if !self.stream_sid_known
            && let Some(sid) = call.stream_sid()
        {
            self.stream_sid_known = true;
            let span = tracing::Span::current();
            span.record("stream_sid", sid);
            if let Some(call_sid) = call.call_sid() {
                span.record("call_sid", call_sid);
            }
            tracing::info!("stream started");
        }
        closed
    }

    /// Every second: the pending events go to the control plane, the call's counters to
    /// `/metrics` (and, at debug, one line on what was ignored since the last second).
    pub(crate) fn tick(&mut self, call: &Call) {
        self.events.flush();
        // The ignored-event summary costs a list: only taken when debug lines are wanted (the
        // tick is on the engine's allocation-free path otherwise).
        let before = tracing::enabled!(tracing::Level::DEBUG).then(|| self.reported.ignored());
        self.metrics.add_call_stats(&mut self.reported, call.stats(), call.hold_dropped().bytes);
        if let Some(before) = before
            && self.reported.ignored() != before
        {
            let new: Vec<String> = self
                .reported
                .ignored()
                .iter()
                .filter_map(|&(peer, kind, n)| {
                    let old = before.iter().find(|(p, k, _)| (*p, *k) == (peer, kind)).map_or(0, |o| o.2);
                    (n > old).then(|| format!("{peer}/{kind}: {}", n - old))
                })
                .collect();
            tracing::debug!(ignored = ?new, "events ignored in the last second");
        }
    }

    /// The call has closed: counters and the end-of-call line.
    pub(crate) fn ended(&mut self, call: &Call, reason: CloseReason) {
        self.metrics.call_ended(reason.code());
        self.metrics.add_call_stats(&mut self.reported, call.stats(), call.hold_dropped().bytes);
        let stats = call.stats();
        let live_ms = (self.live_seconds * 1000.0).round();
        if live_ms > 0.0 {
            self.metrics.live_session_ms.fetch_add(live_ms as u64, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::info!(
            reason = reason.code(),
            side = ?reason.side(),
            media_forwarded = stats.media_forwarded,
            agent_chunks = stats.agent_chunks_sent,
            barge_ins = stats.barge_ins,
            hold_dropped_bytes = call.hold_dropped().bytes,
            live_seconds = self.live_seconds,
            live_silence_held_back = stats.live_silence_held_back,
            "call ended"
        );
    }

    /// After the close: the last reports (the close sequence may add some) go out, and the
    /// poster is told there will be no more.
    pub(crate) fn close(mut self, call: &mut Call) {
        while let Some(event) = call.poll_event() {
            if let Event::Report(e) = event {
                self.events.push(e);
            }
        }
        self.events.flush();
    }
}

/// Runs a tool at the control plane; a failure becomes an error output the model can speak to.
pub(crate) async fn run_tool(
    control: ControlPlane,
    metrics: Arc<Metrics>,
    call_id: String,
    tool_call_id: String,
    name: String,
    arguments: String,
) -> ToolDone {
    let req = ToolRequest { tool_call_id: tool_call_id.clone(), arguments };
    match control.tool(&call_id, &name, &req).await {
        Ok(r) => ToolDone { call_id: tool_call_id, ok: r.ok, output: r.output },
        Err(e) => {
            Metrics::inc(&metrics.tool_failures);
            tracing::warn!(tool = %name, error = %e, "tool failed");
            let output =
                serde_json::json!({"error": "tool_unavailable", "message": "the tool could not be run"});
            ToolDone { call_id: tool_call_id, ok: false, output: output.to_string() }
        }
    }
}

/// Asks the control plane whether a machine answered (waiting up to `wait_ms` for Twilio's
/// detection); a failure is [`AmdOutcome::Undecided`]: the agent greets, and the control plane
/// still ends the call through Twilio if a machine result comes later.
pub(crate) async fn ask_amd(
    control: ControlPlane,
    metrics: Arc<Metrics>,
    call_id: String,
    wait_ms: u32,
) -> AmdOutcome {
    let asked = std::time::Instant::now();
    let outcome = match control.amd(&call_id, wait_ms).await {
        Ok(status) => {
            let outcome = AmdOutcome::from_status(status.detection, status.answered_by.as_deref());
            if status.detection {
                tracing::info!(
                    answered_by = status.answered_by.as_deref().unwrap_or("not yet"),
                    outcome = outcome.as_str(),
                    waited_ms = asked.elapsed().as_millis() as u64,
                    "answering-machine detection"
                );
            }
            outcome
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "answering-machine detection result unavailable; greeting now (check the control plane, or set AMD_HOLD_MS=0 with a control plane older than this gateway)"
            );
            AmdOutcome::Undecided
        }
    };
    metrics.amd_outcome(outcome);
    outcome
}

/// Asks the control plane to hang up (`end_call`); the `hangups`-th request of the call when the
/// gateway itself decided (no model id).
pub(crate) async fn hang_up(
    control: ControlPlane,
    metrics: Arc<Metrics>,
    call_id: String,
    hangups: u32,
    tool_call_id: Option<String>,
    arguments: Option<String>,
) {
    let tool_call_id = tool_call_id.unwrap_or_else(|| format!("gateway-hangup-{hangups}"));
    let arguments = arguments.unwrap_or_else(|| "{}".to_owned());
    tracing::info!(%tool_call_id, "hanging up through the control plane (end_call)");
    let req = ToolRequest { tool_call_id, arguments };
    match control.tool(&call_id, crate::core::call::END_CALL, &req).await {
        Ok(r) if r.ok => {}
        Ok(r) => tracing::warn!(output = %r.output, "end_call refused; the call ends on its drain timer"),
        Err(e) => {
            Metrics::inc(&metrics.tool_failures);
            tracing::warn!(error = %e, "end_call failed; the call ends on its drain timer");
        }
    }
}

/// Collects [`CallEvent`]s and hands them, in batches with a growing `seq`, to the poster task
/// (the control plane stores each `seq` once).
struct Batcher {
    pending: Vec<CallEvent>,
    next_seq: u64,
    tx: mpsc::UnboundedSender<CallEventsBatch>,
}

/// The task delivering a call's event batches in order (retrying a failed batch a few times).
pub(crate) struct Poster(tokio::task::JoinHandle<()>);

impl Batcher {
    fn new(control: ControlPlane, call_id: String, metrics: Arc<Metrics>) -> (Self, Poster) {
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
        (Self { pending: Vec::new(), next_seq: 0, tx }, Poster(task))
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
}

impl Poster {
    /// Waits (bounded) until every batch is delivered; call after [`Driver::close`].
    pub(crate) async fn finish(mut self) {
        if tokio::time::timeout(EVENTS_DRAIN, &mut self.0).await.is_err() {
            tracing::error!("call events not delivered in time; giving up");
            self.0.abort();
        }
    }
}
