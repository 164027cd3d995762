//! `/healthz` (the process answers), `/readyz` (every worker accepting, not draining) and
//! `/metrics` (Prometheus text) on `GATEWAY_OPS_ADDR`, on a thread of their own so a busy
//! worker never delays a probe. A minimal HTTP/1.1 server: one request per connection. The
//! same thread runs the periodic heap trim ([`super::memory`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Serves until every worker is gone (the drain signal, then the workers' end).
pub(crate) fn run(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    mut draining: watch::Receiver<bool>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::error!("cannot build the ops runtime");
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        tokio::spawn(super::memory::trim_periodically(metrics.clone()));
        let mut draining_seen = false;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        tokio::spawn(answer(socket, metrics.clone()));
                    }
                }
                _ = draining.wait_for(|d| *d), if !draining_seen => draining_seen = true,
                // Once draining, keep answering (503 on /readyz) until the workers are done.
                () = tokio::time::sleep(Duration::from_millis(100)), if draining_seen => {
                    if metrics.workers_ready.load(std::sync::atomic::Ordering::Relaxed) == 0
                        && metrics.active_calls.load(std::sync::atomic::Ordering::Relaxed) == 0
                    {
                        break;
                    }
                }
            }
        }
    });
}

async fn answer(mut socket: tokio::net::TcpStream, metrics: Arc<Metrics>) {
    let mut buf = [0u8; 2048];
    let mut len = 0;
    let head = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = socket.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
                return Some(());
            }
        }
    })
    .await;
    if !matches!(head, Ok(Some(()))) {
        return;
    }
    let line = buf[..len].split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/healthz") => ("200 OK", "text/plain", "ok\n".to_owned()),
        (b"GET", b"/readyz") if metrics.ready() => (
            "200 OK",
            "text/plain",
            format!("ready (io: {})\n", metrics.io_shell.get().copied().unwrap_or("?")),
        ),
        (b"GET", b"/readyz") => {
            ("503 Service Unavailable", "text/plain", "draining or starting\n".to_owned())
        }
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}
