//! Opening the stream: Twilio's 319xx codes for each way it can fail, and a `wss://` stream
//! through TLS with a test CA.

mod common;

use std::time::Duration;

use callway_sim_twilio::caller::{CallEnd, CallerConfig, EndPolicy, Segment, run_call};
use common::{accept_upgrade, connection_counter, listener, read_head, test_pki, tls_acceptor, within};
use contract::twilio_signature::{TwilioSigner, UpgradeSignature};
use tokio::io::AsyncWriteExt as _;

const TOKEN: &str = "tok-handshake";

fn config(url: &str) -> CallerConfig {
    let mut cfg = CallerConfig::new(url, TOKEN);
    cfg.script = vec![Segment::Silence { ms: 40 }];
    cfg.end = EndPolicy::ScriptEnd;
    cfg
}

#[tokio::test(start_paused = true)]
async fn refused_connection_is_31902() {
    let (l, addr) = listener().await;
    drop(l);
    let report = within(60, run_call(config(&format!("ws://{addr}/s")))).await;
    let f = report.handshake_failure.expect("failure");
    assert_eq!((f.code, f.title), (31902, "Stream - WebSocket - Connection Refused"));
    assert_eq!(report.end, CallEnd::HandshakeFailed);
    assert_eq!(report.media_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn non_101_answer_is_31920_with_the_status() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let req = read_head(&mut tcp).await.unwrap();
        tcp.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        req
    });
    let url = format!("ws://{addr}/api/twilio/media-stream/bad-token");
    let report = within(60, run_call(config(&url))).await;
    let req = server.await.unwrap();
    let f = report.handshake_failure.expect("failure");
    assert_eq!((f.code, f.http_status), (31920, Some(403)));
    // The refused upgrade still carried the signature.
    let sig = req.header("x-twilio-signature").unwrap();
    assert_eq!(
        TwilioSigner::new(TOKEN.as_bytes()).verify_upgrade(&url, sig.as_bytes()),
        UpgradeSignature::Valid
    );
    assert_eq!(report.signature, sig);
}

#[tokio::test(start_paused = true)]
async fn silent_server_is_31901_after_the_timeout() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(tcp);
    });
    let mut cfg = config(&format!("ws://{addr}/s"));
    cfg.connect_timeout = Duration::from_secs(3);
    let started = tokio::time::Instant::now();
    let report = within(60, run_call(cfg)).await;
    assert_eq!(report.handshake_failure.expect("failure").code, 31901);
    // The caller gave up at its timeout on the (virtual) clock, not before.
    assert!(started.elapsed() >= Duration::from_secs(3));
    server.abort();
}

#[tokio::test(start_paused = true)]
async fn connection_dropped_during_the_upgrade_is_31920() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        read_head(&mut tcp).await.unwrap();
        drop(tcp);
    });
    let report = within(60, run_call(config(&format!("ws://{addr}/s")))).await;
    server.await.unwrap();
    let f = report.handshake_failure.expect("failure");
    assert_eq!((f.code, f.http_status), (31920, None));
}

#[tokio::test(start_paused = true)]
async fn url_with_a_query_string_is_refused_without_connecting() {
    let (addr, connections) = connection_counter().await;
    let report = within(60, run_call(config(&format!("ws://{addr}/s?token=abc")))).await;
    let f = report.handshake_failure.expect("failure");
    assert_eq!(f.code, 31920);
    assert!(f.detail.contains("query string"));
    // Give the counter task its turn, then check nobody dialled.
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn plain_ws_is_31922_when_wss_is_required_and_garbage_is_31923() {
    let (addr, connections) = connection_counter().await;
    let mut cfg = config(&format!("ws://{addr}/s"));
    cfg.allow_insecure_ws = false;
    assert_eq!(within(60, run_call(cfg)).await.handshake_failure.unwrap().code, 31922);
    assert_eq!(within(60, run_call(config("wss://"))).await.handshake_failure.unwrap().code, 31923);
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn wss_with_the_test_ca_works_and_is_signed_over_the_wss_url() {
    let pki = test_pki();
    let acceptor = tls_acceptor(&pki);
    let (l, addr) = listener().await;
    let url = format!("wss://localhost:{}/api/twilio/media-stream/v1.abc.def", addr.port());
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let req = read_head(&mut tls).await.unwrap();
        let mut peer = accept_upgrade(Box::new(tls), req).await;
        let mut events = Vec::new();
        while let Some(t) = peer.recv_text().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            events.push(v["event"].as_str().unwrap().to_owned());
        }
        (peer.request, events)
    });
    let mut cfg = config(&url);
    cfg.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    cfg.allow_insecure_ws = false;
    let report = within(60, run_call(cfg)).await;
    let (req, events) = server.await.unwrap();
    assert!(report.handshake_failure.is_none(), "{:?}", report.handshake_failure);
    assert_eq!(events, vec!["connected", "start", "media", "media", "stop"]);
    let sig = req.header("x-twilio-signature").unwrap();
    assert_eq!(
        TwilioSigner::new(TOKEN.as_bytes()).verify_upgrade(&url, sig.as_bytes()),
        UpgradeSignature::Valid
    );
}

#[tokio::test(start_paused = true)]
async fn untrusted_certificate_is_31910() {
    let server_pki = test_pki();
    let other_ca = test_pki();
    let acceptor = tls_acceptor(&server_pki);
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let mut cfg = config(&format!("wss://localhost:{}/s", addr.port()));
    cfg.ca_pem = Some(other_ca.ca_pem.into_bytes());
    let report = within(60, run_call(cfg)).await;
    let _ = server.await;
    let f = report.handshake_failure.expect("failure");
    assert_eq!(f.code, 31910);
    assert!(f.detail.contains("TLS"), "{}", f.detail);
}

#[tokio::test(start_paused = true)]
async fn tls_to_a_plain_server_is_31910() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    });
    let pki = test_pki();
    let mut cfg = config(&format!("wss://localhost:{}/s", addr.port()));
    cfg.ca_pem = Some(pki.ca_pem.into_bytes());
    let report = within(60, run_call(cfg)).await;
    let _ = server.await;
    assert_eq!(report.handshake_failure.expect("failure").code, 31910);
}

#[tokio::test(start_paused = true)]
async fn a_broken_websocket_frame_is_31924() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let req = read_head(&mut tcp).await.unwrap();
        let key = req.header("sec-websocket-key").unwrap().to_owned();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
        );
        tcp.write_all(answer.as_bytes()).await.unwrap();
        // A frame with the reserved opcode 3.
        tcp.write_all(&[0x83, 0x00]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let mut cfg = config(&format!("ws://{addr}/s"));
    cfg.script = vec![Segment::Silence { ms: 5000 }];
    let report = within(60, run_call(cfg)).await;
    server.await.unwrap();
    assert!(report.handshake_failure.is_none());
    assert!(matches!(report.end, CallEnd::ProtocolError { .. }), "{:?}", report.end);
    assert_eq!(report.warning_codes(), vec![31924]);
}
