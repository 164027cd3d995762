//! A stand-in for the edge gateway, for tests where Twilio's simulator places a real call: a
//! TLS WebSocket endpoint that authorizes each upgrade with the gateway's own sans-IO core
//! (`parse_request`, `UpgradeAuthorizer`: `x-twilio-signature` over the public `wss://` URL,
//! then the stream token), redeems the token at the control plane like the gateway does, and
//! records what it saw. Only the audio relay is missing (the gateway's network shell is its own
//! piece of work); the stand-in reads the caller's messages until `stop`.

use std::sync::{Arc, Mutex};

use callway_gateway::core::auth::UpgradeAuthorizer;
use callway_gateway::core::ws::upgrade::{Parse, parse_request, write_accept, write_refusal};
use contract::stream_token::StreamTokenVerifier;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A CA and a leaf certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    /// The CA the Twilio simulator is told to trust (PEM).
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestPki {
    /// Generates one.
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "callway control-plane test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key)).unwrap();
        TestPki { ca_pem: ca.pem(), cert_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() }
    }

    /// Writes the leaf's certificate and key as PEM files in `dir` (for a server that reads
    /// them, the gateway binary): (certificate path, key path).
    pub fn write_server_files(&self, dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{ServerConfig, crypto::ring};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// What happened on one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamSeen {
    /// The upgrade's path.
    pub path: String,
    /// `Ok(call id)` if the signature and token were accepted, else the refusal's status.
    pub authorized: Option<Result<String, u16>>,
    /// HTTP status of the redemption at the control plane, and its body.
    pub redeemed: Option<(u16, serde_json::Value)>,
    /// `event` of each Twilio message, in order.
    pub events: Vec<String>,
    /// `start.customParameters`.
    pub custom_parameters: serde_json::Value,
    /// `start.callSid`.
    pub call_sid: String,
}

/// The running stand-in.
pub struct Edge {
    /// `127.0.0.1:PORT`, the value for `TWILIO_STREAM_DOMAIN`.
    pub domain: String,
    /// One entry per upgrade attempt.
    pub seen: Arc<Mutex<Vec<StreamSeen>>>,
}

impl Edge {
    /// Listens on 127.0.0.1 with `pki`'s certificate; redeems at `control_plane` (base URL)
    /// with `internal_secret`; checks signatures with `auth_token` and tokens with
    /// `stream_secret`.
    pub async fn start(
        pki: &TestPki,
        control_plane: String,
        auth_token: &str,
        stream_secret: &str,
        internal_secret: &str,
    ) -> Edge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let domain = listener.local_addr().unwrap().to_string();
        let verifier = StreamTokenVerifier::new(&[stream_secret], 30).unwrap();
        let authorizer =
            Arc::new(UpgradeAuthorizer::new(auth_token.as_bytes(), &format!("wss://{domain}"), verifier));
        let internal = Arc::new(contract::internal_api::InternalAuth::new(internal_secret.as_bytes()));
        let seen: Arc<Mutex<Vec<StreamSeen>>> = Arc::default();
        let acceptor = pki.acceptor();
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, authorizer, internal, seen, cp) = (
                    acceptor.clone(),
                    authorizer.clone(),
                    internal.clone(),
                    s.clone(),
                    control_plane.clone(),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    serve(tls, &authorizer, &internal, &cp, &seen).await;
                });
            }
        });
        Edge { domain, seen }
    }
}

async fn serve(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    authorizer: &UpgradeAuthorizer,
    internal: &contract::internal_api::InternalAuth,
    control_plane: &str,
    seen: &Mutex<Vec<StreamSeen>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    let (path, key, auth) = loop {
        let n = tls.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        head.extend_from_slice(&buf[..n]);
        match parse_request(&head) {
            Ok(Parse::Partial) => continue,
            Ok(Parse::Complete(req)) => {
                let now = callway_control::routes::now_secs();
                let auth =
                    authorizer.authorize(&req, now).map(|c| uuid::Uuid::from_bytes(c.call_id).to_string());
                break (req.path.to_owned(), req.key.to_owned(), auth);
            }
            Err(e) => {
                let mut out = [0u8; 512];
                let n = write_refusal(&mut out, e.status(), &e.to_string()).unwrap();
                let _ = tls.write_all(&out[..n]).await;
                return;
            }
        }
    };
    let mut record = StreamSeen { path: path.clone(), ..Default::default() };
    let mut out = [0u8; 512];
    match &auth {
        Ok(call_id) => record.authorized = Some(Ok(call_id.clone())),
        Err(e) => {
            record.authorized = Some(Err(e.status()));
            seen.lock().unwrap().push(record);
            let n = write_refusal(&mut out, e.status(), &e.to_string()).unwrap();
            let _ = tls.write_all(&out[..n]).await;
            return;
        }
    }
    // Redeem before accepting, as the gateway does: a replayed token never gets a 101.
    let token = path.rsplit('/').next().unwrap_or("");
    let body = serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap();
    let ts = callway_control::routes::now_secs();
    let path_redeem = contract::internal_api::REDEEM_PATH;
    let res = reqwest::Client::new()
        .post(format!("{control_plane}{path_redeem}"))
        .header("content-type", "application/json")
        .header(contract::internal_api::TIMESTAMP_HEADER, ts.to_string())
        .header(contract::internal_api::SIGNATURE_HEADER, internal.sign(ts, "POST", path_redeem, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    record.redeemed = Some((status, res.json().await.unwrap_or_default()));
    if status != 200 {
        seen.lock().unwrap().push(record);
        let n = write_refusal(&mut out, 403, "stream token already used").unwrap();
        let _ = tls.write_all(&out[..n]).await;
        return;
    }
    let n = write_accept(&mut out, &key).unwrap();
    if tls.write_all(&out[..n]).await.is_err() {
        return;
    }
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tls,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    while let Some(Ok(msg)) = ws.next().await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let event = v["event"].as_str().unwrap_or("?").to_owned();
        if event == "start" {
            record.custom_parameters = v["start"]["customParameters"].clone();
            record.call_sid = v["start"]["callSid"].as_str().unwrap_or("").to_owned();
        }
        let stop = event == "stop";
        record.events.push(event);
        if stop {
            break;
        }
    }
    let _ = ws.close(None).await;
    seen.lock().unwrap().push(record);
}
