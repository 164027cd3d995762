//! Opening the Media Streams WebSocket the way Twilio does, step by step, so that each failure
//! becomes the 319xx code Twilio would report (protocols.md A3):
//!
//! | step | failure | code |
//! |---|---|---|
//! | URL | not parseable, no host | 31923 |
//! | URL | not `wss://` (only when `ws://` is not allowed) | 31922 |
//! | URL | query string (`<Stream url>` does not support one) | 31920 |
//! | TCP | refused | 31902 |
//! | TCP | no answer within the timeout, unreachable, unresolvable | 31901 |
//! | TLS | handshake failed (untrusted certificate, not TLS …) | 31910 |
//! | HTTP | status other than 101 | 31920 |
//! | HTTP | no answer within the timeout | 31901 |
//! | HTTP | 101 but not a valid WebSocket handshake | 31924 |
//!
//! The upgrade carries `x-twilio-signature` (lowercase, as Twilio sends it on WebSocket
//! requests): base64 HMAC-SHA1 of the URL exactly as written, with the auth token, no parameters.

use std::sync::Arc;
use std::time::Duration;

use contract::twilio_signature::TwilioSigner;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::codes;

/// What the WebSocket runs over (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open Media Streams WebSocket.
pub type WsStream = WebSocketStream<Box<dyn Io>>;

/// The `User-Agent` Twilio's Media Streams client sends.
pub const USER_AGENT: &str = "Twilio.TmeWs/1.0";

/// Why the stream could not be opened, as Twilio reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HandshakeFailure {
    /// 319xx code.
    pub code: u32,
    /// Twilio's title for the code.
    pub title: &'static str,
    /// What happened.
    pub detail: String,
    /// The HTTP status the server answered with (31920).
    pub http_status: Option<u16>,
}

impl HandshakeFailure {
    /// A failure with `code` and a description.
    pub fn new(code: u32, detail: impl Into<String>) -> Self {
        Self { code, title: codes::title(code), detail: detail.into(), http_status: None }
    }
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.title, self.detail)
    }
}

/// How to open the stream.
#[derive(Debug, Clone)]
pub struct ConnectSettings<'a> {
    /// The stream URL exactly as written in the TwiML (this exact string is signed).
    pub url: &'a str,
    /// The account's auth token (signs the upgrade).
    pub auth_token: &'a str,
    /// PEM of the CA(s) to trust for `wss://`; the public web roots when `None`.
    pub ca_pem: Option<&'a [u8]>,
    /// Limit for TCP connect, TLS and HTTP upgrade, each.
    pub timeout: Duration,
    /// Accept `ws://` (local tests). Twilio itself only accepts `wss://` (31922).
    pub allow_insecure_ws: bool,
}

/// The signature Twilio puts on the upgrade request for `url`.
pub fn upgrade_signature(url: &str, auth_token: &str) -> String {
    TwilioSigner::new(auth_token.as_bytes()).sign(url, &[])
}

/// A checked stream URL.
#[derive(Debug, Clone)]
pub struct StreamUrl {
    /// `true` for `wss://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (443/80 when not written).
    pub port: u16,
}

/// Checks a `<Stream url>` as Twilio does before dialling it.
pub fn check_url(url: &str, allow_insecure_ws: bool) -> Result<StreamUrl, HandshakeFailure> {
    let parsed = url::Url::parse(url)
        .map_err(|e| HandshakeFailure::new(codes::STREAM_BAD_URL, format!("`{url}`: {e}")))?;
    let tls = match parsed.scheme() {
        "wss" => true,
        "ws" if allow_insecure_ws => false,
        other => {
            return Err(HandshakeFailure::new(
                codes::STREAM_NOT_WSS,
                format!("scheme `{other}`: Media Streams require wss://"),
            ));
        }
    };
    if parsed.query().is_some() {
        return Err(HandshakeFailure::new(
            codes::STREAM_HANDSHAKE,
            "the stream URL has a query string, which <Stream> does not support (use <Parameter> or the path)",
        ));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| HandshakeFailure::new(codes::STREAM_BAD_URL, format!("`{url}` has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
    Ok(StreamUrl { tls, host, port })
}

fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<ClientConfig>, HandshakeFailure> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| HandshakeFailure::new(codes::STREAM_TLS, format!("CA PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| HandshakeFailure::new(codes::STREAM_TLS, format!("CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(HandshakeFailure::new(codes::STREAM_TLS, "CA PEM holds no certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| HandshakeFailure::new(codes::STREAM_TLS, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the WebSocket: TCP, TLS for `wss://`, then the signed upgrade. Returns the stream and
/// the signature sent.
pub async fn connect(s: &ConnectSettings<'_>) -> Result<(WsStream, String), HandshakeFailure> {
    let target = check_url(s.url, s.allow_insecure_ws)?;
    let tls = if target.tls { Some(tls_config(s.ca_pem)?) } else { None };

    let tcp = match crate::time::timeout(s.timeout, TcpStream::connect((target.host.as_str(), target.port)))
        .await
    {
        Err(_) => {
            return Err(HandshakeFailure::new(
                codes::STREAM_CONNECT_TIMEOUT,
                format!("no answer from {}:{} within {:?}", target.host, target.port, s.timeout),
            ));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HandshakeFailure::new(
                codes::STREAM_CONNECT_REFUSED,
                format!("{}:{}: {e}", target.host, target.port),
            ));
        }
        Ok(Err(e)) => {
            return Err(HandshakeFailure::new(
                codes::STREAM_CONNECT_TIMEOUT,
                format!("{}:{}: {e}", target.host, target.port),
            ));
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);

    let io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = ServerName::try_from(target.host.clone()).map_err(|e| {
                HandshakeFailure::new(codes::STREAM_BAD_URL, format!("host `{}`: {e}", target.host))
            })?;
            match crate::time::timeout(s.timeout, TlsConnector::from(config).connect(name, tcp)).await {
                Err(_) => return Err(HandshakeFailure::new(codes::STREAM_TLS, "TLS handshake timed out")),
                Ok(Err(e)) => {
                    return Err(HandshakeFailure::new(
                        codes::STREAM_TLS,
                        format!("TLS handshake failed: {e}"),
                    ));
                }
                Ok(Ok(stream)) => Box::new(stream),
            }
        }
    };

    let signature = upgrade_signature(s.url, s.auth_token);
    let mut request = s
        .url
        .into_client_request()
        .map_err(|e| HandshakeFailure::new(codes::STREAM_BAD_URL, format!("`{}`: {e}", s.url)))?;
    let headers = request.headers_mut();
    headers.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature)
            .map_err(|e| HandshakeFailure::new(codes::STREAM_BAD_URL, e.to_string()))?,
    );
    headers.insert("user-agent", HeaderValue::from_static(USER_AGENT));

    use tokio_tungstenite::tungstenite::Error as WsError;
    match crate::time::timeout(s.timeout, tokio_tungstenite::client_async_with_config(request, io, None))
        .await
    {
        Err(_) => {
            Err(HandshakeFailure::new(codes::STREAM_CONNECT_TIMEOUT, "no answer to the WebSocket upgrade"))
        }
        Ok(Ok((ws, _response))) => Ok((ws, signature)),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            let mut f = HandshakeFailure::new(
                codes::STREAM_HANDSHAKE,
                format!("server answered HTTP {status} instead of 101"),
            );
            f.http_status = Some(status);
            Err(f)
        }
        Ok(Err(
            e @ (WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(tokio_tungstenite::tungstenite::error::ProtocolError::HandshakeIncomplete)),
        )) => Err(HandshakeFailure::new(
            codes::STREAM_HANDSHAKE,
            format!("connection closed before a 101 answer: {e}"),
        )),
        Ok(Err(e)) => {
            Err(HandshakeFailure::new(codes::STREAM_PROTOCOL, format!("invalid upgrade answer: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_checks() {
        assert!(check_url("wss://edge.example.eu/api/twilio/media-stream/v1.abc.def", false).is_ok());
        assert_eq!(check_url("ws://127.0.0.1:9/x", false).unwrap_err().code, 31922);
        assert_eq!(check_url("https://edge.example.eu/x", true).unwrap_err().code, 31922);
        assert_eq!(check_url("wss://edge.example.eu/x?token=1", false).unwrap_err().code, 31920);
        assert_eq!(check_url("not a url", false).unwrap_err().code, 31923);
        let u = check_url("ws://127.0.0.1:9/x", true).unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 9));
    }

    #[test]
    fn signature_matches_the_testing_md_vectors() {
        let url = "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def";
        assert_eq!(upgrade_signature(url, "12345"), "24fy8gg1vgNB/teYcvsiUvJw6Zo=");
        assert_eq!(upgrade_signature(&format!("{url}/"), "12345"), "H3wCTAT7wFDOgJHsvxr9HX2thw4=");
    }
}
