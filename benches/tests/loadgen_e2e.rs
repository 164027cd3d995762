//! The load generator end to end, briefly: 5 calls for ~3 s through the real gateway (started
//! in-process with `Gateway::start`, configured from the harness's own environment), and the
//! same callers against the conformance harness's WebSocket echo server (the echo floor).
//! Asserts what must hold on any machine: every frame sent came back exactly once to the call
//! that sent it, round trips were measured, every call closed cleanly, no OpenAI stand-in
//! session was left open. Nothing timed is asserted (machines are noisy).

use std::net::TcpListener;

use callway_benches::loadgen::{Harness, Mode, Options, TargetEndpoint};
use callway_gateway::config::Config;
use callway_gateway::io::Gateway;
use clap::Parser as _;

#[allow(dead_code, reason = "the conformance harness's client half is not used here")]
#[path = "../../gateway/examples/ws-echo/echo.rs"]
mod echo;

fn options(mode: &str) -> Options {
    options_with(mode, &[])
}

fn options_with(mode: &str, extra: &[&str]) -> Options {
    let base = [
        "callway-loadgen",
        "--calls",
        "5",
        "--duration",
        "3s",
        "--ramp",
        "500ms",
        "--settle",
        "1s",
        "--drain",
        "3s",
        "--runs",
        "1",
        "--mode",
        mode,
        "--syscalls",
        "off",
        "--no-pin",
        "--quiet",
        "--stream-domain",
        "gw.loadgen.test",
        "--wait-idle",
        "0s",
        // Explicit, so that secrets in the developer's environment do not leak in.
        "--twilio-auth-token",
        "loadgen-test-auth-token",
        "--stream-token-secret",
        "loadgen-test-stream-token-secret-0123456789",
        "--internal-api-secret",
        "loadgen-test-internal-api-secret-0123456789",
    ];
    Options::try_parse_from(base.iter().chain(extra)).unwrap()
}

fn check(r: &callway_benches::loadgen::report::RunResult) {
    let c = &r.counts;
    assert_eq!(r.calls_failed, 0, "failures: {:?}", r.failures);
    assert!(c.sent >= 5 * 100, "5 calls × ≥ 4 s of 20 ms frames: {c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.received, c.sent, "{c:?}");
    assert_eq!((c.duplicated, c.misrouted, c.unknown, c.undecodable, c.malformed), (0, 0, 0, 0, 0), "{c:?}");
    assert!(r.latency.count > 0 && r.latency.p50_ms > 0.0, "{:?}", r.latency);
    assert!(!r.timeline.is_empty() && !r.histogram.is_empty());
}

#[test]
fn five_calls_through_the_real_gateway() {
    relay_five_calls(&[]);
}

#[test]
fn five_calls_with_tls_on_both_legs() {
    // `--tls both`: the callers speak wss:// to the gateway (GATEWAY_TLS_CERT/KEY), the gateway
    // speaks wss:// to the stand-in (OPENAI_BASE_URL=https://…, OPENAI_CA_FILE); neither side
    // accepts plain TCP, so every frame that came back crossed both TLS sessions.
    relay_five_calls(&["--tls", "both"]);
}

/// Five calls through an in-process gateway, checked end to end.
fn relay_five_calls(extra: &[&str]) {
    let opts = options_with("relay", extra);
    let mut harness = Harness::new(&opts).unwrap();
    let env = harness.gateway_env("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    let config = Config::from_lookup(&|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let gateway = Gateway::start(config).unwrap();
    let target = TargetEndpoint { addr: gateway.local_addr(), pid: None, core: None, ops: None };
    let r = harness.run_once(Mode::Relay, 5, 1, &target).unwrap();
    gateway.drain();
    gateway.join();
    check(&r);
    let c = &r.counts;
    assert_eq!(c.openai_sessions, 5, "one stand-in session per call: {c:?}");
    assert_eq!(c.openai_sessions_left, 0, "the gateway closed every OpenAI session: {c:?}");
    assert_eq!(c.appends, c.sent, "every frame was relayed as one append: {c:?}");
    assert_eq!(c.other_audio, 5, "each call heard the 20 ms greeting once: {c:?}");
    assert!(c.marks_echoed > 0 && c.control_requests >= 5, "{c:?}");
}

#[test]
fn two_event_loops_share_the_stand_in_ports() {
    // `--cores 2`: two loops, each with its own SO_REUSEPORT listeners; the gateway's OpenAI
    // and control-plane connections land on either.
    let opts = options_with("relay", &["--cores", "2", "--harness-core", "0,1"]);
    let mut harness = Harness::new(&opts).unwrap();
    let env = harness.gateway_env("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    let config = Config::from_lookup(&|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let gateway = Gateway::start(config).unwrap();
    let target = TargetEndpoint { addr: gateway.local_addr(), pid: None, core: None, ops: None };
    let r = harness.run_once(Mode::Relay, 6, 1, &target).unwrap();
    gateway.drain();
    gateway.join();
    check(&r);
    assert_eq!((r.counts.openai_sessions, r.counts.openai_sessions_left), (6, 0), "{:?}", r.counts);
}

#[test]
fn five_calls_against_the_echo_floor() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = echo::serve(stream);
            });
        }
    });
    let opts = options("echo-floor");
    let mut harness = Harness::new(&opts).unwrap();
    let target = TargetEndpoint { addr, pid: None, core: None, ops: None };
    let r = harness.run_once(Mode::EchoFloor, 5, 1, &target).unwrap();
    check(&r);
    assert_eq!(r.counts.openai_sessions, 0);
}

#[test]
fn a_refused_upgrade_says_why() {
    let opts = options("relay");
    let mut harness = Harness::new(&opts).unwrap();
    // A gateway with another Twilio auth token: every signature is wrong.
    let mut env = harness.gateway_env("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    for (k, v) in &mut env {
        if k == "TWILIO_AUTH_TOKEN" {
            *v = "another-token".into();
        }
    }
    let config = Config::from_lookup(&|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let gateway = Gateway::start(config).unwrap();
    let target = TargetEndpoint { addr: gateway.local_addr(), pid: None, core: None, ops: None };
    let e = harness.run_once(Mode::Relay, 5, 1, &target).unwrap_err();
    gateway.drain();
    gateway.join();
    assert!(e.contains("HTTP 403") && e.contains("X-Twilio-Signature does not match"), "{e}");
    // Nothing listening: the address is named.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = harness
        .run_once(Mode::Relay, 2, 1, &TargetEndpoint { addr: free, pid: None, core: None, ops: None })
        .unwrap_err();
    assert!(e.contains(&free.to_string()) && e.contains("refused"), "{e}");
}

#[test]
fn a_short_soak_exercises_every_fault_and_accounts_every_frame() {
    // 6 calls for 8 s: calls of 2–4 s (random hang-ups, replacement calls), a barge-in every
    // ~1 s and a tool call every ~1.5 s per session, every open session older than 1 s reset every 2 s.
    let opts = options_with(
        "relay",
        &[
            "--soak",
            "--call-min",
            "2s",
            "--call-max",
            "4s",
            "--barge-every",
            "1s",
            "--tool-every",
            "1500ms",
            "--drop-every",
            "2s",
            "--drop-share",
            "1",
            "--rss-every",
            "1s",
        ],
    );
    let mut o = opts;
    o.calls = vec![6];
    o.duration = std::time::Duration::from_secs(8);
    let mut harness = Harness::new(&o).unwrap();
    let env = harness.gateway_env("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    let config = Config::from_lookup(&|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let gateway = Gateway::start(config).unwrap();
    let target =
        TargetEndpoint { addr: gateway.local_addr(), pid: None, core: None, ops: Some(gateway.ops_addr()) };
    let r = harness.run_once(Mode::Relay, 6, 1, &target).unwrap();
    gateway.drain();
    gateway.join();
    let c = &r.counts;
    let soak = r.soak.as_ref().expect("a soak outcome");
    let s = &soak.counts;
    assert!(r.failures.is_empty(), "failures: {:?}", r.failures);
    // Every fault kind happened.
    assert!(s.calls_started > 6 && s.hang_ups > 0, "{s:?}");
    assert!(s.openai_drops > 0 && s.barge_ins > 0 && s.tool_calls > 0, "{s:?}");
    // Every frame relayed or cut by a fault; none lost.
    assert!(c.sent > 1000, "{c:?}");
    assert_eq!(c.lost, 0, "{c:?} {s:?}");
    assert_eq!(c.received + s.cut_by_hangup + s.cut_by_openai_drop, c.sent, "{c:?} {s:?}");
    assert_eq!((c.duplicated, c.misrouted, c.unknown, c.undecodable, c.malformed), (0, 0, 0, 0, 0), "{c:?}");
    // The real server's rules held, and the cross-leg checks.
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    let k = &s.checks;
    // A barge-in the call's hang-up (or an OpenAI drop) overtakes before its `clear` is void.
    assert!(k.barge_ins > 0 && k.cleared + k.voided == k.barge_ins && k.truncates_checked > 0, "{k:?}");
    assert_eq!((k.not_cleared, k.clears_unasked, k.truncates_beyond_played), (0, 0, 0), "{k:?}");
    assert!(s.tool_outputs > 0 && s.tool_outputs_unknown == 0 && s.queue_overflow_bytes == 0, "{s:?}");
    assert_eq!(s.tool_outputs_not_saved, 0, "the control plane's answer reached the model: {s:?}");
    assert!(c.tool_requests >= s.tool_outputs, "{c:?} {s:?}");
    assert_eq!(c.openai_sessions_left, 0, "{c:?}");
    assert!(c.openai_sessions > s.calls_started, "reconnects opened sessions: {c:?} {s:?}");
    // The gateway's own counters agree.
    assert!(soak.metrics_error.is_none(), "{:?}", soak.metrics_error);
    let m = |k: &str| soak.metrics.get(k).copied().unwrap_or(0.0) as u64;
    assert_eq!(
        m("callway_gateway_calls_total{reason=\"caller_hung_up\"}"),
        s.calls_started,
        "{:?}",
        soak.metrics
    );
    // A call may hang up while the control plane runs its tool: the output never goes out.
    assert!(m("callway_gateway_tool_calls_total") >= s.tool_outputs, "{:?}", soak.metrics);
    assert!(m("callway_gateway_barge_ins_total") >= k.cleared, "{:?}", soak.metrics);
}
