//! A quinn-style `Pair` for call tests: a [`Call`] between a scripted Twilio (sends masked
//! frames, reads ours) and a scripted OpenAI (answers the upgrade, sends unmasked frames, reads
//! our masked ones), on a fake clock. Every event the call sends OpenAI is checked against the
//! official GA client-event schema as it is received.
#![allow(dead_code, reason = "each test file uses a part of the harness")]

mod server_rules;
pub use server_rules::ServerRules;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callway_gateway::core::buf::RecvBuf;
use callway_gateway::core::call::{Call, CallConfig, CallContext, Event, Handled, Peer};
use callway_gateway::core::ws::upgrade::{self, Parse};
use callway_gateway::core::ws::{Data, Decoded, Decoder, Encoder, Limits, Message, OpCode, Role};
use callway_gateway::samples;
use serde_json::Value;

pub use callway_gateway::samples::STREAM_SID;

/// The schema validator, compiled once per test binary.
fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/schemas/openai-realtime-client-events.schema.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .expect("schema compiles")
    })
}

/// What a fake peer received that was not a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame's code.
    Close(Option<u16>),
}

/// One end of the pair.
pub struct Fake {
    enc: Encoder,
    rx: RecvBuf,
    dec: Decoder,
    /// Text messages received, parsed.
    pub got: Vec<Value>,
    /// Control frames received.
    pub control: Vec<Control>,
}

impl Fake {
    fn new(enc: Encoder, role: Role) -> Self {
        Self {
            enc,
            rx: RecvBuf::with_capacity(2 * 1024 * 1024),
            dec: Decoder::new(role, Limits::OPENAI),
            got: Vec::new(),
            control: Vec::new(),
        }
    }

    fn frame(&mut self, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; payload.len() + 14];
        let n = self.enc.frame_parts(&mut out, opcode, true, &[payload]).expect("sized");
        out.truncate(n);
        out
    }

    /// Decodes every complete frame received; returns the text messages' JSON.
    fn decode_all(&mut self) -> Vec<Value> {
        let mut texts = Vec::new();
        loop {
            match self.dec.decode(&mut self.rx) {
                Ok(Decoded::Frame { consumed, message }) => {
                    match message {
                        Some(Message::Text(t)) => {
                            texts.push(serde_json::from_slice(t).expect("the call sends JSON"));
                        }
                        Some(Message::Ping(p)) => self.control.push(Control::Ping(p.to_vec())),
                        Some(Message::Pong(p)) => self.control.push(Control::Pong(p.to_vec())),
                        Some(Message::Close(c)) => self.control.push(Control::Close(c.map(|(code, _)| code))),
                        Some(Message::Binary(_)) => panic!("the call never sends binary"),
                        None => {}
                    }
                    self.rx.consume(consumed);
                }
                Ok(Decoded::Incomplete { .. }) => return texts,
                Err(e) => panic!("the call sent an invalid frame: {e}"),
            }
        }
    }

    /// Received messages of this `event` (Twilio) or `type` (OpenAI).
    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.got.iter().filter(|v| v["event"] == kind || v["type"] == kind).collect()
    }

    /// Forgets what was received so far.
    pub fn clear(&mut self) {
        self.got.clear();
        self.control.clear();
    }
}

/// How the fake OpenAI answers upgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `101` at once.
    Accept,
    /// This HTTP status.
    Refuse(u16),
    /// Nothing (the test answers).
    Hold,
}

/// The `callSid` of the test call's `start`.
pub const CALL_SID: &str = "CA0000000000000000000000000000000a";

/// The pair: the call, both fakes, the clock, the events.
pub struct Pair {
    /// The call under test.
    pub call: Call,
    /// Fake time.
    pub now: Instant,
    epoch: Instant,
    down: RecvBuf,
    up: RecvBuf,
    /// Twilio's end.
    pub twilio: Fake,
    /// OpenAI's end.
    pub openai: Fake,
    /// Upgrade requests OpenAI received (heads, as text).
    pub upgrades: Vec<String>,
    openai_connected: bool,
    /// The fake OpenAI is past the handshake of the current connection.
    openai_open: bool,
    /// How the next upgrade is answered.
    pub answer: Answer,
    /// Connect automatically when the call asks for an upstream.
    pub auto_connect: bool,
    /// Every event the call emitted, in order.
    pub events: Vec<Event>,
    delta_seq: u64,
    twilio_seq: u64,
    /// `media.chunk` and `media.timestamp` of the next caller frame.
    media_chunk: u64,
    media_ms: u64,
    /// The real server's rules, applied to every event the call sends.
    pub server: ServerRules,
}

/// A context as the control plane returns it.
pub fn context() -> CallContext {
    CallContext {
        call_id: "5f0c7a1e-0000-4000-8000-000000000001".into(),
        lead_id: "5f0c7a1e-0000-4000-8000-000000000002".into(),
        first_name: "Zoé".into(),
        summary: "Intéressée par l'offre pro, veut un rappel.".into(),
        language: "fr".into(),
        voice: "marin".into(),
        instructions: "Tu es Claire, de Callway. Tu appelles Zoé. Résumé : offre pro.".into(),
        transfer: false,
        web_transcript: Vec::new(),
    }
}

/// A configuration with test values (deterministic seed).
pub fn config() -> CallConfig {
    CallConfig { openai_api_key: "sk-test".into(), seed: [7; 32], ..CallConfig::default() }
}

/// Base64 of `ms` of a loud tone.
pub fn tone_b64(ms: usize) -> String {
    samples::base64(&samples::ulaw_tone(ms * 8))
}

/// Base64 of `ms` of μ-law silence (0xff decodes to 0).
pub fn silence_b64(ms: usize) -> String {
    samples::base64(&vec![0xffu8; ms * 8])
}

impl Pair {
    /// A call just upgraded; drive() has run (OpenAI connected and answered by default).
    pub fn new(cfg: CallConfig) -> Self {
        Self::with(cfg, Answer::Accept, true)
    }

    /// A call with a chosen upgrade answer and connect mode.
    pub fn with(cfg: CallConfig, answer: Answer, auto_connect: bool) -> Self {
        Self::with_context(cfg, context(), answer, auto_connect)
    }

    /// [`Pair::with`] for a chosen call context.
    pub fn with_context(cfg: CallConfig, ctx: CallContext, answer: Answer, auto_connect: bool) -> Self {
        let epoch = Instant::now();
        let mut p = Self {
            call: Call::new(cfg, ctx, epoch),
            now: epoch,
            epoch,
            down: RecvBuf::with_capacity(128 * 1024),
            up: RecvBuf::with_capacity(2 * 1024 * 1024),
            twilio: Fake::new(Encoder::client_with_seed([1; 32]), Role::Client),
            openai: Fake::new(Encoder::server(), Role::Server),
            upgrades: Vec::new(),
            openai_connected: false,
            openai_open: false,
            answer,
            auto_connect,
            events: Vec::new(),
            delta_seq: 0,
            twilio_seq: 1,
            media_chunk: 0,
            media_ms: 0,
            server: ServerRules::default(),
        };
        p.drive();
        p
    }

    /// A call past `start` with the session configured and the greeting asked for; what the
    /// fakes received so far is forgotten.
    pub fn live(cfg: CallConfig) -> Self {
        let mut p = Self::new(cfg);
        p.twilio_start();
        p.twilio.clear();
        p.openai.clear();
        p.events.clear();
        p
    }

    /// Milliseconds of fake time since the call began.
    pub fn elapsed_ms(&self) -> u128 {
        (self.now - self.epoch).as_millis()
    }

    /// Moves the clock, firing the call's timers on the way (in order, like a real shell).
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..1000 {
            match self.call.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.call.handle_timeout(self.now);
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = target;
        self.drive();
    }

    /// Exchanges bytes and events until nothing moves (step-capped: a livelock fails).
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(bytes) = self.call.poll_transmit(Peer::Twilio) {
                let n = bytes.len().min(self.twilio.rx.spare().len());
                let bytes = &bytes[..n];
                self.twilio.rx.push(bytes);
                self.call.transmitted(Peer::Twilio, n);
                moved = true;
            }
            let texts = self.twilio.decode_all();
            self.twilio.got.extend(texts);
            while let Some(bytes) = self.call.poll_transmit(Peer::OpenAi) {
                let n = bytes.len();
                if self.openai_connected {
                    self.openai.rx.push(bytes);
                }
                self.call.transmitted(Peer::OpenAi, n);
                moved = true;
            }
            moved |= self.openai_handshake();
            if self.openai_open {
                let texts = self.openai.decode_all();
                for t in &texts {
                    let errors: Vec<String> =
                        validator().iter_errors(t).map(|e| format!("{e} at {}", e.instance_path())).collect();
                    assert!(
                        errors.is_empty(),
                        "sent to OpenAI, invalid against the schema: {t}\n{}",
                        errors.join("\n")
                    );
                    if let Err(e) = self.server.check(t) {
                        panic!(
                            "sent to OpenAI, the real server would answer with an error: {e}\n{t}\nserver: {:?}",
                            self.server
                        );
                    }
                }
                self.openai.got.extend(texts);
            }
            // A shell calls handle_* again after flushing when the call stopped for room.
            if !self.down.is_empty()
                && self.call.handle_downstream(&mut self.down, self.now) == Handled::SendBufferFull
            {
                moved = true;
            }
            if !self.up.is_empty()
                && self.call.handle_upstream(&mut self.up, self.now) == Handled::SendBufferFull
            {
                moved = true;
            }
            while let Some(e) = self.call.poll_event() {
                moved = true;
                if e == Event::OpenUpstream && self.auto_connect {
                    self.connect_openai();
                }
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("drive did not settle in 1000 steps");
    }

    /// The shell's TCP+TLS connect to OpenAI succeeded.
    pub fn connect_openai(&mut self) {
        self.server.new_connection();
        self.openai_connected = true;
        self.openai_open = false;
        self.openai.rx = RecvBuf::with_capacity(2 * 1024 * 1024);
        self.openai.dec = Decoder::new(Role::Server, Limits::OPENAI);
        self.call.upstream_connected(self.now);
    }

    /// The OpenAI socket dropped (no close frame).
    pub fn drop_openai(&mut self) {
        self.openai_connected = false;
        self.openai_open = false;
        self.call.upstream_closed(self.now);
        self.drive();
    }

    fn openai_handshake(&mut self) -> bool {
        if !self.openai_connected || self.openai_open || self.answer == Answer::Hold {
            return false;
        }
        let head = match upgrade::parse_request(self.openai.rx.data()).expect("a valid upgrade request") {
            Parse::Partial => return false,
            Parse::Complete(req) => {
                let head = String::from_utf8(self.openai.rx.data()[..req.head_len].to_vec()).unwrap();
                let mut out = vec![0u8; 512];
                let n = match self.answer {
                    Answer::Accept => upgrade::write_accept(&mut out, req.key).unwrap(),
                    Answer::Refuse(status) => upgrade::write_refusal(&mut out, status, "refused").unwrap(),
                    Answer::Hold => unreachable!(),
                };
                out.truncate(n);
                (head, req.head_len, out)
            }
        };
        let (head, head_len, answer) = head;
        self.openai.rx.consume(head_len);
        self.upgrades.push(head);
        if self.answer == Answer::Accept {
            self.openai_open = true;
        } else {
            self.openai_connected = false;
        }
        self.up.push(&answer);
        let _ = self.call.handle_upstream(&mut self.up, self.now);
        true
    }

    /// Twilio sends these raw bytes (already framed).
    pub fn twilio_bytes(&mut self, bytes: &[u8]) {
        self.down.push(bytes);
        let _ = self.call.handle_downstream(&mut self.down, self.now);
        self.drive();
    }

    /// Twilio sends a text message.
    pub fn twilio_send(&mut self, json: &str) {
        let frame = self.twilio.frame(OpCode::Data(Data::Text), json.as_bytes());
        self.twilio_bytes(&frame);
    }

    /// Twilio sends a control frame.
    pub fn twilio_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let frame = self.twilio.frame(opcode, payload);
        self.twilio_bytes(&frame);
    }

    /// Twilio's `connected` then `start`.
    pub fn twilio_start(&mut self) {
        self.twilio_send(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#);
        self.twilio_send(&samples::twilio_start(CALL_SID, "tok"));
    }

    /// Twilio sends `ms` of caller audio (one media event).
    pub fn caller_audio(&mut self, payload_b64: &str) {
        self.twilio_seq += 1;
        self.media_chunk += 1;
        // Twilio stamps each frame with its place on the stream's timeline.
        let json = format!(
            r#"{{"event":"media","sequenceNumber":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{payload_b64}"}},"streamSid":"{STREAM_SID}"}}"#,
            self.twilio_seq, self.media_chunk, self.media_ms
        );
        self.media_ms += (payload_b64.len() / 4 * 3
            - payload_b64.bytes().rev().take_while(|&b| b == b'=').count()) as u64
            / 8;
        self.twilio_send(&json);
    }

    /// Twilio echoes a mark.
    pub fn echo_mark(&mut self, name: &str) {
        self.twilio_seq += 1;
        let json = samples::twilio_mark(self.twilio_seq, name);
        self.twilio_send(&json);
    }

    /// Twilio's `stop`.
    pub fn twilio_stop(&mut self) {
        self.twilio_send(&format!(
            r#"{{"event":"stop","sequenceNumber":"99","stop":{{"accountSid":"AC00000000000000000000000000000000","callSid":"{CALL_SID}"}},"streamSid":"{STREAM_SID}"}}"#
        ));
    }

    /// OpenAI sends raw bytes (already framed).
    pub fn openai_bytes(&mut self, bytes: &[u8]) {
        self.up.push(bytes);
        let _ = self.call.handle_upstream(&mut self.up, self.now);
        self.drive();
    }

    /// OpenAI's bytes arrive in one read; the call handles them once, without the harness
    /// flushing or calling again.
    pub fn openai_bytes_once(&mut self, bytes: &[u8]) -> Handled {
        self.up.push(bytes);
        self.call.handle_upstream(&mut self.up, self.now)
    }

    /// A framed server event (for tests that batch frames into one read).
    pub fn openai_frame(&mut self, json: &str) -> Vec<u8> {
        self.openai.frame(OpCode::Data(Data::Text), json.as_bytes())
    }

    /// OpenAI sends a server event.
    pub fn openai_send(&mut self, json: &str) {
        let frame = self.openai.frame(OpCode::Data(Data::Text), json.as_bytes());
        self.openai_bytes(&frame);
    }

    /// OpenAI sends a control frame.
    pub fn openai_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let frame = self.openai.frame(opcode, payload);
        self.openai_bytes(&frame);
    }

    /// `response.created`.
    pub fn response_created(&mut self, id: &str) {
        self.server.created(id);
        self.openai_send(&format!(
            r#"{{"type":"response.created","event_id":"e","response":{{"id":"{id}","object":"realtime.response","status":"in_progress","output":[]}}}}"#
        ));
    }

    /// An audio delta of `response`/`item`.
    pub fn delta(&mut self, response: &str, item: &str, b64: &str) {
        self.server.audio(item, b64.len() / 4 * 3 - b64.bytes().rev().take_while(|&b| b == b'=').count());
        self.delta_seq += 1;
        self.openai_send(&format!(
            r#"{{"type":"response.output_audio.delta","event_id":"event_{}","response_id":"{response}","item_id":"{item}","output_index":0,"content_index":0,"delta":"{b64}"}}"#,
            self.delta_seq
        ));
    }

    /// `response.done` with a status and usage.
    pub fn response_done(&mut self, id: &str, status: &str) {
        self.server.done(id);
        self.openai_send(&format!(
            r#"{{"type":"response.done","event_id":"e","response":{{"id":"{id}","status":"{status}","output":[],"usage":{{"total_tokens":30,"input_tokens":20,"output_tokens":10}}}}}}"#
        ));
    }

    /// `input_audio_buffer.speech_started`.
    pub fn speech_started(&mut self) {
        self.server.speech_started();
        self.openai_send(
            r#"{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1000,"item_id":"item_user1"}"#,
        );
    }

    /// `response.function_call_arguments.done`.
    pub fn function_call(&mut self, call_id: &str, name: &str, arguments: &str) {
        let args = serde_json::to_string(arguments).unwrap();
        self.openai_send(&format!(
            r#"{{"type":"response.function_call_arguments.done","event_id":"e","response_id":"resp_t","item_id":"item_fc","output_index":0,"call_id":"{call_id}","name":"{name}","arguments":{args}}}"#
        ));
    }

    /// Names of the marks Twilio received, in order.
    pub fn marks(&self) -> Vec<String> {
        self.twilio.of("mark").iter().map(|m| m["mark"]["name"].as_str().unwrap().to_owned()).collect()
    }

    /// The `type`s OpenAI received, in order.
    pub fn openai_types(&self) -> Vec<String> {
        self.openai.got.iter().map(|v| v["type"].as_str().unwrap().to_owned()).collect()
    }

    /// The `event`s Twilio received, in order.
    pub fn twilio_events(&self) -> Vec<String> {
        self.twilio.got.iter().map(|v| v["event"].as_str().unwrap().to_owned()).collect()
    }

    /// The events of the call matching `f`.
    pub fn events_where(&self, f: impl Fn(&Event) -> bool) -> Vec<&Event> {
        self.events.iter().filter(|e| f(e)).collect()
    }
}
