//! Reference GPT-Live client for the simulator's `live_*` tests: a tokio-tungstenite WebSocket
//! client that checks every event it sends against the Live client schema (unless told not
//! to) and every event it reads against the Live server schema, keeps the output audio and
//! what it heard, and builds the `session.start` the gateway will send.
//!
//! No timeouts on tokio's clock (the tests pause it): `common`'s wall-clock watchdog aborts a
//! hung test (each `live_*` test file declares `mod common;` for it).
//!
//! Frames in flight on loopback and a paused clock: tokio advances a paused clock as soon as
//! nothing is ready to run, which can be before the kernel has handed a frame just written to
//! the simulator's socket (the machine is busy, the receive side is deferred); the simulator
//! would then see its next timer (a chunk, a minute of usage, the session cap) before the
//! frame. So every send waits, yielding without letting the runtime go idle, until the
//! simulator has recorded the frame: time moves only once the simulator has what was sent.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use callway_sim_openai::live::schema::{validate_live_client_event, validate_live_server_event};
use callway_sim_openai::{SessionRecord, SimHandle};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::common::Watchdog;

/// The `session.start` the gateway sends for a phone call: µ-law 8 kHz both ways, a voice,
/// Responses delegation with the phone tools.
pub fn phone_start() -> Value {
    json!({"type": "session.start", "event_id": "evt_start", "session": {"model": "gpt-live-1.1",
        "instructions": "Tu es Claire, l'assistante de Callway.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Je veux être rappelé."}]}],
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5-mini",
            "instructions": "Exécute les outils demandés.",
            "tools": [{"type": "function", "name": "save_lead", "description": "Enregistre le prospect.",
                       "parameters": {"type": "object", "properties": {"first_name": {"type": "string"}}}}]}}}})
}

/// A `session.start` with client delegation (the default) and this format.
pub fn start_with_format(format: Value) -> Value {
    json!({"type": "session.start", "session": {"model": "gpt-live-1", "audio": {"format": format}}})
}

/// What the next frame was.
#[derive(Debug)]
pub enum Next {
    Event(Value),
    Close(Option<CloseFrame>),
    Gone(String),
}

/// A connected client.
pub struct LiveClient<'s> {
    ws: WebSocketStream<TcpStream>,
    sim: &'s SimHandle,
    /// The simulator's record index of this session.
    pub index: usize,
    /// Frames sent so far.
    sent: usize,
    /// Every server event read, audio deltas included.
    pub log: Vec<Value>,
    /// Decoded output audio, in order.
    pub audio: Vec<u8>,
    /// Audio bytes of each delta, in order.
    pub chunk_sizes: Vec<usize>,
    _watchdog: Watchdog,
}

/// Connects to `sim`'s `/v1/live/sessions` with its key.
pub async fn connect(sim: &SimHandle) -> LiveClient<'_> {
    let stream = TcpStream::connect(sim.addr()).await.unwrap();
    let mut req = sim.live_url().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", sim.api_key()).parse().unwrap());
    let (ws, resp) = client_async(req, stream).await.expect("handshake");
    assert!(resp.headers().get("sec-websocket-protocol").is_none(), "no subprotocol");
    let index = sim.sessions().len() - 1;
    LiveClient {
        ws,
        sim,
        index,
        sent: 0,
        log: Vec::new(),
        audio: Vec::new(),
        chunk_sizes: Vec::new(),
        _watchdog: Watchdog::new("a live test", 60),
    }
}

impl LiveClient<'_> {
    /// This session's record now.
    pub fn record(&self) -> SessionRecord {
        self.sim.session(self.index).expect("the session's record")
    }

    /// Yields (keeping the runtime busy, so a paused clock cannot move) until the simulator
    /// has recorded every frame sent.
    async fn settle(&mut self) {
        while self.record().received.len() < self.sent {
            tokio::task::yield_now().await;
        }
    }

    /// Sends a client event, which must be valid for the Live client schema.
    pub async fn send(&mut self, v: Value) {
        if let Err(e) = validate_live_client_event(&v) {
            panic!("test client sent an event outside the Live client schema: {v}\n{e}");
        }
        self.send_unchecked(v).await;
    }

    /// Sends anything (for refusals).
    pub async fn send_unchecked(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
        self.sent += 1;
        self.settle().await;
    }

    /// Appends µ-law (or any format's) audio in `chunk`-byte events, written together.
    pub async fn append(&mut self, audio: &[u8], chunk: usize) {
        for c in audio.chunks(chunk) {
            let v = json!({"type": "session.input_audio.append", "audio": B64.encode(c)});
            assert!(validate_live_client_event(&v).is_ok());
            self.ws.feed(Message::text(v.to_string())).await.expect("feed");
            self.sent += 1;
        }
        self.ws.flush().await.expect("flush");
        self.settle().await;
    }

    /// Sends `session.start` and waits for `session.started` (nothing may come before it).
    pub async fn start(&mut self, start: Value) -> Value {
        self.send(start).await;
        self.expect("session.started").await
    }

    /// The next frame; events are schema-checked (a violation fails the test), audio deltas
    /// checked for their bare shape and kept.
    pub async fn next_frame(&mut self) -> Next {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sent JSON");
                    if let Err(e) = validate_live_server_event(&v) {
                        panic!("server event outside the Live schema: {v}\n{e}");
                    }
                    if v["type"] == "session.output_audio.delta" {
                        let obj = v.as_object().unwrap();
                        assert_eq!(obj.len(), 2, "a delta is type and delta only: {v}");
                        let bytes = B64.decode(v["delta"].as_str().unwrap()).unwrap();
                        self.chunk_sizes.push(bytes.len());
                        self.audio.extend(bytes);
                    } else {
                        assert!(v["event_id"].as_str().is_some_and(|id| id.starts_with("event_")), "{v}");
                    }
                    self.log.push(v.clone());
                    return Next::Event(v);
                }
                Some(Ok(Message::Close(f))) => {
                    let _ = self.ws.flush().await;
                    return Next::Close(f);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => panic!("the Live API sends no binary frames"),
                Some(Err(e)) => return Next::Gone(e.to_string()),
                None => return Next::Gone("end of stream".into()),
            }
        }
    }

    /// The next event, audio deltas included.
    pub async fn next_any(&mut self) -> Value {
        match self.next_frame().await {
            Next::Event(v) => v,
            other => panic!("expected an event, got {other:?}; so far: {:?}", kinds(&self.log)),
        }
    }

    /// The next event that is not an audio delta (deltas are kept in `audio`).
    pub async fn next(&mut self) -> Value {
        loop {
            let v = self.next_any().await;
            if v["type"] != "session.output_audio.delta" {
                return v;
            }
        }
    }

    /// The next non-audio event, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], kind, "unexpected event: {v}");
        v
    }

    /// Non-audio events up to and including the first of type `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.next().await;
            let done = v["type"] == kind;
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// Reads until `n` audio deltas have arrived in all; returns the non-audio events read.
    pub async fn deltas(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while self.chunk_sizes.len() < n {
            let v = self.next_any().await;
            if v["type"] != "session.output_audio.delta" {
                out.push(v);
            }
        }
        out
    }

    /// Reads until the close frame: the non-audio events before it and the frame.
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut events = Vec::new();
        loop {
            match self.next_frame().await {
                Next::Event(v) if v["type"] == "session.output_audio.delta" => {}
                Next::Event(v) => events.push(v),
                Next::Close(f) => return (events, f),
                Next::Gone(e) => panic!("connection ended without a close frame: {e}"),
            }
        }
    }

    /// Closes the socket from the client side without `session.close`.
    pub async fn close_socket(mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        self.ws.close(Some(frame)).await.expect("close");
        while let Some(Ok(_)) = self.ws.next().await {}
    }
}

/// Event types, in order.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

/// Concatenated `delta` of the events of type `kind`.
pub fn text_of(events: &[Value], kind: &str) -> String {
    events.iter().filter(|e| e["type"] == kind).map(|e| e["delta"].as_str().unwrap()).collect()
}

/// A Live `error` event of G's shape with this code and client event id.
pub fn assert_live_error(ev: &Value, code: &str, client_event_id: Option<&str>) {
    assert_eq!(ev["type"], "error", "{ev}");
    let e = ev["error"].as_object().unwrap_or_else(|| panic!("no error object: {ev}"));
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["client_event_id", "code", "message", "param", "type"], "{ev}");
    assert_eq!(e["code"], code, "{ev}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{ev}");
    assert_eq!(e["client_event_id"].as_str(), client_event_id, "{ev}");
    assert_eq!(ev["client_event_id"].as_str(), client_event_id, "{ev}");
}

/// The simulator's own checks of what it sent found nothing.
pub fn assert_schema_clean(sim: &SimHandle) {
    let v = sim.schema_violations();
    assert!(v.is_empty(), "simulator sent events outside the Live schema: {v:#?}");
}
