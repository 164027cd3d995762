//! One outbound call from creation to its last callback: initiated → ringing → (answered →
//! TwiML → completed) or busy / no-answer / failed / canceled, with the status callbacks the
//! request asked for. Answered calls run their TwiML: `<Connect><Stream>` starts a caller
//! against the stream URL (with the `<Parameter>`s as `customParameters`) and the document
//! continues when the stream closes; `<Hangup/>` or the end of the document ends the call.
//! A call update with new TwiML stops what runs (a stream gets `stop` and is closed) and runs
//! the new document. `<Dial>` calls the scripted party ([`super::dial`]), then requests its
//! `action` with `DialCallStatus` and runs the TwiML answered. Answering-machine detection ([`super::amd`]) runs beside the TwiML
//! (`AsyncAmd=true`, result by `AsyncAmdStatusCallback`) or before it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Outcome;
use super::amd::{AmdScript, AnsweredBy};
use super::dial::{DialRecord, DialScript};
use super::state::{CallError, CallStatus, Shared};
use super::validate::CreateCall;
use crate::callbacks::{CallbackKind, CallbackRecord};
use crate::caller::{CallEnd, Caller, CallerConfig, CallerEvent, HangupCause, HangupHandle};
use crate::twiml::{self, Dial, DialTarget, StreamNoun, Verb};
use crate::{codes, sids};

/// A callback waiting to be sent.
struct Pending {
    kind: CallbackKind,
    event: String,
    url: String,
    method: String,
    params: Vec<(String, String)>,
}

/// Where the next document comes from: URL, method, parameters beyond the call's own (a
/// `<Dial action>`'s `DialCallStatus` & co.), and what kind of request it is.
type NextDoc = (String, String, Vec<(String, String)>, CallbackKind);

/// Trial accounts' call limit.
const TRIAL_LIMIT: Duration = Duration::from_secs(600);

/// Most `<Redirect>`/`action` hops before the call is abandoned.
const MAX_DOCUMENTS: usize = 10;

struct Call {
    shared: Arc<Shared>,
    sid: String,
    req: CreateCall,
    hangup: watch::Receiver<bool>,
    caller_hangup: HangupHandle,
    callbacks: mpsc::UnboundedSender<Pending>,
    sequence: u64,
    /// New TwiML from a call update.
    redirect: watch::Receiver<Option<String>>,
    /// Asynchronous answering-machine detection, while it runs.
    amd: Option<tokio::task::JoinHandle<()>>,
}

/// Runs the call `sid` to its end (spawned by the create-call handler).
pub(crate) async fn run(
    shared: Arc<Shared>,
    sid: String,
    req: CreateCall,
    hangup: watch::Receiver<bool>,
    caller_hangup: HangupHandle,
    redirect: watch::Receiver<Option<String>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let delivery = tokio::spawn(deliver(shared.clone(), sid.clone(), rx));
    let mut call = Call {
        shared: shared.clone(),
        sid: sid.clone(),
        req,
        hangup,
        caller_hangup,
        callbacks: tx,
        sequence: 0,
        redirect,
        amd: None,
    };
    call.lifecycle().await;
    if let Some(amd) = call.amd.take() {
        amd.abort(); // the call ended before detection decided: no result, as on Twilio
    }
    let final_status = shared.call(&sid).map_or(CallStatus::Completed, |c| c.status);
    call.status_callback("completed", final_status);
    drop(call);
    let _ = delivery.await;
    shared.update_call(&sid, |c| c.snap.finished = true);
}

impl Call {
    fn hung_up(&self) -> bool {
        *self.hangup.borrow()
    }

    /// Sleeps for `d`; `false` if the call was hung up meanwhile.
    async fn wait(&mut self, d: Duration) -> bool {
        let mut rx = self.hangup.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.hung_up(),
            _ = rx.wait_for(|h| *h) => false,
        }
    }

    /// Sleeps for `d` inside the answered call; `false` if it was hung up or given new TwiML.
    async fn wait_in_call(&mut self, d: Duration) -> bool {
        let mut rx = self.hangup.clone();
        let mut redirect = self.redirect.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.hung_up(),
            _ = rx.wait_for(|h| *h) => false,
            _ = redirect.changed() => false,
        }
    }

    /// The TwiML of a call update not yet run.
    fn take_redirect(&mut self) -> Option<String> {
        if self.redirect.has_changed().unwrap_or(false) {
            self.redirect.borrow_and_update().clone()
        } else {
            None
        }
    }

    /// Answering-machine detection, if the request asked for it: asynchronous detection runs
    /// beside the TwiML and reports by callback; synchronous detection is waited for here.
    /// `false` if the call was hung up meanwhile.
    async fn detect(&mut self) -> bool {
        let Some(amd) = self.req.amd.clone() else { return true };
        let script = self
            .shared
            .read(|i| i.amd.get(&self.req.to).copied())
            .unwrap_or(AmdScript::new(AnsweredBy::Human));
        let (by, after) = script.result(&amd.mode, amd.timeout);
        if !amd.asynchronous {
            if !self.wait(after).await {
                return false;
            }
            self.shared.update_call(&self.sid, |c| c.snap.answered_by = Some(by));
            return true;
        }
        let (shared, sid, tx) = (self.shared.clone(), self.sid.clone(), self.callbacks.clone());
        let params = vec![
            ("AccountSid".to_owned(), shared.cfg.account_sid.clone()),
            ("CallSid".to_owned(), sid.clone()),
            ("AnsweredBy".to_owned(), by.as_str().to_owned()),
            ("MachineDetectionDuration".to_owned(), after.as_millis().to_string()),
        ];
        self.amd = Some(tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shared.update_call(&sid, |c| c.snap.answered_by = Some(by));
            if let Some(url) = amd.callback {
                let _ = tx.send(Pending {
                    kind: CallbackKind::AmdStatus,
                    event: "amd".into(),
                    url,
                    method: amd.callback_method,
                    params,
                });
            }
        }));
        true
    }

    fn error(&self, code: u32, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(call = %self.sid, code, %message, "call error");
        self.shared.update_call(&self.sid, |c| c.snap.errors.push(CallError { code, message }));
    }

    fn base_params(&self, status: &str) -> Vec<(String, String)> {
        let a = &self.shared.cfg.account_sid;
        vec![
            ("AccountSid".into(), a.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), self.sid.clone()),
            ("CallStatus".into(), status.into()),
            ("Called".into(), self.req.to.clone()),
            ("Caller".into(), self.req.from.clone()),
            ("Direction".into(), "outbound-api".into()),
            ("From".into(), self.req.from.clone()),
            ("To".into(), self.req.to.clone()),
        ]
    }

    /// Queues the status callback for `event` if the request asked for it.
    fn status_callback(&mut self, event: &str, status: CallStatus) {
        let Some(url) = self.req.status_callback.clone() else { return };
        if !self.req.status_callback_events.iter().any(|e| e == event) {
            return;
        }
        let status_str = if event == "initiated" { "initiated" } else { status.as_str() };
        let mut params = self.base_params(status_str);
        let now = self.shared.clock.elapsed();
        params.push(("Timestamp".into(), self.shared.clock.rfc2822(now)));
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), self.sequence.to_string()));
        self.sequence += 1;
        if event == "completed" {
            let secs = self.shared.call(&self.sid).and_then(|c| c.duration_secs).unwrap_or(0);
            params.push(("CallDuration".into(), secs.to_string()));
        }
        let _ = self.callbacks.send(Pending {
            kind: CallbackKind::CallStatus,
            event: event.into(),
            url,
            method: self.req.status_callback_method.clone(),
            params,
        });
    }

    fn stream_callback(&self, stream: &StreamNoun, stream_sid: &str, event: &str, error: Option<String>) {
        let Some(url) = stream.status_callback.clone() else { return };
        let now = self.shared.clock.elapsed();
        let mut params = vec![
            ("AccountSid".to_owned(), self.shared.cfg.account_sid.clone()),
            ("CallSid".to_owned(), self.sid.clone()),
            ("StreamSid".to_owned(), stream_sid.to_owned()),
            ("StreamName".to_owned(), stream.name.clone().unwrap_or_else(|| stream_sid.to_owned())),
            ("StreamEvent".to_owned(), event.to_owned()),
        ];
        if let Some(e) = error {
            params.push(("StreamError".to_owned(), e));
        }
        params.push(("Timestamp".to_owned(), self.shared.clock.iso8601(now)));
        let _ = self.callbacks.send(Pending {
            kind: CallbackKind::StreamStatus,
            event: event.into(),
            url,
            method: stream
                .status_callback_method
                .clone()
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase(),
            params,
        });
    }

    async fn lifecycle(&mut self) {
        self.status_callback("initiated", CallStatus::Queued);
        let outcome = self.shared.read(|i| i.outcomes.get(&self.req.to).copied()).unwrap_or(Outcome::Answer);
        if self.hung_up() {
            return;
        }
        if outcome == Outcome::Failed {
            self.error(codes::INTERNAL, format!("call to {} failed (simulated outcome)", self.req.to));
            self.shared.set_status(&self.sid, CallStatus::Failed);
            return;
        }
        self.shared.set_status(&self.sid, CallStatus::Ringing);
        self.status_callback("ringing", CallStatus::Ringing);
        let ring = self.shared.cfg.ring_delay;
        let timeout = self.req.timeout;
        let (ring_for, result) = match outcome {
            Outcome::Answer if ring < timeout => (ring, CallStatus::InProgress),
            Outcome::Answer => (timeout, CallStatus::NoAnswer),
            Outcome::NoAnswer => {
                (self.shared.cfg.no_answer_after.map_or(timeout, |d| d.min(timeout)), CallStatus::NoAnswer)
            }
            Outcome::Busy => (ring.min(timeout), CallStatus::Busy),
            Outcome::Failed => (Duration::ZERO, CallStatus::Failed),
        };
        if !self.wait(ring_for).await {
            return; // canceled by the API
        }
        self.shared.set_status(&self.sid, result);
        if result != CallStatus::InProgress {
            return;
        }
        self.status_callback("answered", CallStatus::InProgress);
        if !self.detect().await {
            return;
        }
        self.execute().await;
        self.shared.set_status(&self.sid, CallStatus::Completed);
    }

    /// Fetches TwiML from `url` with Twilio's signed voice request.
    async fn fetch(&self, url: &str, method: &str) -> Option<String> {
        self.request_twiml(url, method, CallbackKind::TwimlFetch, "in-progress", Vec::new()).await.0
    }

    /// Requests `url` with the call's parameters (`CallStatus=status`) and `extra`, as `kind`;
    /// the TwiML answered (`None` on a failure, logged as Twilio's 11200) and the HTTP status.
    async fn request_twiml(
        &self,
        url: &str,
        method: &str,
        kind: CallbackKind,
        status: &str,
        extra: Vec<(String, String)>,
    ) -> (Option<String>, Option<u16>) {
        let mut params = self.base_params(status);
        params.extend(extra);
        let sent_at = self.shared.clock.elapsed();
        let d = self.shared.sender.send(url, method, &params).await;
        let ok = d.http_status.is_some_and(|s| (200..300).contains(&s));
        let body = d.body.clone();
        let record = CallbackRecord {
            call_sid: self.sid.clone(),
            kind,
            event: if kind == CallbackKind::DialAction { "dial-action".into() } else { "twiml".into() },
            method: method.to_owned(),
            url: url.to_owned(),
            request_url: d.request_url,
            params,
            signature: d.signature,
            http_status: d.http_status,
            body: d.body,
            error: d.error.clone(),
            sent_at,
        };
        let http_status = d.http_status;
        self.shared.update(|i| i.callbacks.push(record));
        if ok {
            (body, http_status)
        } else {
            let why = d.error.unwrap_or_else(|| format!("HTTP {}", d.http_status.unwrap_or(0)));
            self.error(codes::HTTP_RETRIEVAL, format!("fetching TwiML from {url}: {why}"));
            (None, http_status)
        }
    }

    /// Runs one `<Dial>`: rings the scripted party, bridges it for its talk time, records the
    /// outcome. `(DialCallStatus, DialCallSid, DialCallDuration, parent still on the line)`.
    async fn dial(&mut self, d: &Dial) -> (String, String, u64, bool) {
        let address = d.target.address().to_owned();
        let script = self.shared.read(|i| i.dial.get(&address).copied()).unwrap_or(DialScript::Answer {
            after: self.shared.cfg.ring_delay,
            talk: Duration::from_secs(1),
        });
        let dial_sid = sids::new_sid(sids::CALL);
        let record = DialRecord {
            kind: match d.target {
                DialTarget::Number(_) => "number".into(),
                DialTarget::Sip(_) => "sip".into(),
            },
            target: address.clone(),
            caller_id: d.caller_id.clone(),
            timeout_secs: d.timeout,
            action: d.action.clone(),
            dial_call_sid: dial_sid.clone(),
            status: None,
            duration_secs: None,
            action_http_status: None,
            at: self.shared.clock.elapsed(),
        };
        self.shared.update_call(&self.sid, |c| c.snap.dials.push(record));
        let timeout = Duration::from_secs(d.timeout);
        let no_answer = self.shared.cfg.no_answer_after.map_or(timeout, |n| n.min(timeout));
        let caller_id_ok = d.caller_id.as_ref().is_none_or(|id| {
            *id == self.req.from
                || *id == self.req.to
                || self.shared.cfg.owned_numbers.contains(id)
                || self.shared.read(|i| i.verified.iter().any(|(n, _, _)| n == id))
        });
        if !caller_id_ok {
            self.error(
                codes::DIAL_INVALID_CALLER_ID,
                "Dial: Invalid callerId value (not the call's From or To, an owned number or a verified caller ID)",
            );
        }
        // (ringing time, outcome when it ends, connected time)
        let (ring, status, talk) = match script {
            _ if !caller_id_ok => (Duration::ZERO, "failed", Duration::ZERO),
            DialScript::Answer { after, .. } | DialScript::Busy { after } if after >= timeout => {
                (no_answer, "no-answer", Duration::ZERO)
            }
            DialScript::Answer { after, talk } => (after, "completed", talk),
            DialScript::Busy { after } => (after, "busy", Duration::ZERO),
            DialScript::NoAnswer => (no_answer, "no-answer", Duration::ZERO),
            DialScript::Failed => (Duration::ZERO, "failed", Duration::ZERO),
        };
        let (status, connected, on_line) = if !self.wait_in_call(ring).await {
            ("canceled", Duration::ZERO, false)
        } else if talk.is_zero() {
            (status, Duration::ZERO, true)
        } else {
            let start = self.shared.clock.elapsed();
            let stayed = self.wait_in_call(talk).await;
            (status, self.shared.clock.elapsed().saturating_sub(start), stayed)
        };
        let secs = connected.as_millis().div_ceil(1000) as u64;
        self.shared.update_call(&self.sid, |c| {
            if let Some(r) = c.snap.dials.last_mut() {
                r.status = Some(status.to_owned());
                r.duration_secs = Some(secs);
            }
        });
        (status.to_owned(), dial_sid, secs, on_line && !self.hung_up())
    }

    fn resolve(base: Option<&str>, target: &str) -> Option<String> {
        match url::Url::parse(target) {
            Ok(u) => Some(u.to_string()),
            Err(_) => base
                .and_then(|b| url::Url::parse(b).ok())
                .and_then(|b| b.join(target).ok())
                .map(|u| u.to_string()),
        }
    }

    async fn execute(&mut self) {
        let first = self.take_redirect().or_else(|| self.req.twiml.clone());
        let (mut doc, mut doc_url) = match (first, &self.req.url) {
            (Some(t), _) => (t, None),
            (None, Some(u)) => {
                let (u, m) = (u.clone(), self.req.method.clone());
                match self.fetch(&u, &m).await {
                    Some(body) => (body, Some(u)),
                    None => return,
                }
            }
            (None, None) => return,
        };
        for _ in 0..MAX_DOCUMENTS {
            let parsed = match twiml::parse(&doc) {
                Ok(t) => t,
                Err(e) => {
                    self.error(e.code(), e.to_string());
                    return;
                }
            };
            let mut next: Option<NextDoc> = None;
            for verb in parsed.verbs {
                if self.hung_up() || self.redirect.has_changed().unwrap_or(false) {
                    break;
                }
                match verb {
                    Verb::Hangup | Verb::Reject { .. } => return,
                    Verb::Pause { length } => {
                        if !self.wait_in_call(Duration::from_secs(length)).await {
                            break;
                        }
                    }
                    Verb::Say { text, language } => {
                        let at = self.shared.clock.elapsed();
                        let d = Duration::from_millis(60 * text.chars().count() as u64);
                        self.shared.update_call(&self.sid, |c| {
                            c.snap.said.push(super::state::Said { text, language, at });
                        });
                        if !self.wait_in_call(d).await {
                            break;
                        }
                    }
                    Verb::Connect(c) => {
                        if let Some(stream) = c.stream
                            && self.stream(&stream).await
                        {
                            return;
                        }
                        if self.redirect.has_changed().unwrap_or(false) {
                            break;
                        }
                        if let Some(action) = c.action {
                            let method = c.method.unwrap_or_else(|| "POST".into());
                            next = Some((action, method, Vec::new(), CallbackKind::TwimlFetch));
                            break;
                        }
                    }
                    Verb::Redirect { url, method } => {
                        next = Some((
                            url,
                            method.unwrap_or_else(|| "POST".into()),
                            Vec::new(),
                            CallbackKind::TwimlFetch,
                        ));
                        break;
                    }
                    Verb::Dial(d) => {
                        let (status, dial_sid, secs, on_line) = self.dial(&d).await;
                        if self.redirect.has_changed().unwrap_or(false) {
                            break; // a call update took over: no action request
                        }
                        let Some(action) = d.action else {
                            if on_line {
                                continue;
                            }
                            return;
                        };
                        let extra = vec![
                            ("DialBridged".to_owned(), (status == "completed").to_string()),
                            ("DialCallDuration".to_owned(), secs.to_string()),
                            ("DialCallSid".to_owned(), dial_sid),
                            ("DialCallStatus".to_owned(), status),
                        ];
                        if !on_line {
                            // The caller hung up: Twilio still reports the dial, and runs nothing after.
                            if let Some(url) = Self::resolve(doc_url.as_deref(), &action) {
                                let method = d.method.unwrap_or_else(|| "POST".into());
                                let (_, http) = self
                                    .request_twiml(
                                        &url,
                                        &method,
                                        CallbackKind::DialAction,
                                        "completed",
                                        extra,
                                    )
                                    .await;
                                self.record_action(http);
                            }
                            return;
                        }
                        next = Some((
                            action,
                            d.method.unwrap_or_else(|| "POST".into()),
                            extra,
                            CallbackKind::DialAction,
                        ));
                        break;
                    }
                    Verb::Other(name) => {
                        self.error(
                            codes::TWIML_INVALID,
                            format!("<{name}> is not run by the simulator; skipped"),
                        );
                    }
                }
            }
            if self.hung_up() {
                return;
            }
            if let Some(update) = self.take_redirect() {
                doc = update;
                doc_url = None;
                continue;
            }
            let Some((target, method, extra, kind)) = next else { return };
            let Some(url) = Self::resolve(doc_url.as_deref(), &target) else {
                self.error(codes::HTTP_RETRIEVAL, format!("cannot resolve `{target}`"));
                return;
            };
            let (body, http) =
                self.request_twiml(&url, &method.to_ascii_uppercase(), kind, "in-progress", extra).await;
            if kind == CallbackKind::DialAction {
                self.record_action(http);
            }
            match body {
                Some(body) => {
                    doc = body;
                    doc_url = Some(url);
                }
                None => return,
            }
        }
        self.error(codes::TWIML_INVALID, "too many redirects");
    }

    /// Notes on the last `<Dial>` how its `action` request was answered.
    fn record_action(&self, http: Option<u16>) {
        self.shared.update_call(&self.sid, |c| {
            if let Some(r) = c.snap.dials.last_mut() {
                r.action_http_status = http;
            }
        });
    }

    /// Runs one `<Stream>`; `true` if the call ended during it (hung up).
    async fn stream(&mut self, stream: &StreamNoun) -> bool {
        let settings = &self.shared.cfg.caller;
        let stream_sid = sids::new_sid(sids::STREAM);
        let mut cfg = CallerConfig::new(stream.url.clone(), self.shared.cfg.auth_token.clone());
        cfg.account_sid = self.shared.cfg.account_sid.clone();
        cfg.call_sid = self.sid.clone();
        cfg.stream_sid = stream_sid.clone();
        cfg.custom_parameters = stream.parameters.clone();
        cfg.script = settings.script.clone();
        cfg.dtmf = settings.dtmf.clone();
        cfg.pacing = settings.pacing;
        cfg.end = settings.end;
        cfg.ca_pem = settings.ca_pem.clone();
        cfg.connect_timeout = settings.connect_timeout;
        cfg.allow_insecure_ws = !self.shared.cfg.strict_wss;
        // What is left of the call's time limit (TimeLimit, and ten minutes on trial accounts).
        let answered = self.shared.call(&self.sid).and_then(|c| c.answered_at).unwrap_or_default();
        let used = self.shared.clock.elapsed().saturating_sub(answered);
        let mut limit = self.req.time_limit;
        let trial_bound = self.shared.cfg.trial && TRIAL_LIMIT < limit;
        if trial_bound {
            limit = TRIAL_LIMIT;
        }
        let mut max = limit.saturating_sub(used);
        if let Some(m) = settings.max_duration {
            max = max.min(m);
        }
        cfg.max_duration = Some(max);

        let (tx, mut rx) = mpsc::unbounded_channel();
        let task =
            tokio::spawn(Caller::new(cfg).with_events(tx).with_hangup(self.caller_hangup.clone()).run());
        while let Some(ev) = rx.recv().await {
            match ev {
                CallerEvent::Started { .. } => {
                    self.stream_callback(stream, &stream_sid, "stream-started", None)
                }
            }
        }
        let report = match task.await {
            Ok(r) => r,
            Err(e) => {
                self.error(codes::STREAM_PROTOCOL, format!("caller task failed: {e}"));
                return false;
            }
        };
        if let Some(f) = &report.handshake_failure {
            self.error(f.code, f.to_string());
            self.stream_callback(stream, &stream_sid, "stream-error", Some(f.to_string()));
        } else {
            if let CallEnd::ProtocolError { detail } = &report.end {
                self.error(codes::STREAM_PROTOCOL, detail.clone());
            }
            self.stream_callback(stream, &stream_sid, "stream-stopped", None);
        }
        // Stopped for a call update: the call goes on with the new TwiML.
        let ended = matches!(report.end, CallEnd::CallerHungUp { .. })
            && !self.redirect.has_changed().unwrap_or(false);
        if trial_bound && report.end == (CallEnd::CallerHungUp { cause: HangupCause::MaxDuration }) {
            self.error(codes::TRIAL_CALL_LIMIT, "trial accounts are limited to ten minutes per call");
        }
        self.shared.update_call(&self.sid, |c| c.snap.caller_reports.push(report));
        ended
    }
}

/// Sends a call's callbacks in order and records how each went.
async fn deliver(shared: Arc<Shared>, sid: String, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(p) = rx.recv().await {
        let sent_at = shared.clock.elapsed();
        let d = shared.sender.send(&p.url, &p.method, &p.params).await;
        tracing::info!(call = %sid, event = %p.event, url = %p.url, status = ?d.http_status, "callback");
        let record = CallbackRecord {
            call_sid: sid.clone(),
            kind: p.kind,
            event: p.event,
            method: p.method,
            url: p.url,
            request_url: d.request_url,
            params: p.params,
            signature: d.signature,
            http_status: d.http_status,
            body: None,
            error: d.error,
            sent_at,
        };
        shared.update(|i| i.callbacks.push(record));
    }
}
