//! The HTTP/1.1 upgrade (RFC 6455 §4), both sides, over byte slices.
//!
//! Server side (Twilio opens the Media Stream to us): [`parse_request`] checks every
//! requirement of §4.2.1 and returns [`Parse::Partial`] until the whole head has arrived, so
//! the shell can refuse a bad request with a precise status ([`write_refusal`]) before
//! answering [`write_accept`] — and before any upstream work is done.
//!
//! Client side (we open OpenAI Realtime): [`write_client_request`] builds the request and
//! returns a [`ClientHandshake`] that checks the server's answer (§4.1: status 101, `Upgrade`,
//! `Connection`, `Sec-WebSocket-Accept`).
//!
//! Limits follow httparse's contract: a fixed array of headers (too many is an error, never an
//! allocation) and a cap on the head size so a slow client cannot make us re-parse forever.

use crate::core::buf::{BufferFull, SliceWriter};

/// Most headers accepted in a request or response head.
pub const MAX_HEADERS: usize = 32;
/// Largest request/response head accepted (bytes).
pub const MAX_HEAD_LEN: usize = 8 * 1024;

/// Outcome of parsing a head.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Parse<T> {
    /// The head is not complete: read more and parse again.
    Partial,
    /// The head is complete.
    Complete(T),
}

/// A valid WebSocket upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// Bytes of the head (the WebSocket stream starts after them).
    pub head_len: usize,
    /// Request target, as sent (path only; a query string is the caller's to refuse).
    pub path: &'a str,
    /// `Host`.
    pub host: &'a str,
    /// `Sec-WebSocket-Key` (checked: base64 of 16 bytes).
    pub key: &'a str,
    /// `X-Twilio-Signature`, if present.
    pub twilio_signature: Option<&'a str>,
}

/// Why an upgrade request was refused; each maps to an HTTP status ([`UpgradeError::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not parseable as HTTP/1.x.
    #[error("malformed HTTP request")]
    Malformed,
    /// More than [`MAX_HEADERS`] headers.
    #[error("too many headers (max {MAX_HEADERS})")]
    TooManyHeaders,
    /// The head is over [`MAX_HEAD_LEN`] bytes.
    #[error("request head larger than {MAX_HEAD_LEN} bytes")]
    HeadTooLarge,
    /// Not `GET`.
    #[error("method must be GET for a WebSocket upgrade")]
    MethodNotAllowed,
    /// HTTP/1.0.
    #[error("HTTP/1.1 is required for a WebSocket upgrade")]
    HttpVersion,
    /// No `Host` header.
    #[error("missing Host header")]
    MissingHost,
    /// `Upgrade` does not name `websocket`.
    #[error("missing `Upgrade: websocket`")]
    NotWebSocket,
    /// `Connection` does not contain the `upgrade` token.
    #[error("missing `Connection: upgrade`")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version (13 required)")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` absent, repeated, or not base64 of 16 bytes.
    #[error("missing or invalid Sec-WebSocket-Key")]
    BadKey,
}

impl UpgradeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            UpgradeError::MethodNotAllowed => 405,
            UpgradeError::TooManyHeaders | UpgradeError::HeadTooLarge => 431,
            UpgradeError::UnsupportedVersion => 426,
            UpgradeError::HttpVersion => 505,
            _ => 400,
        }
    }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses and validates a server-side upgrade request from the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parse<UpgradeRequest<'_>>, UpgradeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_LEN => return Err(UpgradeError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(UpgradeError::TooManyHeaders),
        Err(_) => return Err(UpgradeError::Malformed),
    };
    if head_len > MAX_HEAD_LEN {
        return Err(UpgradeError::HeadTooLarge);
    }
    if req.method != Some("GET") {
        return Err(UpgradeError::MethodNotAllowed);
    }
    if req.version != Some(1) {
        return Err(UpgradeError::HttpVersion);
    }
    let path = req.path.ok_or(UpgradeError::Malformed)?;
    let (mut host, mut key, mut signature) = (None, None, None);
    let (mut upgrade, mut connection, mut version) = (false, false, false);
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            host = Some(std::str::from_utf8(h.value).map_err(|_| UpgradeError::Malformed)?);
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(h.value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(h.value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = h.value.trim_ascii() == b"13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            if key.is_some() {
                return Err(UpgradeError::BadKey);
            }
            key = Some(h.value.trim_ascii());
        } else if name.eq_ignore_ascii_case("x-twilio-signature") {
            signature = Some(std::str::from_utf8(h.value.trim_ascii()).map_err(|_| UpgradeError::Malformed)?);
        }
    }
    let host = host.filter(|h| !h.is_empty()).ok_or(UpgradeError::MissingHost)?;
    if !upgrade {
        return Err(UpgradeError::NotWebSocket);
    }
    if !connection {
        return Err(UpgradeError::MissingConnectionUpgrade);
    }
    if !version {
        return Err(UpgradeError::UnsupportedVersion);
    }
    let key = key.ok_or(UpgradeError::BadKey)?;
    let mut decoded = [0u8; 18];
    if key.len() != 24
        || base64_simd::STANDARD
            .decode(key, base64_simd::Out::from_slice(&mut decoded))
            .map_or(true, |d| d.len() != 16)
    {
        return Err(UpgradeError::BadKey);
    }
    let key = std::str::from_utf8(key).map_err(|_| UpgradeError::BadKey)?;
    Ok(Parse::Complete(UpgradeRequest { head_len, path, host, key, twilio_signature: signature }))
}

/// Writes the `101 Switching Protocols` answer for `key`.
pub fn write_accept(out: &mut [u8], key: &str) -> Result<usize, BufferFull> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut w = SliceWriter::new(out);
    w.put(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")?;
    w.put(accept.as_bytes())?;
    w.put(b"\r\n\r\n")?;
    Ok(w.written())
}

/// Every status the gateway answers an upgrade with instead of `101` (malformed or refused
/// requests, authentication, token redemption, timeouts, the control plane being down).
pub const REFUSAL_STATUSES: [u16; 13] = [400, 401, 403, 404, 405, 408, 409, 410, 426, 429, 431, 503, 505];

/// The reason phrase RFC 9110 §15 gives `status` (the class name for one it does not list).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        other if other < 500 => "Client Error",
        _ => "Server Error",
    }
}

/// Writes a refusal: `status`, a plain-text `message` saying what was wrong, `Connection: close`
/// (and the headers RFC 6455 / RFC 9110 ask for 405 and 426).
pub fn write_refusal(out: &mut [u8], status: u16, message: &str) -> Result<usize, BufferFull> {
    let mut w = SliceWriter::new(out);
    w.put(b"HTTP/1.1 ")?;
    w.put_u64(u64::from(status))?;
    w.put(b" ")?;
    w.put(reason_phrase(status).as_bytes())?;
    w.put(b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")?;
    if status == 426 {
        w.put(b"Sec-WebSocket-Version: 13\r\n")?;
    }
    if status == 405 {
        w.put(b"Allow: GET\r\n")?;
    }
    w.put(b"Content-Length: ")?;
    w.put_u64(message.len() as u64 + 1)?;
    w.put(b"\r\n\r\n")?;
    w.put(message.as_bytes())?;
    w.put(b"\n")?;
    Ok(w.written())
}

/// The client side of a handshake in progress: what the server must answer.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: String,
}

/// Why the server's handshake answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Not parseable as an HTTP/1.1 response (or too many headers / too large).
    #[error("malformed handshake response")]
    Malformed,
    /// A status other than 101 (the body, if any, follows the head).
    #[error("server refused the WebSocket upgrade with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Bytes of the head (the error body follows).
        head_len: usize,
    },
    /// 101 without `Upgrade: websocket` / `Connection: upgrade`.
    #[error("101 response without Upgrade: websocket / Connection: upgrade")]
    NotWebSocket,
    /// `Sec-WebSocket-Accept` missing or wrong.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    BadAccept,
}

/// Writes a client upgrade request for `host` + `target` (path and query) with extra
/// `headers` (e.g. `Authorization`), using the 16 random bytes `key`.
pub fn write_client_request(
    out: &mut [u8],
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    key: [u8; 16],
) -> Result<(usize, ClientHandshake), BufferFull> {
    let mut key_b64 = [0u8; 24];
    let key_str = base64_simd::STANDARD.encode_as_str(&key, base64_simd::Out::from_slice(&mut key_b64));
    let mut w = SliceWriter::new(out);
    w.put(b"GET ")?;
    w.put(target.as_bytes())?;
    w.put(b" HTTP/1.1\r\nHost: ")?;
    w.put(host.as_bytes())?;
    w.put(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    )?;
    w.put(key_str.as_bytes())?;
    w.put(b"\r\n")?;
    for (name, value) in headers {
        w.put(name.as_bytes())?;
        w.put(b": ")?;
        w.put(value.as_bytes())?;
        w.put(b"\r\n")?;
    }
    w.put(b"\r\n")?;
    let expected_accept = tungstenite::handshake::derive_accept_key(key_str.as_bytes());
    Ok((w.written(), ClientHandshake { expected_accept }))
}

impl ClientHandshake {
    /// Checks the server's answer at the start of `buf`; `Complete(head_len)` on success.
    pub fn read_response(&self, buf: &[u8]) -> Result<Parse<usize>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let head_len = match res.parse(buf) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD_LEN => n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_LEN => return Ok(Parse::Partial),
            _ => return Err(HandshakeError::Malformed),
        };
        let status = res.code.ok_or(HandshakeError::Malformed)?;
        if status != 101 {
            return Err(HandshakeError::Refused { status, head_len });
        }
        let (mut upgrade, mut connection, mut accept_ok) = (false, false, false);
        for h in res.headers.iter() {
            if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade |= has_token(h.value, "websocket");
            } else if h.name.eq_ignore_ascii_case("connection") {
                connection |= has_token(h.value, "upgrade");
            } else if h.name.eq_ignore_ascii_case("sec-websocket-accept") {
                accept_ok = h.value.trim_ascii() == self.expected_accept.as_bytes();
            }
        }
        if !upgrade || !connection {
            return Err(HandshakeError::NotWebSocket);
        }
        if !accept_ok {
            return Err(HandshakeError::BadAccept);
        }
        Ok(Parse::Complete(head_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 §15's reason phrases, written out independently of `reason_phrase`.
    const RFC_9110: [(u16, &str); 13] = [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (408, "Request Timeout"),
        (409, "Conflict"),
        (410, "Gone"),
        (426, "Upgrade Required"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (503, "Service Unavailable"),
        (505, "HTTP Version Not Supported"),
    ];

    #[test]
    fn every_refusal_carries_its_rfc_9110_reason_phrase() {
        assert_eq!(REFUSAL_STATUSES.map(|s| s), RFC_9110.map(|(s, _)| s), "one expectation per status sent");
        for (status, phrase) in RFC_9110 {
            let mut out = [0u8; 512];
            let n = write_refusal(&mut out, status, "why").unwrap();
            let text = std::str::from_utf8(&out[..n]).unwrap();
            let line = text.split("\r\n").next().unwrap();
            assert_eq!(line, format!("HTTP/1.1 {status} {phrase}"), "{text}");
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut res = httparse::Response::new(&mut headers);
            assert!(res.parse(&out[..n]).unwrap().is_complete());
            assert_eq!((res.code, res.reason), (Some(status), Some(phrase)));
        }
        assert_eq!(reason_phrase(418), "Client Error");
        assert_eq!(reason_phrase(599), "Server Error");
    }

    const TWILIO_LIKE: &str = "GET /api/twilio/media-stream/v1.abc.def HTTP/1.1\r\n\
        Host: edge.example.eu\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        X-Twilio-Signature: 24fy8gg1vgNB/teYcvsiUvJw6Zo=\r\n\r\n";

    #[test]
    fn accepts_a_twilio_upgrade_and_answers_101_with_the_rfc_example_key() {
        let Parse::Complete(req) = parse_request(TWILIO_LIKE.as_bytes()).unwrap() else { panic!() };
        assert_eq!(req.path, "/api/twilio/media-stream/v1.abc.def");
        assert_eq!(req.host, "edge.example.eu");
        assert_eq!(req.twilio_signature, Some("24fy8gg1vgNB/teYcvsiUvJw6Zo="));
        assert_eq!(req.head_len, TWILIO_LIKE.len());
        let mut out = [0u8; 256];
        let n = write_accept(&mut out, req.key).unwrap();
        let text = std::str::from_utf8(&out[..n]).unwrap();
        // RFC 6455 §1.3's worked example.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{text}");
    }

    #[test]
    fn partial_until_the_blank_line() {
        for cut in 0..TWILIO_LIKE.len() {
            assert_eq!(parse_request(&TWILIO_LIKE.as_bytes()[..cut]), Ok(Parse::Partial), "cut {cut}");
        }
    }

    fn with(replace: &str, by: &str) -> Result<Parse<UpgradeRequest<'static>>, UpgradeError> {
        let s: &'static str = Box::leak(TWILIO_LIKE.replacen(replace, by, 1).into_boxed_str());
        parse_request(s.as_bytes())
    }

    #[test]
    fn each_requirement_has_its_error_and_status() {
        let cases = [
            ("GET ", "POST ", UpgradeError::MethodNotAllowed, 405),
            ("HTTP/1.1\r\n", "HTTP/1.0\r\n", UpgradeError::HttpVersion, 505),
            ("Host: edge.example.eu\r\n", "", UpgradeError::MissingHost, 400),
            ("Upgrade: websocket", "Upgrade: h2c", UpgradeError::NotWebSocket, 400),
            ("Connection: Upgrade", "Connection: keep-alive", UpgradeError::MissingConnectionUpgrade, 400),
            ("Version: 13", "Version: 8", UpgradeError::UnsupportedVersion, 426),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j", UpgradeError::BadKey, 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=!", UpgradeError::BadKey, 400),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", UpgradeError::BadKey, 400),
        ];
        for (from, to, err, status) in cases {
            assert_eq!(with(from, to), Err(err), "{from} -> {to}");
            assert_eq!(err.status(), status);
        }
        assert!(matches!(
            with("Connection: Upgrade", "Connection: keep-alive, UPGRADE"),
            Ok(Parse::Complete(_))
        ));
        let dup =
            TWILIO_LIKE.replacen("\r\n\r\n", "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 1);
        assert_eq!(parse_request(dup.as_bytes()), Err(UpgradeError::BadKey));
    }

    #[test]
    fn header_count_and_size_limits() {
        let many: String = (0..MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let req = TWILIO_LIKE.replacen("\r\n\r\n", &format!("\r\n{many}\r\n"), 1);
        assert_eq!(parse_request(req.as_bytes()), Err(UpgradeError::TooManyHeaders));
        let huge = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_LEN));
        assert_eq!(parse_request(huge.as_bytes()), Err(UpgradeError::HeadTooLarge));
        assert_eq!(parse_request(b"\x00\x01garbage\r\n\r\n"), Err(UpgradeError::Malformed));
    }

    #[test]
    fn refusal_is_a_well_formed_response() {
        let mut out = [0u8; 512];
        let n = write_refusal(&mut out, 426, "use WebSocket version 13").unwrap();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut res = httparse::Response::new(&mut headers);
        let head = match res.parse(&out[..n]).unwrap() {
            httparse::Status::Complete(h) => h,
            httparse::Status::Partial => panic!(),
        };
        assert_eq!(res.code, Some(426));
        assert!(res.headers.iter().any(|h| h.name == "Sec-WebSocket-Version" && h.value == b"13"));
        assert_eq!(&out[head..n], b"use WebSocket version 13\n");
    }

    #[test]
    fn client_handshake_checks_the_accept_key() {
        let mut out = [0u8; 512];
        let key = *b"the sample nonce";
        let (n, hs) = write_client_request(
            &mut out,
            "api.openai.com",
            "/v1/realtime?model=gpt-realtime",
            &[("Authorization", "Bearer sk-test")],
            key,
        )
        .unwrap();
        let req = std::str::from_utf8(&out[..n]).unwrap();
        assert!(req.starts_with("GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: api.openai.com\r\n"));
        assert!(req.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(!req.contains("OpenAI-Beta"));
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(hs.read_response(ok.as_bytes()), Ok(Parse::Complete(ok.len())));
        assert_eq!(hs.read_response(&ok.as_bytes()[..20]), Ok(Parse::Partial));
        let bad = ok.replace("s3pP", "AAAA");
        assert_eq!(hs.read_response(bad.as_bytes()), Err(HandshakeError::BadAccept));
        let refused = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            hs.read_response(refused.as_bytes()),
            Err(HandshakeError::Refused { status: 401, head_len: refused.len() - 2 })
        );
    }
}
