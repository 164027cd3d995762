//! Opening the OpenAI connection: resolve, TCP connect (each address in turn), TLS for
//! `wss://` — all under one timeout, all cancel-safe (plain tokio). The WebSocket upgrade
//! itself is written and checked by the core.

use std::io;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::stream::Stream;
use crate::config::OpenAiEndpoint;

/// Longest time for resolve + connect + TLS.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected (and, for `wss`, encrypted) socket to the Realtime endpoint.
pub(crate) async fn connect(
    endpoint: &OpenAiEndpoint,
    tls: &tokio_rustls::TlsConnector,
) -> io::Result<Stream> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(endpoint, tls))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "OpenAI connect timed out"))?
}

async fn connect_inner(endpoint: &OpenAiEndpoint, tls: &tokio_rustls::TlsConnector) -> io::Result<Stream> {
    let mut last =
        io::Error::new(io::ErrorKind::NotFound, format!("{} resolved to no address", endpoint.host));
    let mut tcp = None;
    for addr in tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port)).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    if !endpoint.tls {
        return Ok(Stream::Plain(tcp));
    }
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok(Stream::Client(tls.connect(name, tcp).await?))
}
