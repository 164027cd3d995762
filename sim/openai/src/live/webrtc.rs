//! A GPT-Live session over WebRTC: the [`LiveSession`] (the same agent as on the WebSocket)
//! behind the shell of `crate::rtc` (the Realtime WebRTC transport), as an [`RtcAgent`].
//!
//! What differs from the WebSocket form, as OpenAI's WebRTC guide describes it:
//! - the session starts with the HTTP request (`POST /v1/live/sessions` carries its `session`);
//!   `session.started` goes out when the `oai-events` data channel opens, and a
//!   `session.start` sent on the channel is refused (`session_already_started`);
//! - audio travels on the negotiated Opus track both ways, never as
//!   `session.input_audio.append` or `session.output_audio.delta`: the caller's decoded audio
//!   feeds the agent's energy detector and timeline, the agent's stream (silence included) is
//!   played on the track 20 ms at a time;
//! - `session.client.data_channel` restricts the untrusted page: a client event whose type is
//!   not in `allowed_client_events` is answered with an `error` (`client_event_not_allowed`,
//!   the simulator's code) and not acted on; a server event not matched by
//!   `allowed_server_events` is not sent (a `{"type":"response.event","response_event":T}`
//!   selector matches the Responses events of type `T` only). `"all"`, `null` or no setting
//!   allows everything, an empty list nothing.
//!
//! Every event sent on the channel is checked against the Live server schema first, as on the
//! WebSocket.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::schema::validate_live_server_event;
use super::session::{LiveOut, LiveSession};
use crate::playout::{FRAME_SAMPLES, RATE};
use crate::record::{LiveRecord, RecordedEvent, SessionEnd, SessionRecord};
use crate::rtc::RtcAgent;
use crate::state::{Shared, lock};
use crate::wire::to_wire;
use crate::ws::Batch;

/// One `allowed_server_events` selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    kind: String,
    response_event: Option<String>,
}

/// What a page may send and see on its data channel (`session.client.data_channel`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChannelFilter {
    /// `None`: every client event.
    client: Option<Vec<String>>,
    /// `None`: every server event.
    server: Option<Vec<Selector>>,
}

impl ChannelFilter {
    /// Reads a (schema-checked) session's `client.data_channel`.
    pub(crate) fn of(session: &Value) -> Self {
        let dc = &session["client"]["data_channel"];
        let client = dc["allowed_client_events"]
            .as_array()
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<String>>());
        let server = dc["allowed_server_events"].as_array().map(|list| {
            list.iter()
                .filter_map(|s| {
                    Some(Selector {
                        kind: s["type"].as_str()?.to_owned(),
                        response_event: s["response_event"].as_str().map(str::to_owned),
                    })
                })
                .collect::<Vec<Selector>>()
        });
        Self { client, server }
    }

    /// Whether the page may send an event of type `kind`.
    pub(crate) fn allows_client(&self, kind: &str) -> bool {
        self.client.as_ref().is_none_or(|list| list.iter().any(|k| k == kind))
    }

    /// Whether the page may see `event`.
    pub(crate) fn allows_server(&self, event: &Value) -> bool {
        let Some(list) = &self.server else { return true };
        let kind = event["type"].as_str().unwrap_or_default();
        list.iter().any(|s| {
            s.kind == kind
                && s.response_event
                    .as_deref()
                    .is_none_or(|inner| event["event"]["type"].as_str() == Some(inner))
        })
    }
}

/// A Live session on a WebRTC call.
pub(crate) struct LiveRtc {
    session: LiveSession,
    /// The creation request's `session` (checked), applied when the channel opens.
    config: Value,
    filter: ChannelFilter,
    /// The agent's voice at [`RATE`], waiting for the track's 20 ms ticks.
    voice: VecDeque<i16>,
    /// Server events the channel filter kept from the page.
    pub(crate) withheld: u64,
}

impl LiveRtc {
    /// The agent for a call created with `config` (the request's checked `session`).
    pub(crate) fn new(session: LiveSession, config: Value) -> Self {
        let filter = ChannelFilter::of(&config);
        Self { session, config, filter, voice: VecDeque::new(), withheld: 0 }
    }
}

impl RtcAgent for LiveRtc {
    fn on_open(&mut self, now: Instant) {
        self.session.start(&self.config, None, now);
        self.session.format_negotiated();
    }

    fn on_text(&mut self, text: &str, now: Instant) -> String {
        if let Ok(v) = serde_json::from_str::<Value>(text)
            && let Some(kind) = v["type"].as_str()
            && !self.filter.allows_client(kind)
        {
            self.session.refuse_not_allowed(kind, v["event_id"].as_str());
            return kind.to_owned();
        }
        self.session.on_text(text, now)
    }

    fn on_binary(&mut self) {
        self.session.on_binary();
    }

    fn input_rate(&self) -> u32 {
        // The session's format on WebRTC is PCM at 24 kHz (no `audio.format`), the shell's rate.
        RATE
    }

    fn on_input_samples(&mut self, samples: &[i16], now: Instant) {
        // The timeline starts at session.started: audio before it is not heard.
        if self.session.started() {
            self.session.hear(samples.to_vec(), now);
        }
    }

    fn pull_output_frame(&mut self) -> Option<Vec<i16>> {
        (self.voice.len() >= FRAME_SAMPLES).then(|| self.voice.drain(..FRAME_SAMPLES).collect())
    }

    fn take_outgoing(&mut self, check: bool, at: Option<Duration>, batch: &mut Batch) -> Vec<String> {
        let mut texts = Vec::new();
        for out in std::mem::take(&mut self.session.out) {
            match out {
                LiveOut::Audio(bytes) => {
                    self.voice.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
                }
                LiveOut::Event(mut v) => {
                    v["event_id"] = Value::String(self.session.ids.next("event"));
                    let kind = v["type"].as_str().unwrap_or("?").to_owned();
                    if check && let Err(e) = validate_live_server_event(&v) {
                        tracing::error!(kind, error = %e, "simulator sent an event outside the Live server schema");
                        batch.violations.push(format!("{kind}: {e}"));
                    }
                    if !self.filter.allows_server(&v) {
                        self.withheld += 1;
                        continue;
                    }
                    let text = to_wire(&v);
                    if let Some(at) = at {
                        batch.sent.push(RecordedEvent { at, kind, text: Arc::from(text.as_str()) });
                    }
                    texts.push(text);
                }
            }
        }
        texts
    }

    fn next_due(&self) -> Option<Instant> {
        self.session.next_due()
    }

    fn on_timer(&mut self, now: Instant) {
        self.session.on_timer(now);
    }

    fn expire(&mut self, now: Instant, _cap: Duration) {
        self.session.expire(now);
    }

    fn closing(&self) -> bool {
        self.session.close_with.is_some()
    }

    fn lost(&mut self, now: Instant) {
        self.session.lost(now);
    }

    fn write_record(
        &mut self,
        shared: &Shared,
        record: &Mutex<SessionRecord>,
        batch: &mut Batch,
        end: Option<SessionEnd>,
    ) {
        let s = &self.session;
        {
            let mut r = lock(record);
            if s.started() {
                r.model = s.model().to_owned();
            }
            r.withheld = self.withheld;
            let live = r.live.get_or_insert_with(LiveRecord::default);
            live.started |= s.started();
            live.closed_reason.clone_from(&s.closed_reason);
            live.usage_seconds = s.usage_seconds;
            live.client_schema_violations.clone_from(&s.client_violations);
        }
        batch.write_counts(shared, record, (s.appends, s.appended_bytes), false, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_channel_filter_reads_the_client_settings() {
        let open = ChannelFilter::of(&json!({"model": "gpt-live-1"}));
        assert!(open.allows_client("session.close") && open.allows_server(&json!({"type": "info"})));
        let all = ChannelFilter::of(&json!({"client": {"data_channel": {
            "allowed_client_events": "all", "allowed_server_events": "all"}}}));
        assert_eq!(all, ChannelFilter::default());
        let f = ChannelFilter::of(&json!({"client": {"data_channel": {
            "allowed_client_events": ["response.create"],
            "allowed_server_events": [{"type": "error"},
                {"type": "response.event", "response_event": "response.output_item.done"}]}}}));
        assert!(f.allows_client("response.create") && !f.allows_client("session.instructions.append"));
        assert!(f.allows_server(&json!({"type": "error"})));
        assert!(!f.allows_server(&json!({"type": "session.output_transcript.delta"})));
        assert!(f.allows_server(
            &json!({"type": "response.event", "event": {"type": "response.output_item.done"}})
        ));
        assert!(!f.allows_server(&json!({"type": "response.event", "event": {"type": "response.created"}})));
        let none = ChannelFilter::of(&json!({"client": {"data_channel": {
            "allowed_client_events": [], "allowed_server_events": []}}}));
        assert!(!none.allows_client("session.close") && !none.allows_server(&json!({"type": "error"})));
    }
}
