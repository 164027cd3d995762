//! The simulators say what they refuse: each refused request (unknown route, wrong method, bad
//! credentials) is logged once at `info` with its method, path, status and the error code it
//! was answered with, and the logs, written to a pipe, carry no colour codes (issue 18).
//!
//! The `callway-sim` binary runs as the demo runs it; its stderr is read after the requests
//! (each line is written before the answer it describes is sent).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A simulator started on a free port; killed when dropped.
struct Sim {
    child: Child,
    addr: String,
}

impl Sim {
    /// Starts `callway-sim ARGS --listen 127.0.0.1:0` and reads the address from its banner.
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callway-sim"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("callway-sim starts");
        let mut banner = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut banner).unwrap();
        let addr = banner
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in the banner {banner:?}"))
            .trim()
            .to_owned();
        Sim { child, addr }
    }

    /// Sends one HTTP/1.1 request and returns the status code.
    fn request(&self, method: &str, path: &str, headers: &[&str]) -> u16 {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{answer}"))
    }

    /// Stops the simulator and returns everything it logged.
    fn logs(mut self) -> String {
        self.child.kill().unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let _ = self.child.wait();
        err
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The log lines saying `method path` was refused.
fn refusals<'a>(logs: &'a str, method: &str, path: &str) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| l.contains("request refused"))
        .filter(|l| l.contains(&format!("method={method} ")) && l.contains(&format!("path={path} ")))
        .collect()
}

#[track_caller]
fn said_once(logs: &str, method: &str, path: &str, status: u16, code: &str) {
    let lines = refusals(logs, method, path);
    assert_eq!(lines.len(), 1, "{method} {path}: one line expected in\n{logs}");
    let line = lines[0];
    assert!(line.contains(" INFO "), "at info: {line}");
    assert!(line.contains(&format!("status={status}")), "{line}");
    assert!(line.contains(&format!("code={code}")), "{line}");
}

#[test]
fn the_openai_simulator_logs_each_refusal_once() {
    let sim = Sim::start(&["openai", "--api-key", "sk-sim-refusals-0123456789"]);
    assert_eq!(sim.request("GET", "/v1/nowhere", &[]), 404);
    assert_eq!(sim.request("DELETE", "/v1/realtime/calls", &[]), 404);
    let bad_key = "authorization: Bearer sk-wrong-key-0123456789";
    assert_eq!(sim.request("POST", "/v1/realtime/client_secrets", &[bad_key]), 401);
    let preflight = sim.request(
        "OPTIONS",
        "/v1/realtime/calls",
        &["origin: http://127.0.0.1:8080", "access-control-request-method: POST"],
    );
    assert!(preflight < 300, "the preflight is served: {preflight}");
    let logs = sim.logs();
    said_once(&logs, "GET", "/v1/nowhere", 404, "invalid_request_error");
    said_once(&logs, "DELETE", "/v1/realtime/calls", 404, "invalid_request_error");
    said_once(&logs, "POST", "/v1/realtime/client_secrets", 401, "invalid_api_key");
    assert!(refusals(&logs, "OPTIONS", "/v1/realtime/calls").is_empty(), "served, not refused:\n{logs}");
    assert!(!logs.contains('\x1b'), "no colour codes in a pipe:\n{logs}");
    assert!(!logs.contains("sk-wrong-key-0123456789"), "no key in the logs");
}

#[test]
fn the_twilio_simulator_logs_each_refusal_once() {
    let account = "AC0123456789abcdef0123456789abcdef";
    let token = "0123456789abcdef0123456789abcdef";
    let sim = Sim::start(&["twilio-api", "--account-sid", account, "--auth-token", token]);
    let host = "host: api.twilio.com";
    let basic = |pass: &str| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{account}:{pass}"));
        format!("authorization: Basic {b64}")
    };
    let calls = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let nowhere = format!("/2010-04-01/Accounts/{account}/Nowhere.json");
    let good = basic(token);
    assert_eq!(sim.request("GET", &nowhere, &[host, &good]), 404);
    assert_eq!(sim.request("DELETE", &calls, &[host, &good]), 405);
    assert_eq!(sim.request("GET", &calls, &[host, &basic("not-the-token")]), 401);
    assert_eq!(sim.request("GET", &calls, &[host, &good]), 200);
    let logs = sim.logs();
    said_once(&logs, "GET", &nowhere, 404, "20404");
    said_once(&logs, "DELETE", &calls, 405, "20004");
    said_once(&logs, "GET", &calls, 401, "20003");
    assert!(!logs.contains('\x1b'), "no colour codes in a pipe:\n{logs}");
}
