//! The real edge gateway for the tests that follow a call end to end: the `callway-gateway`
//! binary of this workspace, run as its own process the way `scripts/demo` and `deploy/check`
//! run it (configuration in the environment, TLS on its listener with the tests' CA, its
//! `serving` line read from stderr for the address it bound). It authorizes the Twilio
//! simulator's upgrade, redeems the stream token at the control plane and relays the call's
//! audio to the OpenAI simulator and back.
//!
//! The binary is the one Cargo built into this target directory (`target/debug/callway-gateway`
//! beside `deps/`; `cargo test --workspace`, hence `scripts/test`, builds it with the gateway's
//! own tests), or `CALLWAY_GATEWAY_BIN`. A binary older than the gateway's sources is refused
//! with what to run: a test passing against yesterday's gateway would prove nothing.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::edge::TestPki;

/// A running `callway-gateway` process, killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// `127.0.0.1:PORT` it accepts Twilio's streams on: the value for `TWILIO_STREAM_DOMAIN`.
    pub domain: String,
    /// `127.0.0.1:PORT` of `/healthz`, `/readyz`, `/metrics`.
    pub ops: String,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// The newest modification time of the Rust sources under `dir` (what the binary is built
/// from: a note beside them does not make it stale).
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let m = if path.is_dir() {
            newest(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
        } else {
            continue;
        };
        t = t.max(m);
    }
    t
}

/// The gateway binary to run, checked to exist and to be newer than its sources.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("CALLWAY_GATEWAY_BIN").map(PathBuf::from).unwrap_or_else(|| {
        // This test runs from <target>/debug/deps/; Cargo puts binaries in <target>/debug/.
        let exe = std::env::current_exe().expect("the test knows its own path");
        exe.parent().and_then(Path::parent).expect("<target>/debug").join("callway-gateway")
    });
    let build =
        "cargo build -p callway-gateway --bin callway-gateway (scripts/test builds it with the workspace)";
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!("no gateway binary at {}: {build}, or set CALLWAY_GATEWAY_BIN", path.display())
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var_os("CALLWAY_GATEWAY_BIN").is_none() {
        for sources in ["gateway/src", "gateway/Cargo.toml", "contract/src"] {
            let p = root.join(sources);
            let changed =
                if p.is_dir() { newest(&p) } else { p.metadata().and_then(|m| m.modified()).unwrap() };
            assert!(
                changed <= built,
                "the gateway binary {} is older than {sources}: {build}",
                path.display()
            );
        }
    }
    path
}

impl GatewayProcess {
    /// Starts the gateway on 127.0.0.1 (a port of its choosing) with `pki`'s certificate,
    /// redeeming at `control_plane` (base URL) and relaying to the OpenAI simulator at
    /// `openai_base` with `openai_key`, one worker (CI has two cores), with `extra` environment
    /// (`OPENAI_VOICE_API=live` for the GPT-Live engine; Realtime without it). `secrets`:
    /// (Twilio auth token, stream-token secret, internal API secret). Returns once it says it is serving (its stderr's `serving` line, which also
    /// names the ops address it bound).
    pub fn start(
        pki: &TestPki,
        control_plane: &str,
        openai_base: &str,
        openai_key: &str,
        secrets: (&str, &str, &str),
        extra: &[(&str, &str)],
    ) -> GatewayProcess {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pki.write_server_files(dir.path());
        let (auth_token, stream_secret, internal_secret) = secrets;
        // The signature Twilio makes is over the public URL, so the domain (with its port) is
        // configured before the start: a port free now (as the gateway's own TLS test does).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let domain = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary())
            .env_clear()
            .env("OPENAI_API_KEY", openai_key)
            .env("OPENAI_BASE_URL", openai_base)
            .env("TWILIO_AUTH_TOKEN", auth_token)
            .env("TWILIO_STREAM_DOMAIN", &domain)
            .env("STREAM_TOKEN_SECRET", stream_secret)
            .env("INTERNAL_API_SECRET", internal_secret)
            .env("CONTROL_PLANE_URL", control_plane)
            .env("GATEWAY_LISTEN_ADDR", &domain)
            .env("GATEWAY_OPS_ADDR", "127.0.0.1:0")
            .env("GATEWAY_WORKERS", "1")
            .env("GATEWAY_IO", "epoll")
            .env("GATEWAY_DRAIN_SECS", "0")
            .env("GATEWAY_TLS_CERT", &cert)
            .env("GATEWAY_TLS_KEY", &key)
            .env("RUST_LOG", "info")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        // Reads stderr for the whole run (a full pipe would block the gateway), keeping it for
        // a failing test's message.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving")
                    && let Some(ops) = line.split("ops=").nth(1).and_then(|s| s.split_whitespace().next())
                {
                    let _ = tx.send(ops.to_owned());
                }
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let Ok(ops) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway did not say it was serving:\n{}", log.lock().unwrap());
        };
        GatewayProcess { child, domain, ops, log, _dir: dir }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET /metrics` on its ops port.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.ops);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
