//! Reference client for the simulator's tests: a tokio-tungstenite WebSocket client that checks
//! every server event against the server-events schema as it reads it, plus a small HTTP
//! client for the REST endpoint and the refused handshakes.
//!
//! No timeouts on tokio's clock (tests may pause it): a wall-clock watchdog aborts a hung
//! test instead.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use callway_sim_openai::schema::validate_server_event;
use callway_sim_openai::{SimConfig, SimHandle};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

/// Aborts the test process if it is still alive after `secs` of wall-clock time (a hang
/// guard, not an assertion: nothing in the tests depends on how fast things run).
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    pub fn new(what: &str, secs: u64) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
                eprintln!("watchdog: `{what}` still running after {secs} s of wall-clock time; aborting");
                std::process::abort();
            }
        });
        Self(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// A fast configuration: replies start at once and stream back to back.
pub fn fast_config() -> SimConfig {
    SimConfig { ttfb: Duration::ZERO, speed: None, ..SimConfig::default() }
}

/// The GA `session.update` the gateway sends (μ-law both ways), with this turn detection and
/// optional transcription.
pub fn session_update(turn_detection: Value, transcription: bool) -> Value {
    let mut input = json!({"format": {"type": "audio/pcmu"}, "turn_detection": turn_detection});
    if transcription {
        input["transcription"] = json!({"model": "gpt-4o-transcribe", "language": "fr"});
    }
    json!({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime-2.1",
        "output_modalities": ["audio"], "instructions": "Tu es l'assistante de Callway.",
        "audio": {"input": input, "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
        "tools": [{"type": "function", "name": "save_lead", "description": "Enregistre le prospect.",
                   "parameters": {"type": "object", "properties": {}, "required": []}}],
        "tool_choice": "auto"}})
}

/// Server VAD settings.
pub fn server_vad(silence_ms: u64, create_response: bool, interrupt_response: bool) -> Value {
    json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": silence_ms,
           "create_response": create_response, "interrupt_response": interrupt_response})
}

/// A connected test client.
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    /// Every server event read so far.
    pub log: Vec<Value>,
    /// The handshake response's headers.
    pub response_headers: Vec<(String, String)>,
    _watchdog: Watchdog,
}

/// Connects to `sim` with its API key.
pub async fn connect(sim: &SimHandle) -> Client {
    let auth = format!("Bearer {}", sim.api_key());
    try_connect(sim.addr(), &sim.ws_url(), &[("authorization", auth.as_str())]).await.expect("handshake")
}

/// Connects with these extra headers.
pub async fn try_connect(
    addr: SocketAddr,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tungstenite::Error> {
    let stream = TcpStream::connect(addr).await?;
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            tungstenite::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let (ws, resp) = client_async(req, stream).await?;
    let response_headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    Ok(Client { ws, log: Vec::new(), response_headers, _watchdog: Watchdog::new(url, 60) })
}

/// What the next frame was.
#[derive(Debug)]
pub enum Next {
    Event(Value),
    Close(Option<CloseFrame>),
    /// The connection ended without a close frame (or failed).
    Gone(String),
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// Sends several events in one write (the simulator then reads them together).
    pub async fn send_all(&mut self, events: &[Value]) {
        for v in events {
            self.ws.feed(Message::text(v.to_string())).await.expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// Appends μ-law audio in `chunk`-byte events, written together.
    pub async fn append_ulaw(&mut self, ulaw: &[u8], chunk: usize) {
        let events: Vec<Value> = ulaw
            .chunks(chunk)
            .map(|c| json!({"type": "input_audio_buffer.append", "audio": B64.encode(c)}))
            .collect();
        self.send_all(&events).await;
    }

    /// The next frame, server events schema-checked (a violation fails the test).
    pub async fn next_frame(&mut self) -> Next {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sent JSON");
                    if let Err(e) = validate_server_event(&v) {
                        panic!("server event outside the schema: {v}\n{e}");
                    }
                    self.log.push(v.clone());
                    return Next::Event(v);
                }
                Some(Ok(Message::Close(f))) => {
                    // Send the close reply tungstenite queued, as a well-behaved client does.
                    let _ = self.ws.flush().await;
                    return Next::Close(f);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => panic!("the Realtime API sends no binary frames"),
                Some(Err(e)) => return Next::Gone(e.to_string()),
                None => return Next::Gone("end of stream".into()),
            }
        }
    }

    /// Reads the socket's bytes past the WebSocket layer until the server closes it (for the
    /// faults that leave the wire in a state no WebSocket library reports).
    pub async fn raw_rest(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut rest = Vec::new();
        let _ = self.ws.get_mut().read_to_end(&mut rest).await;
        rest
    }

    /// The next raw frame, pings and pongs included.
    pub async fn next_message(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.ws.next().await
    }

    /// The next server event (a close or disconnect fails the test).
    pub async fn next(&mut self) -> Value {
        match self.next_frame().await {
            Next::Event(v) => v,
            other => panic!("expected an event, got {other:?}; events so far: {:#?}", kinds(&self.log)),
        }
    }

    /// The next event, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], kind, "unexpected event: {v}");
        v
    }

    /// Events up to and including the first of type `kind`.
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

    /// Events of a response up to `response.done`, then the `rate_limits.updated` the service
    /// sends after it (checked, not returned).
    pub async fn response_done(&mut self) -> Vec<Value> {
        let events = self.until("response.done").await;
        self.expect("rate_limits.updated").await;
        events
    }

    /// Reads until the close frame (events before it are checked and returned).
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut events = Vec::new();
        loop {
            match self.next_frame().await {
                Next::Event(v) => events.push(v),
                Next::Close(f) => return (events, f),
                Next::Gone(e) => panic!("connection ended without a close frame: {e}"),
            }
        }
    }

    /// Closes from the client side (1000) and reads up to the server's close reply.
    pub async fn close(mut self) -> Vec<Value> {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        self.ws.close(Some(frame)).await.expect("close");
        let mut events = Vec::new();
        loop {
            match self.next_frame().await {
                Next::Event(v) => events.push(v),
                Next::Close(_) | Next::Gone(_) => return events,
            }
        }
    }
}

/// Event types, in order.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

/// Concatenated decoded audio of the `response.output_audio.delta` events.
pub fn audio_of(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| B64.decode(e["delta"].as_str().unwrap()).unwrap())
        .collect()
}

/// Concatenated `delta` strings of events of type `kind`.
pub fn deltas_of(events: &[Value], kind: &str) -> String {
    events.iter().filter(|e| e["type"] == kind).map(|e| e["delta"].as_str().unwrap()).collect()
}

/// An HTTP exchange's outcome.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: Value,
}

/// One HTTP/1.1 request to the simulator.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let json = if status == 101 {
        Value::Null
    } else {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    HttpReply { status, headers, json }
}

/// A WebSocket upgrade request to `/v1/realtime` with these extra headers (for refusals).
pub async fn upgrade_attempt(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> HttpReply {
    let mut all = vec![
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    all.extend_from_slice(headers);
    http(addr, "GET", &format!("/v1/realtime{query}"), &all, "").await
}

/// Asserts an OpenAI REST error body: exactly `message`, `type`, `param`, `code`.
pub fn assert_rest_error(body: &Value, kind: &str, code: Option<&str>) {
    let e = body["error"].as_object().unwrap_or_else(|| panic!("not an error body: {body}"));
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert_eq!(e["type"], kind, "{body}");
    assert_eq!(e["code"].as_str(), code, "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// Asserts a Realtime `error` event of the real shape with this code and client event id.
pub fn assert_error_event(ev: &Value, code: &str, client_event_id: Option<&str>) {
    assert_eq!(ev["type"], "error", "{ev}");
    assert!(ev["event_id"].as_str().is_some_and(|id| id.starts_with("event_")), "{ev}");
    let e = ev["error"].as_object().unwrap();
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "event_id", "message", "param", "type"], "{ev}");
    assert_eq!(e["type"], "invalid_request_error", "{ev}");
    assert_eq!(e["code"], code, "{ev}");
    assert_eq!(e["event_id"].as_str(), client_event_id, "{ev}");
}

/// The simulator's own check of what it sent found nothing.
pub fn assert_schema_clean(sim: &SimHandle) {
    let v = sim.schema_violations();
    assert!(v.is_empty(), "simulator sent events outside the schema: {v:#?}");
}
