//! The OpenAI stand-in's scripted turns in a soak, following the real server's rules
//! (protocols.md C3–C6, F; the gateway's `tests/call_support/server_rules.rs`).
//!
//! A session echoes caller audio as the audio of its *active response*, one response at a
//! time, and on its own schedule (checked every 10 ms by the loop, never a timer per session):
//! - **barge-in**: 400 ms of agent audio in the active item (the caller has not played it
//!   yet), then, 200 ms later, `input_audio_buffer.speech_started`; with turn detection and
//!   `interrupt_response` (the session's `session.update` says) the server cancels the response
//!   itself (`response.done`, `cancelled`, `turn_detected`), then `speech_stopped`,
//!   `committed` and a new response (`create_response`). Without `interrupt_response` the
//!   response stays active until the client cancels it;
//! - **tool call**: the active response ends with a `save_lead` function call
//!   (`response.output_item.added`, `response.function_call_arguments.delta`/`.done`,
//!   `response.output_item.done`, `response.done`); the next response is the one the client's
//!   `response.create` asks for, after its `function_call_output`.
//!
//! Caller audio that comes while no response may be created (a tool call pending) is kept,
//! decoded, and sent as the next response's first delta: the echo loses nothing by itself.
//!
//! What the real server refuses is answered with its `error`: `response.cancel` with no active
//! response (`response_cancel_not_active`), `response.create` during one
//! (`conversation_already_has_active_response`), a truncate of an unknown item or beyond the
//! audio the item holds. Each is counted ([`ErrorCounts`](super::counts::ErrorCounts)).

use callway_gateway::core::ws::Encoder;

use super::checks::Checks;
use super::counts::SoakCounts;
use crate::loadgen::conn::Outbox;
use crate::loadgen::frame::{FrameId, ID_B64_LEN, SILENCE, decoded_len};
use crate::loadgen::openai_stub::{
    ALREADY_ACTIVE, DELTA_END, DELTA_HEAD, GREETING_AUDIO, GREETING_CREATED, GREETING_DELTA_HEAD,
    GREETING_DONE, SESSION_UPDATED,
};
use crate::loadgen::scan::{ClientEvent, client_event, number_after, str_after};
use crate::loadgen::setup::splitmix;

/// Agent audio sent before a barge-in (ms).
pub const BURST_MS: u32 = 400;
/// The caller "speaks" this long after the burst was sent (ms): part of it has played.
const SPEAK_AFTER_MS: u64 = 200;
/// Caller audio kept while no response may be created (8 s of μ-law).
const QUEUE_MAX: usize = 64 * 1024;
/// A session younger than this is not dropped (its greeting is surely through).
const DROP_MIN_AGE_NS: u64 = 1_000_000_000;
/// The greeting's item and its audio (20 ms).
const GREETING_ITEM: &[u8] = b"item_lg_greeting";
const GREETING_BYTES: u64 = 160;

const CANCEL_NOT_ACTIVE: &[u8] = br#"{"type":"error","event_id":"event_sk_err","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"Cancellation failed: no active response found","param":null,"event_id":null}}"#;
const TRUNCATE_UNKNOWN: &[u8] = br#"{"type":"error","event_id":"event_sk_err","error":{"type":"invalid_request_error","code":"item_truncate_invalid_item_id","message":"Item with item_id not found","param":"item_id","event_id":null}}"#;
const TRUNCATE_BEYOND: &[u8] = br#"{"type":"error","event_id":"event_sk_err","error":{"type":"invalid_request_error","code":"invalid_value","message":"Audio content is already shorter than audio_end_ms","param":"audio_end_ms","event_id":null}}"#;
const EV: &[u8] = br#"","event_id":"event_sk","#;
/// `save_lead`'s arguments as the strict tool schema wants them (every property, nulls allowed).
const ARGS: &[u8] = br#"{\"first_name\":\"Camille\",\"last_name\":null,\"phone\":null}"#;

/// How often a session does what (means, ms; each interval is drawn in [½, 1½] × the mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptConfig {
    /// Mean time between barge-ins in a session.
    pub barge_every_ms: u64,
    /// Mean time between tool calls in a session.
    pub tool_every_ms: u64,
}

/// One session's script state.
#[derive(Debug)]
pub struct Script {
    cfg: ScriptConfig,
    rng: u64,
    /// Session serial (in every id it makes).
    sid: u64,
    opened_ns: u64,
    /// The call, from the frame id of the first append.
    call: Option<u32>,
    interrupts: bool,
    greeted: bool,
    /// Responses created in this session; the active one is number `resp`.
    resp: u32,
    active: bool,
    /// `","response_id":"…","item_id":"…","output_index":0,"content_index":0,"delta":"`.
    delta_mid: Vec<u8>,
    /// Audio bytes of each echo item of this session (item `n` is response `n`'s).
    item_bytes: Vec<u64>,
    /// The pending tool call's number.
    tool: Option<u32>,
    tools_made: u32,
    turns: u32,
    /// Caller audio (μ-law) bytes received.
    input_bytes: u64,
    queue: Vec<u8>,
    b64: Vec<u8>,
    deltas: u64,
    next_barge_ns: u64,
    next_tool_ns: u64,
    speak_at_ns: Option<u64>,
}

fn draw(rng: &mut u64, mean_ms: u64) -> u64 {
    *rng = splitmix(*rng);
    let ms = mean_ms / 2 + *rng % mean_ms.max(1);
    ms * 1_000_000
}

fn num(n: u64, b: &mut itoa::Buffer) -> &[u8] {
    b.format(n).as_bytes()
}

impl Script {
    /// Session number `sid`, opened at `now_ns`.
    pub fn new(cfg: ScriptConfig, sid: u64, seed: u64, now_ns: u64) -> Self {
        let mut rng = splitmix(seed ^ sid.rotate_left(17));
        let next_barge_ns = now_ns + draw(&mut rng, cfg.barge_every_ms);
        let next_tool_ns = now_ns + draw(&mut rng, cfg.tool_every_ms);
        Self {
            cfg,
            rng,
            sid,
            opened_ns: now_ns,
            call: None,
            interrupts: true,
            greeted: false,
            resp: 0,
            active: false,
            delta_mid: Vec::with_capacity(128),
            item_bytes: Vec::new(),
            tool: None,
            tools_made: 0,
            turns: 0,
            input_bytes: 0,
            queue: Vec::new(),
            b64: Vec::new(),
            deltas: 0,
            next_barge_ns,
            next_tool_ns,
            speak_at_ns: None,
        }
    }

    /// The call this session serves, once known.
    pub fn call(&self) -> Option<u32> {
        self.call
    }

    /// The call, if the session may be dropped now: it echoes, and no turn is half done.
    pub fn droppable(&self, now_ns: u64) -> Option<u32> {
        let idle = self.active && self.tool.is_none() && self.speak_at_ns.is_none();
        (idle && now_ns >= self.opened_ns + DROP_MIN_AGE_NS).then_some(self.call).flatten()
    }

    /// Answers one client event.
    #[inline]
    pub fn on_client(
        &mut self,
        text: &[u8],
        enc: &mut Encoder,
        out: &mut Outbox,
        counts: &mut SoakCounts,
        checks: &mut Checks,
    ) {
        match client_event(text) {
            ClientEvent::Append { audio } => self.on_append(audio, enc, out, counts),
            ClientEvent::SessionUpdate => {
                // server_rules.rs: turn detection on unless `null`; `interrupt_response` defaults
                // to true.
                let off = memchr::memmem::find(text, br#""turn_detection":null"#).is_some();
                let no_interrupt = memchr::memmem::find(text, br#""interrupt_response":false"#).is_some();
                self.interrupts = !off && !no_interrupt;
                out.push_text(enc, &[SESSION_UPDATED]);
            }
            ClientEvent::ResponseCreate => {
                if self.active {
                    counts.errors.conversation_already_has_active_response += 1;
                    out.push_text(enc, &[ALREADY_ACTIVE]);
                } else if !self.greeted {
                    self.greeted = true;
                    out.push_text(enc, &[GREETING_CREATED]);
                    out.push_text(enc, &[GREETING_DELTA_HEAD, GREETING_AUDIO.as_bytes(), DELTA_END]);
                    out.push_text(enc, &[GREETING_DONE]);
                    self.create(enc, out, counts);
                } else {
                    self.tool = None;
                    self.create(enc, out, counts);
                }
            }
            ClientEvent::ResponseCancel => {
                if self.active {
                    counts.client_cancels += 1;
                    self.done(b"cancelled", Some(b"client_cancelled"), enc, out);
                } else {
                    counts.errors.response_cancel_not_active += 1;
                    out.push_text(enc, &[CANCEL_NOT_ACTIVE]);
                }
            }
            ClientEvent::Other { kind: b"conversation.item.truncate" } => {
                self.on_truncate(text, enc, out, counts, checks)
            }
            ClientEvent::Other { kind: b"conversation.item.create" } => {
                if memchr::memmem::find(text, br#""function_call_output""#).is_some() {
                    let want = self.tool.map(|n| self.call_id(n));
                    match (str_after(text, br#""call_id":""#), want) {
                        (Some(got), Some(want)) if got == want.as_slice() => counts.tool_outputs += 1,
                        _ => counts.tool_outputs_unknown += 1,
                    }
                    // The stub control plane's answer, passed on unchanged (escaped in `output`).
                    if memchr::memmem::find(text, br#"\"saved\":true"#).is_none() {
                        counts.tool_outputs_not_saved += 1;
                    }
                }
            }
            ClientEvent::Other { .. } | ClientEvent::Malformed => {}
        }
    }

    #[inline]
    fn on_append(&mut self, audio: &[u8], enc: &mut Encoder, out: &mut Outbox, counts: &mut SoakCounts) {
        let bytes = decoded_len(audio).unwrap_or(0);
        self.input_bytes += bytes as u64;
        if self.call.is_none() && audio.len() >= ID_B64_LEN {
            let mut id = [0u8; ID_B64_LEN / 4 * 3];
            if let Ok(raw) =
                base64_simd::STANDARD.decode(&audio[..ID_B64_LEN], base64_simd::Out::from_slice(&mut id))
            {
                self.call = FrameId::decode(raw).map(|f| f.call);
            }
        }
        if !self.active {
            if self.tool.is_some() {
                self.keep(audio, counts);
                return;
            }
            self.create(enc, out, counts);
        }
        self.delta(audio, bytes, enc, out);
    }

    fn keep(&mut self, audio: &[u8], counts: &mut SoakCounts) {
        let Some(n) = decoded_len(audio) else { return };
        let start = self.queue.len();
        if start + n > QUEUE_MAX {
            counts.queue_overflow_bytes += n as u64;
            return;
        }
        self.queue.resize(start + n, 0);
        if base64_simd::STANDARD
            .decode(audio, base64_simd::Out::from_slice(&mut self.queue[start..]))
            .is_err()
        {
            self.queue.truncate(start);
        }
    }

    #[inline]
    fn delta(&mut self, audio_b64: &[u8], bytes: usize, enc: &mut Encoder, out: &mut Outbox) {
        self.deltas += 1;
        let mut b = itoa::Buffer::new();
        out.push_text(enc, &[DELTA_HEAD, num(self.deltas, &mut b), &self.delta_mid, audio_b64, DELTA_END]);
        if let Some(item) = self.item_bytes.last_mut() {
            *item += bytes as u64;
        }
    }

    /// `{kind}_sk{session}_`: the start of this session's ids of a kind.
    fn id_prefix(&self, kind: &[u8]) -> Vec<u8> {
        let mut a = itoa::Buffer::new();
        [kind, b"_sk", num(self.sid, &mut a), b"_"].concat()
    }

    /// `{kind}_sk{session}_{n}`.
    fn ids(&self, kind: &[u8], n: u32) -> Vec<u8> {
        let mut b = itoa::Buffer::new();
        let mut id = self.id_prefix(kind);
        id.extend_from_slice(num(u64::from(n), &mut b));
        id
    }

    fn call_id(&self, n: u32) -> Vec<u8> {
        self.ids(b"call", n)
    }

    /// `response.created` and its audio item; the kept caller audio as its first delta.
    fn create(&mut self, enc: &mut Encoder, out: &mut Outbox, counts: &mut SoakCounts) {
        self.greeted = true;
        self.resp += 1;
        self.active = true;
        self.item_bytes.push(0);
        counts.responses += 1;
        let (r, i) = (self.ids(b"resp", self.resp), self.ids(b"item", self.resp));
        out.push_text(
            enc,
            &[
                br#"{"type":"response.created"#,
                EV,
                br#""response":{"object":"realtime.response","id":""#,
                &r,
                br#"","status":"in_progress","output":[]}}"#,
            ],
        );
        out.push_text(
            enc,
            &[
                br#"{"type":"response.output_item.added"#,
                EV,
                br#""response_id":""#,
                &r,
                br#"","output_index":0,"item":{"id":""#,
                &i,
                br#"","object":"realtime.item","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
            ],
        );
        self.delta_mid.clear();
        for part in [
            &br#"","response_id":""#[..],
            &r,
            br#"","item_id":""#,
            &i,
            br#"","output_index":0,"content_index":0,"delta":""#,
        ] {
            self.delta_mid.extend_from_slice(part);
        }
        if !self.queue.is_empty() {
            let mut b64 = std::mem::take(&mut self.b64);
            b64.clear();
            b64.resize(self.queue.len().div_ceil(3) * 4, 0);
            let n = base64_simd::STANDARD.encode(&self.queue, base64_simd::Out::from_slice(&mut b64)).len();
            let bytes = self.queue.len();
            self.delta(&b64[..n], bytes, enc, out);
            self.queue.clear();
            self.b64 = b64;
        }
    }

    /// `response.done` of the active response.
    fn done(&mut self, status: &[u8], reason: Option<&[u8]>, enc: &mut Encoder, out: &mut Outbox) {
        self.active = false;
        let r = self.ids(b"resp", self.resp);
        let details: &[&[u8]] = match reason {
            Some(reason) => &[br#""status_details":{"type":"cancelled","reason":""#, reason, br#""},"#],
            None => &[],
        };
        let mut parts: Vec<&[u8]> = vec![
            br#"{"type":"response.done"#,
            EV,
            br#""response":{"object":"realtime.response","id":""#,
            &r,
            br#"","status":""#,
            status,
            br#"","#,
        ];
        parts.extend_from_slice(details);
        parts.push(br#""output":[]}}"#);
        out.push_text(enc, &parts);
    }

    fn on_truncate(
        &mut self,
        text: &[u8],
        enc: &mut Encoder,
        out: &mut Outbox,
        counts: &mut SoakCounts,
        checks: &mut Checks,
    ) {
        let item = str_after(text, br#""item_id":""#).unwrap_or_default();
        let end_ms = number_after(text, br#""audio_end_ms":"#).unwrap_or(u64::MAX);
        let prefix = self.id_prefix(b"item");
        let have = if item == GREETING_ITEM {
            Some(GREETING_BYTES)
        } else {
            item.strip_prefix(prefix.as_slice())
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
                .and_then(|n| self.item_bytes.get(n.checked_sub(1)?).copied())
        };
        match have {
            None => {
                counts.errors.item_truncate_invalid_item_id += 1;
                out.push_text(enc, &[TRUNCATE_UNKNOWN]);
            }
            Some(bytes) if end_ms > bytes / 8 => {
                counts.errors.truncate_beyond_item_audio += 1;
                out.push_text(enc, &[TRUNCATE_BEYOND]);
            }
            Some(_) => {}
        }
        if let Some(call) = self.call {
            checks.truncate(call, u32::try_from(end_ms).unwrap_or(u32::MAX));
        }
    }

    /// The scheduled turns due at `now_ns` (the loop calls this about every 10 ms).
    pub fn on_tick(
        &mut self,
        now_ns: u64,
        enc: &mut Encoder,
        out: &mut Outbox,
        counts: &mut SoakCounts,
        checks: &mut Checks,
    ) {
        if let Some(at) = self.speak_at_ns {
            if now_ns >= at {
                self.speak_at_ns = None;
                self.speak(now_ns, enc, out, counts, checks);
            }
            return;
        }
        let Some(_) = self.call else { return };
        if !self.active || self.tool.is_some() {
            return;
        }
        if now_ns >= self.next_barge_ns {
            self.next_barge_ns = now_ns + draw(&mut self.rng, self.cfg.barge_every_ms);
            let burst = burst_b64();
            self.delta(burst, BURST_MS as usize * 8, enc, out);
            self.speak_at_ns = Some(now_ns + SPEAK_AFTER_MS * 1_000_000);
        } else if now_ns >= self.next_tool_ns {
            self.next_tool_ns = now_ns + draw(&mut self.rng, self.cfg.tool_every_ms);
            self.tool_call(enc, out, counts);
        }
    }

    /// The caller starts speaking during the burst: a barge-in.
    fn speak(
        &mut self,
        now_ns: u64,
        enc: &mut Encoder,
        out: &mut Outbox,
        counts: &mut SoakCounts,
        checks: &mut Checks,
    ) {
        self.turns += 1;
        counts.barge_ins += 1;
        if let Some(call) = self.call {
            checks.barge_in(call, now_ns);
        }
        let input_item = self.ids(b"item_in", self.turns);
        let at_ms = self.input_bytes / 8;
        let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
        out.push_text(
            enc,
            &[
                br#"{"type":"input_audio_buffer.speech_started"#,
                EV,
                br#""audio_start_ms":"#,
                num(at_ms, &mut a),
                br#","item_id":""#,
                &input_item,
                br#""}"#,
            ],
        );
        let interrupted = self.interrupts && self.active;
        if interrupted {
            self.done(b"cancelled", Some(b"turn_detected"), enc, out);
        }
        out.push_text(
            enc,
            &[
                br#"{"type":"input_audio_buffer.speech_stopped"#,
                EV,
                br#""audio_end_ms":"#,
                num(at_ms + 1, &mut b),
                br#","item_id":""#,
                &input_item,
                br#""}"#,
            ],
        );
        out.push_text(
            enc,
            &[
                br#"{"type":"input_audio_buffer.committed"#,
                EV,
                br#""previous_item_id":null,"item_id":""#,
                &input_item,
                br#""}"#,
            ],
        );
        if interrupted {
            // `create_response`: the server answers the turn.
            self.create(enc, out, counts);
        }
    }

    /// The active response ends with a `save_lead` call.
    fn tool_call(&mut self, enc: &mut Encoder, out: &mut Outbox, counts: &mut SoakCounts) {
        self.tools_made += 1;
        let n = self.tools_made;
        counts.tool_calls += 1;
        let r = self.ids(b"resp", self.resp);
        let i = self.ids(b"item_fc", n);
        let c = self.call_id(n);
        let item = |status: &'static [u8], args: &'static [u8]| -> [&[u8]; 9] {
            [
                br#"","output_index":1,"item":{"id":""#,
                &i,
                br#"","object":"realtime.item","type":"function_call","status":""#,
                status,
                br#"","name":"save_lead","call_id":""#,
                &c,
                br#"","arguments":""#,
                args,
                br#""}}"#,
            ]
        };
        let args = |name: &'static [u8]| -> [&[u8]; 8] {
            [
                br#"","item_id":""#,
                &i,
                br#"","output_index":1,"call_id":""#,
                &c,
                br#"","#,
                name,
                ARGS,
                br#""}"#,
            ]
        };
        let mut event = |kind: &[u8], rest: &[&[u8]]| {
            let mut parts: Vec<&[u8]> = vec![br#"{"type":""#, kind, EV, br#""response_id":""#, &r];
            parts.extend_from_slice(rest);
            out.push_text(enc, &parts);
        };
        event(b"response.output_item.added", &item(b"in_progress", b""));
        event(b"response.function_call_arguments.delta", &args(br#""delta":""#));
        event(b"response.function_call_arguments.done", &args(br#""name":"save_lead","arguments":""#));
        event(b"response.output_item.done", &item(b"completed", ARGS));
        self.done(b"completed", None, enc, out);
        self.tool = Some(n);
    }
}

/// 400 ms of μ-law silence, base64 (built once).
fn burst_b64() -> &'static [u8] {
    static BURST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BURST.get_or_init(|| base64_simd::STANDARD.encode_type::<Vec<u8>>(&[SILENCE; BURST_MS as usize * 8]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::frame::FrameTemplate;
    use callway_gateway::core::buf::RecvBuf;
    use callway_gateway::core::openai::parse_server_event;
    use callway_gateway::core::ws::{Decoded, Decoder, Limits, Message, Role};
    use serde_json::Value;

    const MS: u64 = 1_000_000;

    struct Bench {
        script: Script,
        enc: Encoder,
        out: Outbox,
        counts: SoakCounts,
        checks: Checks,
    }

    impl Bench {
        fn new(session_update: &str) -> Self {
            let cfg = ScriptConfig { barge_every_ms: 1000, tool_every_ms: 3000 };
            let mut b = Bench {
                script: Script::new(cfg, 3, 9, 0),
                enc: Encoder::server(),
                out: Outbox::default(),
                counts: SoakCounts::default(),
                checks: Checks::new(8),
            };
            b.client(session_update);
            b.events();
            b
        }

        fn client(&mut self, text: &str) {
            self.script.on_client(
                text.as_bytes(),
                &mut self.enc,
                &mut self.out,
                &mut self.counts,
                &mut self.checks,
            );
        }

        fn tick(&mut self, now: u64) {
            self.script.on_tick(now, &mut self.enc, &mut self.out, &mut self.counts, &mut self.checks);
        }

        /// The server events written since the last call: each valid against the GA schema and
        /// read by the gateway's own parser.
        fn events(&mut self) -> Vec<Value> {
            let mut wire = Vec::new();
            self.out.flush(&mut wire).unwrap();
            let mut buf = RecvBuf::with_capacity(1 << 20);
            buf.push(&wire);
            let mut dec = Decoder::new(Role::Client, Limits::OPENAI);
            let mut out = Vec::new();
            while let Ok(Decoded::Frame { consumed, message }) = dec.decode(&mut buf) {
                if let Some(Message::Text(t)) = message {
                    let v: Value = serde_json::from_slice(t).unwrap();
                    callway_sim_openai::schema::validate_server_event(&v)
                        .unwrap_or_else(|e| panic!("{e}: {v}"));
                    let mut raw = t.to_vec();
                    parse_server_event(&mut raw).unwrap_or_else(|e| panic!("{e:?}: {v}"));
                    out.push(v);
                }
                buf.consume(consumed);
            }
            out
        }
    }

    fn kinds(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    /// An append of call `call`'s frame `seq` (20 ms).
    fn append(call: u32, seq: u32) -> String {
        let t = FrameTemplate::new(20);
        let id = FrameId { call, seq }.encode_b64();
        let audio = [&id[..], &t.tail_b64].concat();
        format!(r#"{{"type":"input_audio_buffer.append","audio":"{}"}}"#, String::from_utf8(audio).unwrap())
    }

    const SERVER_VAD: &str = r#"{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","interrupt_response":true}}}}}"#;

    fn greeted(update: &str) -> Bench {
        let mut b = Bench::new(update);
        b.client(r#"{"type":"response.create"}"#);
        let ev = b.events();
        assert_eq!(
            kinds(&ev),
            [
                "response.created",
                "response.output_audio.delta",
                "response.done",
                "response.created",
                "response.output_item.added"
            ]
        );
        b.client(&append(5, 0));
        let ev = b.events();
        assert_eq!(kinds(&ev), ["response.output_audio.delta"]);
        assert_eq!(ev[0]["response_id"], "resp_sk3_1");
        assert_eq!(b.script.call(), Some(5), "the call is read from the frame id");
        b
    }

    #[test]
    fn a_barge_in_with_interrupt_response_is_cancelled_by_the_server() {
        let mut b = greeted(SERVER_VAD);
        b.tick(2000 * MS);
        let ev = b.events();
        assert_eq!(kinds(&ev), ["response.output_audio.delta"], "the burst first");
        assert_eq!(ev[0]["delta"].as_str().unwrap().len(), (BURST_MS as usize * 8).div_ceil(3) * 4);
        assert!(b.script.droppable(2000 * MS).is_none(), "not during a turn");
        b.tick(2100 * MS);
        assert!(b.events().is_empty(), "the caller speaks 200 ms into the burst");
        b.tick(2200 * MS);
        let ev = b.events();
        assert_eq!(
            kinds(&ev),
            [
                "input_audio_buffer.speech_started",
                "response.done",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "response.created",
                "response.output_item.added"
            ]
        );
        assert_eq!(ev[1]["response"]["status_details"]["reason"], "turn_detected");
        assert_eq!(b.checks.counts.barge_ins, 1);
        // The gateway must not cancel: the new response would be cancelled, and the one after
        // that finds nothing active.
        b.client(r#"{"type":"response.cancel"}"#);
        b.client(r#"{"type":"response.cancel"}"#);
        let ev = b.events();
        assert_eq!(kinds(&ev), ["response.done", "error"]);
        assert_eq!(ev[1]["error"]["code"], "response_cancel_not_active");
        assert_eq!((b.counts.client_cancels, b.counts.errors.response_cancel_not_active), (1, 1));
        // Truncates: within the item's 20 + 400 ms, beyond it, an unknown item.
        b.client(r#"{"type":"conversation.item.truncate","item_id":"item_sk3_1","content_index":0,"audio_end_ms":420}"#);
        b.client(r#"{"type":"conversation.item.truncate","item_id":"item_sk3_1","content_index":0,"audio_end_ms":421}"#);
        b.client(r#"{"type":"conversation.item.truncate","item_id":"item_sk9_1","content_index":0,"audio_end_ms":0}"#);
        let ev = b.events();
        assert_eq!(kinds(&ev), ["error", "error"]);
        assert_eq!(
            (ev[0]["error"]["code"].as_str(), ev[1]["error"]["code"].as_str()),
            (Some("invalid_value"), Some("item_truncate_invalid_item_id"))
        );
        assert_eq!(b.counts.errors.total(), 3);
    }

    #[test]
    fn without_interrupt_response_the_client_cancels() {
        let update = r#"{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","interrupt_response":false}}}}}"#;
        let mut b = greeted(update);
        b.tick(2000 * MS);
        b.tick(2200 * MS);
        let ev = b.events();
        assert_eq!(
            kinds(&ev)[1..],
            [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed"
            ]
        );
        b.client(r#"{"type":"response.cancel"}"#);
        let ev = b.events();
        assert_eq!(kinds(&ev), ["response.done"]);
        assert_eq!(ev[0]["response"]["status_details"]["reason"], "client_cancelled");
        // The next caller audio opens a response (server VAD's create_response).
        b.client(&append(5, 1));
        assert_eq!(
            kinds(&b.events()),
            ["response.created", "response.output_item.added", "response.output_audio.delta"]
        );
        assert_eq!(b.counts.errors.total(), 0);
    }

    #[test]
    fn a_tool_call_waits_for_its_output_and_keeps_the_caller_audio() {
        let mut b = greeted(SERVER_VAD);
        b.script.next_barge_ns = u64::MAX;
        b.tick(5000 * MS);
        let ev = b.events();
        assert_eq!(
            kinds(&ev),
            [
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.done"
            ]
        );
        let call_id = ev[2]["call_id"].as_str().unwrap().to_owned();
        assert_eq!(ev[2]["name"], "save_lead");
        let args: Value = serde_json::from_str(ev[2]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["first_name"], "Camille");
        // Audio during the tool call is kept, not echoed under no response.
        b.client(&append(5, 1));
        b.client(&append(5, 2));
        assert!(b.events().is_empty());
        b.client(&format!(
            r#"{{"type":"conversation.item.create","item":{{"type":"function_call_output","call_id":"{call_id}","output":"{{\"saved\":true}}"}}}}"#
        ));
        b.client(r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_x","output":"{}"}}"#);
        b.client(r#"{"type":"response.create"}"#);
        b.client(r#"{"type":"response.create"}"#);
        let ev = b.events();
        assert_eq!(
            kinds(&ev),
            ["response.created", "response.output_item.added", "response.output_audio.delta", "error"]
        );
        let kept = base64_simd::STANDARD.decode_to_vec(ev[2]["delta"].as_str().unwrap()).unwrap();
        assert_eq!(kept.len(), 320);
        assert_eq!(
            (FrameId::decode(&kept), FrameId::decode(&kept[160..])),
            (Some(FrameId { call: 5, seq: 1 }), Some(FrameId { call: 5, seq: 2 }))
        );
        assert_eq!(ev[3]["error"]["code"], "conversation_already_has_active_response");
        assert_eq!((b.counts.tool_calls, b.counts.tool_outputs, b.counts.tool_outputs_unknown), (1, 1, 1));
        assert_eq!(b.counts.tool_outputs_not_saved, 1, "call_x's output was not the control plane's");
        assert_eq!(b.script.droppable(5000 * MS), Some(5));
    }
}
