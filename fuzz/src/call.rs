//! The call state machine harness (`call_state_machine` target): arbitrary interleavings of
//! Twilio bytes and events, OpenAI bytes and events, connects and drops, tool results, clock
//! steps and shutdowns, driven into one [`Call`] the way the shell drives it, with its
//! invariants checked after every step:
//!
//! - it never panics, and never stops without a timer while it is not closed;
//! - every byte it transmits parses, for its peer, as an upgrade request (OpenAI, once per
//!   connection) then valid WebSocket frames (masked towards OpenAI, unmasked towards Twilio);
//! - after a Twilio `clear`, no agent audio of the response it flushed is sent again (the
//!   response is named in the `mark` after each chunk);
//! - a `conversation.item.truncate` never goes past the audio that item received in this
//!   session, nor past what was sent to Twilio;
//! - at most one OpenAI connection at a time: no second `OpenUpstream` before the first one
//!   was answered (connected or failed);
//! - whatever happened, the call is closed once its longest deadline has passed, and sends
//!   nothing after that.
//!
//! Input: a sequence of operations read with `arbitrary` (see [`Op`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::call::{Call, CallConfig, CallState, Event, Peer, TurnTaking};
use callway_gateway::core::ws::upgrade::{self, Parse};
use callway_gateway::core::ws::{Decoded, Decoder, Limits, Message, Role};
use callway_gateway::samples;
use contract::internal_api::CallContext;

/// One step of the scenario.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// Raw bytes from Twilio (anything: broken frames, garbage).
    TwilioRaw(Vec<u8>),
    /// A well-formed Twilio event.
    Twilio(TwilioOp),
    /// Raw bytes from OpenAI.
    OpenAiRaw(Vec<u8>),
    /// A well-formed OpenAI server event.
    OpenAi(OpenAiOp),
    /// The OpenAI connection the call asked for: connected (true) or failed (false).
    Connect(bool),
    /// The OpenAI socket drops.
    DropOpenAi,
    /// A tool the call asked for finishes (index into the calls asked for, ok).
    ToolResult(u8, bool),
    /// Time passes (ms, scaled).
    Advance(u16),
    /// The gateway drains.
    Shutdown,
}

/// Twilio events, with small id spaces so they collide.
#[derive(Debug, Arbitrary)]
pub enum TwilioOp {
    /// `connected`.
    Connected,
    /// `start` (stream 0 is the call's own, others are foreign).
    Start(u8),
    /// `media`: stream, sequence step, timestamp step, loud or silent, ms.
    Media { stream: u8, seq_step: u8, ts_step: u8, loud: bool, ms: u8 },
    /// Echo the n-th mark received (or a made-up name).
    Mark(u8),
    /// `dtmf`.
    Dtmf(u8),
    /// `stop` (stream 0 is the call's own).
    Stop(u8),
    /// A ping.
    Ping,
    /// A close frame.
    Close,
}

/// OpenAI server events, with small id spaces.
#[derive(Debug, Arbitrary)]
pub enum OpenAiOp {
    /// `session.created`.
    SessionCreated,
    /// `response.created` of response r.
    ResponseCreated(u8),
    /// An audio delta of response r, item i, `ms`.
    Delta { response: u8, item: u8, ms: u8 },
    /// `response.done` of response r (cancelled or completed).
    ResponseDone(u8, bool),
    /// `input_audio_buffer.speech_started`.
    SpeechStarted,
    /// A function call (0: save_lead, 1: end_call, else unknown).
    FunctionCall(u8),
    /// An `error` event (0: session_expired, 1: conversation_already_has_active_response,
    /// else another).
    Error(u8),
    /// A transcript.
    Transcript,
    /// A ping.
    Ping,
    /// A close frame.
    Close,
}

const STREAM: &str = "MZ18ad3ab5a668481ce02b83e7395059f0";
const CALL_SID: &str = "CA0000000000000000000000000000000a";

fn stream_sid(n: u8) -> String {
    if n.is_multiple_of(4) { STREAM.to_owned() } else { format!("MZ{n:032x}") }
}

/// One of the call's peers, as it receives what the call sends (decoded as it goes).
struct Side {
    dec: Decoder,
    rx: RecvBuf,
    /// Text messages received.
    texts: Vec<String>,
    /// Still waiting for the upgrade request (OpenAI side).
    handshake: bool,
}

impl Side {
    fn new(role: Role, limits: Limits, handshake: bool) -> Self {
        Self {
            dec: Decoder::new(role, limits),
            rx: RecvBuf::with_capacity(4 << 20),
            texts: Vec::new(),
            handshake,
        }
    }

    /// Takes bytes the call sent; panics on anything its peer could not parse.
    fn take(&mut self, bytes: &[u8]) -> Option<[u8; 24]> {
        assert_eq!(self.rx.push(bytes), bytes.len(), "harness receive buffer too small");
        let mut key = None;
        if self.handshake {
            match upgrade::parse_request(self.rx.data()).expect("the call's upgrade request is valid") {
                Parse::Partial => return None,
                Parse::Complete(req) => {
                    let mut k = [0u8; 24];
                    k.copy_from_slice(req.key.as_bytes());
                    key = Some(k);
                    let n = req.head_len;
                    self.rx.consume(n);
                    self.handshake = false;
                }
            }
        }
        loop {
            match self.dec.decode(&mut self.rx).expect("the call sent a frame its peer cannot decode") {
                Decoded::Incomplete { .. } => break,
                Decoded::Frame { consumed, message } => {
                    if let Some(Message::Text(t)) = message {
                        self.texts.push(String::from_utf8(t.to_vec()).expect("text frames are UTF-8"));
                    }
                    self.rx.consume(consumed);
                }
            }
        }
        key
    }
}

/// The scenario's world: the call, both peers as it sees them, and what the checks need.
struct World {
    call: Call,
    now: Instant,
    start: Instant,
    down: RecvBuf,
    up: RecvBuf,
    twilio: Side,
    openai: Option<Side>,
    /// The call asked for a connection and has not been answered yet (since when).
    open_pending: Option<Instant>,
    /// How long the call waits for a connection before it gives up on it.
    connect_timeout: Duration,
    /// The current OpenAI connection is past its handshake.
    openai_open: bool,
    tools: Vec<String>,
    marks_seen: Vec<String>,
    /// Mark labels' response numbers flushed by a `clear`.
    flushed: Vec<u32>,
    /// Audio ms each item received on the current connection.
    item_ms: HashMap<String, u64>,
    /// Audio ms sent to Twilio, by mark response number.
    sent_ms: HashMap<u32, u64>,
    twilio_seq: u64,
    twilio_ts: u64,
    /// Marks sent when the call closed.
    closed_at: Option<usize>,
    deltas: u64,
}

impl World {
    fn new(cfg: CallConfig) -> Self {
        let now = Instant::now();
        let cfg_silence = cfg.openai_silence_timeout;
        let ctx = CallContext {
            call_id: "5f0c7a1e-0000-4000-8000-000000000001".into(),
            lead_id: "5f0c7a1e-0000-4000-8000-000000000002".into(),
            first_name: "Zoé".into(),
            summary: "Intéressée.".into(),
            language: "fr".into(),
            voice: "marin".into(),
            instructions: "Tu es Claire.".into(),
            transfer: false,
            web_transcript: Vec::new(),
        };
        let mut w = Self {
            call: Call::new(cfg, ctx, now),
            now,
            start: now,
            down: RecvBuf::with_capacity(256 * 1024),
            up: RecvBuf::with_capacity(2 << 20),
            twilio: Side::new(Role::Client, Limits::TWILIO, false),
            openai: None,
            open_pending: None,
            connect_timeout: cfg_silence,
            openai_open: false,
            tools: Vec::new(),
            marks_seen: Vec::new(),
            flushed: Vec::new(),
            item_ms: HashMap::new(),
            sent_ms: HashMap::new(),
            twilio_seq: 1,
            twilio_ts: 0,
            closed_at: None,
            deltas: 0,
        };
        w.settle();
        w
    }

    /// Exchanges bytes and events until nothing moves, checking each.
    fn settle(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(bytes) = self.call.poll_transmit(Peer::Twilio) {
                let bytes = bytes.to_vec();
                self.twilio.take(&bytes);
                self.call.transmitted(Peer::Twilio, bytes.len());
                moved = true;
            }
            let n = self.twilio.texts.len();
            let new: Vec<String> = self.twilio.texts.drain(..n).collect();
            for t in new {
                self.check_twilio(&t);
            }
            while let Some(bytes) = self.call.poll_transmit(Peer::OpenAi) {
                let bytes = bytes.to_vec();
                if let Some(peer) = self.openai.as_mut()
                    && let Some(key) = peer.take(&bytes)
                {
                    // Accept the upgrade.
                    let key = std::str::from_utf8(&key).expect("base64 key");
                    let mut out = [0u8; 256];
                    let n = upgrade::write_accept(&mut out, key).expect("fits");
                    self.up.push(&out[..n]);
                    self.openai_open = true;
                    self.item_ms.clear();
                    let _ = self.call.handle_upstream(&mut self.up, self.now);
                }
                self.call.transmitted(Peer::OpenAi, bytes.len());
                moved = true;
            }
            if let Some(peer) = self.openai.as_mut() {
                let n = peer.texts.len();
                let new: Vec<String> = peer.texts.drain(..n).collect();
                for t in new {
                    self.check_openai(&t);
                }
            }
            if !self.down.is_empty() {
                let _ = self.call.handle_downstream(&mut self.down, self.now);
            }
            if !self.up.is_empty() {
                let _ = self.call.handle_upstream(&mut self.up, self.now);
            }
            while let Some(e) = self.call.poll_event() {
                moved = true;
                match e {
                    Event::OpenUpstream => {
                        // One connection at a time: a new one only once the previous attempt
                        // was answered, or given up on after its timeout. (Bytes for the new
                        // connection must then start with its own upgrade request: `Side`.)
                        if let Some(since) = self.open_pending {
                            assert!(
                                self.now >= since + self.connect_timeout,
                                "a second OpenAI connection asked for while the first is still being opened"
                            );
                        }
                        self.open_pending = Some(self.now);
                        self.openai = None;
                        self.openai_open = false;
                        self.up.consume(self.up.len());
                    }
                    Event::ToolCall { call_id, .. } => self.tools.push(call_id),
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
        self.check_closed_is_final();
    }

    fn check_twilio(&mut self, text: &str) {
        if text.contains(r#""event":"clear""#) {
            // The response of the last mark sent is flushed.
            if let Some(r) = self.marks_seen.last().and_then(|m| mark_response(m)) {
                self.flushed.push(r);
            }
        } else if text.contains(r#""event":"mark""#) {
            let name = between(text, r#""name":""#, "\"").to_owned();
            if let Some(r) = mark_response(&name) {
                assert!(
                    !self.flushed.contains(&r),
                    "agent audio of a flushed response after its clear: {name}"
                );
                let end: u64 = name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let e = self.sent_ms.entry(r).or_default();
                *e = (*e).max(end);
            }
            self.marks_seen.push(name);
        }
    }

    fn check_openai(&mut self, text: &str) {
        if text.contains(r#""type":"conversation.item.truncate""#) {
            let item = between(text, r#""item_id":""#, "\"");
            let at: u64 = between(text, r#""audio_end_ms":"#, "}").trim().parse().expect("audio_end_ms");
            let generated = self.item_ms.get(item).copied().unwrap_or(0);
            assert!(
                at <= generated,
                "truncate {item} at {at} ms, but it holds {generated} ms in this session"
            );
            let max_sent = self.sent_ms.values().copied().max().unwrap_or(0);
            assert!(at <= max_sent.max(generated), "truncate at {at} ms beyond anything sent to Twilio");
        }
    }

    fn check_closed_is_final(&mut self) {
        let sent = self.marks_seen.len();
        if matches!(self.call.state(), CallState::Closed(_)) {
            assert_eq!(self.call.poll_timeout(), None, "a closed call keeps no timer");
            match self.closed_at {
                None => self.closed_at = Some(sent),
                Some(at) => assert_eq!(at, sent, "agent audio sent after the end"),
            }
        } else {
            assert!(self.call.poll_timeout().is_some(), "an open call without a timer could hang for ever");
        }
    }

    fn twilio_send(&mut self, json: &str) {
        self.down.push(&samples::client_text_frame(json));
        let _ = self.call.handle_downstream(&mut self.down, self.now);
        self.settle();
    }

    fn openai_send(&mut self, json: &str) {
        if !self.openai_open {
            return;
        }
        self.up.push(&samples::server_text_frame(json));
        let _ = self.call.handle_upstream(&mut self.up, self.now);
        self.settle();
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..10_000 {
            match self.call.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.call.handle_timeout(self.now);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = target;
        self.settle();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::TwilioRaw(bytes) => {
                self.down.push(&bytes);
                let _ = self.call.handle_downstream(&mut self.down, self.now);
                self.settle();
            }
            Op::Twilio(t) => self.twilio_op(t),
            Op::OpenAiRaw(bytes) => {
                if self.openai_open {
                    self.up.push(&bytes);
                    let _ = self.call.handle_upstream(&mut self.up, self.now);
                    self.settle();
                }
            }
            Op::OpenAi(o) => self.openai_op(o),
            Op::Connect(ok) => {
                if self.open_pending.is_some() {
                    self.open_pending = None;
                    if ok {
                        self.openai = Some(Side::new(Role::Server, Limits::OPENAI, true));
                        self.call.upstream_connected(self.now);
                    } else {
                        self.call.upstream_closed(self.now);
                    }
                    self.settle();
                }
            }
            Op::DropOpenAi => {
                if self.openai.take().is_some() {
                    self.openai_open = false;
                    self.up.consume(self.up.len());
                    self.call.upstream_closed(self.now);
                    self.settle();
                }
            }
            Op::ToolResult(i, ok) => {
                if !self.tools.is_empty() {
                    let id = self.tools.remove(usize::from(i) % self.tools.len());
                    self.call.tool_result(&id, ok, r#"{"ok":true}"#, self.now);
                    self.settle();
                }
            }
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms) * 4)),
            Op::Shutdown => {
                self.call.shutdown(self.now);
                self.settle();
            }
        }
    }

    fn twilio_op(&mut self, t: TwilioOp) {
        self.twilio_seq += 1;
        let seq = self.twilio_seq;
        let json = match t {
            TwilioOp::Connected => r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned(),
            TwilioOp::Start(n) => samples::twilio_start(CALL_SID, "tok").replace(STREAM, &stream_sid(n)),
            TwilioOp::Media { stream, seq_step, ts_step, loud, ms } => {
                self.twilio_seq += u64::from(seq_step % 4);
                let ms = 20 * (1 + u64::from(ms % 5));
                self.twilio_ts =
                    self.twilio_ts.saturating_add(u64::from(ts_step % 8) * 20).saturating_sub(20);
                let audio =
                    if loud { samples::ulaw_tone(ms as usize * 8) } else { vec![0xff; ms as usize * 8] };
                let json = format!(
                    r#"{{"event":"media","sequenceNumber":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{}"}},"streamSid":"{}"}}"#,
                    self.twilio_seq,
                    self.twilio_seq,
                    self.twilio_ts,
                    samples::base64(&audio),
                    stream_sid(stream)
                );
                self.twilio_ts += ms;
                json
            }
            TwilioOp::Mark(n) => {
                let name = if self.marks_seen.is_empty() {
                    format!("r{n}-c1-{}", u32::from(n) * 100)
                } else {
                    self.marks_seen[usize::from(n) % self.marks_seen.len()].clone()
                };
                samples::twilio_mark(seq, &name)
            }
            TwilioOp::Dtmf(d) => format!(
                r#"{{"event":"dtmf","streamSid":"{STREAM}","sequenceNumber":"{seq}","dtmf":{{"track":"inbound_track","digit":"{}"}}}}"#,
                d % 10
            ),
            TwilioOp::Stop(n) => format!(
                r#"{{"event":"stop","sequenceNumber":"{seq}","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"{CALL_SID}"}},"streamSid":"{}"}}"#,
                stream_sid(n)
            ),
            TwilioOp::Ping => {
                self.down.push(&masked_control(0x9, b"p"));
                let _ = self.call.handle_downstream(&mut self.down, self.now);
                self.settle();
                return;
            }
            TwilioOp::Close => {
                self.down.push(&masked_control(0x8, &[0x03, 0xe8]));
                let _ = self.call.handle_downstream(&mut self.down, self.now);
                self.settle();
                return;
            }
        };
        self.twilio_send(&json);
    }

    fn openai_op(&mut self, o: OpenAiOp) {
        let json = match o {
            OpenAiOp::SessionCreated => {
                r#"{"type":"session.created","event_id":"e","session":{"type":"realtime"}}"#.to_owned()
            }
            OpenAiOp::ResponseCreated(r) => format!(
                r#"{{"type":"response.created","event_id":"e","response":{{"id":"resp_{}","object":"realtime.response","status":"in_progress","output":[]}}}}"#,
                r % 4
            ),
            OpenAiOp::Delta { response, item, ms } => {
                let ms = 20 * (1 + u64::from(ms % 12));
                let item = format!("item_{}", item % 3);
                if self.openai_open {
                    *self.item_ms.entry(item.clone()).or_default() += ms;
                }
                self.deltas += 1;
                format!(
                    r#"{{"type":"response.output_audio.delta","event_id":"event_{}","response_id":"resp_{}","item_id":"{item}","output_index":0,"content_index":0,"delta":"{}"}}"#,
                    self.deltas,
                    response % 4,
                    samples::base64(&samples::ulaw_tone(ms as usize * 8))
                )
            }
            OpenAiOp::ResponseDone(r, cancelled) => format!(
                r#"{{"type":"response.done","event_id":"e","response":{{"id":"resp_{}","status":"{}","output":[]}}}}"#,
                r % 4,
                if cancelled { "cancelled" } else { "completed" }
            ),
            OpenAiOp::SpeechStarted => {
                r#"{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1000,"item_id":"item_user"}"#
                    .to_owned()
            }
            OpenAiOp::FunctionCall(n) => format!(
                r#"{{"type":"response.function_call_arguments.done","event_id":"e","response_id":"resp_t","item_id":"item_fc","output_index":0,"call_id":"call_{}","name":"{}","arguments":"{{}}"}}"#,
                self.deltas,
                ["save_lead", "end_call", "other"][usize::from(n % 3)]
            ),
            OpenAiOp::Error(n) => format!(
                r#"{{"type":"error","event_id":"e","error":{{"type":"invalid_request_error","code":"{}","message":"m","param":null,"event_id":null}}}}"#,
                ["session_expired", "conversation_already_has_active_response", "invalid_value"][usize::from(n % 3)]
            ),
            OpenAiOp::Transcript => r#"{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"transcript":"Bonjour"}"#.to_owned(),
            OpenAiOp::Ping => {
                if self.openai_open {
                    self.up.push(&[0x89, 0x01, b'p']);
                    let _ = self.call.handle_upstream(&mut self.up, self.now);
                    self.settle();
                }
                return;
            }
            OpenAiOp::Close => {
                if self.openai_open {
                    self.up.push(&[0x88, 0x02, 0x03, 0xe8]);
                    let _ = self.call.handle_upstream(&mut self.up, self.now);
                    self.settle();
                }
                return;
            }
        };
        self.openai_send(&json);
    }
}

/// A masked control frame (Twilio → gateway frames are masked).
fn masked_control(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// The response number of a mark label `r{n}-c{chunk}-{ms}`.
fn mark_response(name: &str) -> Option<u32> {
    name.strip_prefix('r')?.split('-').next()?.parse().ok()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let Some(i) = text.find(start) else { return "" };
    let rest = &text[i + start.len()..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The whole target: a configuration, then up to 200 operations, then the longest deadline.
pub fn fuzz(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u.int_in_range(0u8..=5) else { return };
    let cfg = CallConfig {
        openai_api_key: "sk-fuzz".into(),
        seed: [7; 32],
        turn_detection: match mode % 3 {
            0 => TurnTaking::ServerVad,
            1 => TurnTaking::SemanticVad { eagerness: callway_gateway::core::call::Eagerness::Auto },
            _ => TurnTaking::Off,
        },
        greeting_interruptible: mode < 3,
        twilio_send_capacity: 16 * 1024,
        ..CallConfig::default()
    };
    let max_call = cfg.max_call;
    let after_end = cfg.goodbye_timeout + cfg.drain_timeout + cfg.openai_silence_timeout;
    let mut w = World::new(cfg);
    for _ in 0..200 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        w.apply(op);
        if u.is_empty() {
            break;
        }
    }
    // Whatever happened, the call ends within its deadlines.
    let deadline = w.start + max_call + after_end + Duration::from_secs(1);
    if w.now < deadline {
        let rest = deadline - w.now;
        w.advance(rest);
    }
    assert!(
        matches!(w.call.state(), CallState::Closed(_)),
        "still {:?} after the longest deadline",
        w.call.state()
    );
}
