//! Test helpers: a reference WebSocket server playing the gateway (raw handshake, so the exact
//! request bytes can be checked), a receiver for callbacks, and TLS material.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The upgrade request as it arrived.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET /path HTTP/1.1`.
    pub request_line: String,
    /// Header lines, names exactly as sent.
    pub headers: Vec<(String, String)>,
    /// The raw bytes.
    pub raw: String,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The gateway's end of an accepted stream.
pub struct Peer {
    pub ws: WebSocketStream<Box<dyn Io>>,
    pub request: RawRequest,
}

impl Peer {
    /// The next text message (pings skipped); `None` on close or end.
    pub async fn recv_text(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => return Some(t.as_str().to_owned()),
                Ok(Message::Close(_)) => {
                    // Sends the close reply tungstenite queued.
                    let _ = self.ws.flush().await;
                    return None;
                }
                Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next message of any kind.
    pub async fn recv(&mut self) -> Option<Message> {
        let msg = self.ws.next().await.and_then(Result::ok);
        if matches!(msg, Some(Message::Close(_))) {
            let _ = self.ws.flush().await;
        }
        msg
    }

    /// The next text message as JSON.
    pub async fn recv_json(&mut self) -> Value {
        let t = self.recv_text().await.expect("stream ended");
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("caller sent non-JSON {t}: {e}"))
    }

    /// Reads until an event named `event`, returning it and the `media` timestamps seen on the way.
    pub async fn until_event(&mut self, event: &str) -> (Value, Vec<u64>) {
        let mut media_ts = Vec::new();
        loop {
            let v = self.recv_json().await;
            if v["event"] == event {
                return (v, media_ts);
            }
            if v["event"] == "media" {
                media_ts.push(v["media"]["timestamp"].as_str().unwrap().parse().unwrap());
            }
        }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.expect("send");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// Sends `audio` as a `media` message for `stream_sid`.
    pub async fn send_media(&mut self, stream_sid: &str, audio: &[u8]) {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD.encode(audio);
        self.send_json(
            serde_json::json!({"event":"media","streamSid":stream_sid,"media":{"payload":payload}}),
        )
        .await;
    }

    pub async fn send_mark(&mut self, stream_sid: &str, name: &str) {
        self.send_json(serde_json::json!({"event":"mark","streamSid":stream_sid,"mark":{"name":name}})).await;
    }

    pub async fn send_clear(&mut self, stream_sid: &str) {
        self.send_json(serde_json::json!({"event":"clear","streamSid":stream_sid})).await;
    }

    /// Closes from the server side and waits for the caller's close reply.
    pub async fn close(mut self) -> bool {
        let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    }
}

/// Reads an HTTP request head byte by byte (the client sends nothing more before the answer).
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let raw = String::from_utf8(buf).ok()?;
    let mut lines = raw.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_owned(), v.trim().to_owned())))
        .collect();
    Some(RawRequest { request_line, headers, raw })
}

/// Answers the upgrade with 101 and hands over the WebSocket.
pub async fn accept_upgrade(mut io: Box<dyn Io>, request: RawRequest) -> Peer {
    let key = request.header("sec-websocket-key").expect("Sec-WebSocket-Key").to_owned();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    io.write_all(answer.as_bytes()).await.unwrap();
    io.flush().await.unwrap();
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    Peer { ws, request }
}

/// A listener on 127.0.0.1. Accepted sockets should get `set_nodelay(true)`: under
/// `tokio::time::pause` virtual time runs far ahead of the kernel's delayed-ACK timer, so a
/// segment held back by Nagle's algorithm would look like a server that never answers.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Serves one stream: accepts a connection, answers 101, runs `handler`.
pub async fn serve_once<F, Fut, R>(path: &str, handler: F) -> (String, JoinHandle<R>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send,
    R: Send + 'static,
{
    let (l, addr) = listener().await;
    let url = format!("ws://{addr}{path}");
    let task = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let request = read_head(&mut tcp).await.expect("upgrade request");
        handler(accept_upgrade(Box::new(tcp), request).await).await
    });
    (url, task)
}

/// Counts the connections made to a listener (for "no connection was attempted").
pub async fn connection_counter() -> (SocketAddr, Arc<Mutex<usize>>) {
    let (l, addr) = listener().await;
    let count = Arc::new(Mutex::new(0usize));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            *c.lock().unwrap() += 1;
            drop(tcp);
        }
    });
    (addr, count)
}

/// A request received by the callback receiver.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// An application receiving Twilio's callbacks: records every request, answers with the status
/// set for its path (200 otherwise) and, for paths given a body, that body as `text/xml`.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<(String, u16, String)>>>,
}

impl Receiver {
    pub async fn spawn() -> Self {
        let (l, addr) = listener().await;
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers: Arc<Mutex<Vec<(String, u16, String)>>> = Arc::new(Mutex::new(Vec::new()));
        let (r, a) = (received.clone(), answers.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let _ = tcp.set_nodelay(true);
                let (r, a) = (r.clone(), a.clone());
                tokio::spawn(serve_http(tcp, r, a));
            }
        });
        Self { addr, received, answers }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers requests to `path` with `status` and `body`.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.answers.lock().unwrap().push((path.to_owned(), status, body.to_owned()));
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A minimal HTTP/1.1 server (keep-alive, Content-Length bodies), enough for reqwest.
async fn serve_http(
    mut tcp: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<(String, u16, String)>>>,
) {
    loop {
        let Some(head) = read_head(&mut tcp).await else { return };
        let len: usize = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        if tcp.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut parts = head.request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path_and_query = parts.next().unwrap_or_default().to_owned();
        let path = path_and_query.split('?').next().unwrap_or_default().to_owned();
        received.lock().unwrap().push(Received {
            method,
            path_and_query,
            headers: head.headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let (status, answer) = answers
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, s, b)| (*s, b.clone()))
            .unwrap_or((200, String::new()));
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A CA and a leaf certificate for `localhost`/127.0.0.1 signed by it (PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "callway test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki { ca_pem: ca.pem(), cert_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() }
}

/// A TLS acceptor for `pki`'s leaf.
pub fn tls_acceptor(pki: &TestPki) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{ServerConfig, crypto::ring};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A guard against a hung test: fails after `secs` of (virtual) time.
/// (Stepped, so that it cannot fire early under `tokio::time::pause`.)
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    callway_sim_twilio::time::timeout(Duration::from_secs(secs), f).await.expect("test did not finish")
}
