//! Running the levels: for each level and repeat, each mode in turn (echo floor first, so both
//! see the same conditions), a fresh process under test (gateway or echo server) pinned to its
//! core, the event loops on the harness core(s), and this thread as the monitor.
//!
//! The monitor never touches a socket. It sleeps until the next second or window boundary,
//! samples `/proc` at the edges of the measured window (the target's CPU and RSS, the harness's
//! own CPU, both cores' busy time, frames completed, loop idle time), prints the progress line,
//! starts the syscall count right after the window, and merges the loops' measurements into a
//! [`RunResult`] at the end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use contract::stream_token::StreamTokenVerifier;

use super::event_loop::{ShardOutcome, ShardPlan, run_shard};
use super::frame::FrameTemplate;
use super::options::{Mode, Options, SyscallChoice};
use super::pacing::{Schedule, Timeline};
use super::process::{Spawned, free_local_addr, pin_current_thread};
use super::procfs::{self, CoreTimes};
use super::recorder::{Progress, Recorder, RunClock};
use super::report::{HarnessUsage, RunResult, SecondPoint, SyscallResult, TargetUsage, run_line};
use super::setup::{GatewayAddrs, Secrets, gateway_env, identities, random_hex};
use super::soak::driver::SoakPlan;
use super::soak::metrics;
use super::soak::report::{RssSample, SoakOutcome};
use super::stats::LatencyHist;
use super::syscalls::{self, Tool};
use super::tls::LegTls;

/// The process the callers talk to in one run.
#[derive(Debug, Clone, Copy)]
pub struct TargetEndpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its pid, to measure it (`None`: in-process or unknown; no CPU, memory or syscalls).
    pub pid: Option<u32>,
    /// The core it is pinned to, if known.
    pub core: Option<usize>,
    /// The gateway's ops port (`/metrics`), if known.
    pub ops: Option<SocketAddr>,
}

/// The harness: options, secrets, the stand-in and control-plane listeners (bound once, kept
/// for every run), and the syscall tool.
pub struct Harness {
    opts: Options,
    secrets: Secrets,
    openai_listeners: Vec<std::net::TcpListener>,
    control_listeners: Vec<std::net::TcpListener>,
    /// Where the OpenAI stand-in listens.
    pub openai_addr: SocketAddr,
    /// Where the stub control plane listens.
    pub control_addr: SocketAddr,
    verifier: Arc<StreamTokenVerifier>,
    syscall_tool: Option<Tool>,
    syscall_note: Option<String>,
    runs_done: u64,
    tls: LegTls,
}

fn bind(addr: SocketAddr, n: usize) -> Result<(SocketAddr, Vec<std::net::TcpListener>), String> {
    use socket2::{Domain, Socket, Type};
    let mut out = Vec::with_capacity(n);
    let mut at = addr;
    for _ in 0..n {
        let s = Socket::new(Domain::for_address(at), Type::STREAM, None).map_err(|e| e.to_string())?;
        s.set_reuse_address(true).map_err(|e| e.to_string())?;
        if n > 1 {
            s.set_reuse_port(true).map_err(|e| e.to_string())?;
        }
        s.bind(&at.into()).map_err(|e| format!("cannot listen on {at}: {e}"))?;
        s.listen(4096).map_err(|e| e.to_string())?;
        let l: std::net::TcpListener = s.into();
        at = l.local_addr().map_err(|e| e.to_string())?;
        out.push(l);
    }
    Ok((at, out))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// What the syscall-count thread returns: the count, frames completed meanwhile, seconds.
type SyscallJob = (Result<syscalls::SyscallCount, String>, u64, f64);

/// Busy share of the busiest core over one second.
fn busiest_core_over_a_second() -> f64 {
    let n = super::process::cores_online();
    let before: Vec<Option<CoreTimes>> = (0..n).map(|c| procfs::core_times(c).ok()).collect();
    std::thread::sleep(Duration::from_secs(1));
    (0..n).filter_map(|c| Some(before[c]?.busy_share(&procfs::core_times(c).ok()?))).fold(0.0, f64::max)
}

/// Waits (up to `max`) until every core is below 20 % busy; returns the last busiest share and
/// the seconds waited.
fn wait_idle(max: Duration, quiet: bool) -> (f64, f64) {
    let start = Instant::now();
    let mut said = false;
    loop {
        let busy = busiest_core_over_a_second();
        if busy < 0.20 || start.elapsed() >= max {
            if said && !quiet {
                eprintln!("loadgen: machine idle enough ({:.0} % busiest core), starting", busy * 100.0);
            }
            return (busy, start.elapsed().as_secs_f64());
        }
        if !said && !quiet {
            eprintln!(
                "loadgen: a core is {:.0} % busy with something else: waiting up to {max:?} for it to calm down",
                busy * 100.0
            );
            said = true;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// What the monitor reads at an edge of the measured window.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    target_ticks: Option<u64>,
    self_ticks: u64,
    harness_cores: Vec<CoreTimes>,
    target_core: Option<CoreTimes>,
    received: u64,
    idle_ns: u64,
    turns: u64,
}

impl Harness {
    /// Binds the listeners and prepares the secrets.
    pub fn new(opts: &Options) -> Result<Harness, String> {
        opts.validate()?;
        let secrets = Secrets::new(
            opts.twilio_auth_token.clone(),
            opts.stream_token_secret.clone(),
            opts.internal_api_secret.clone(),
            opts.stream_domain.clone(),
        )?;
        let (openai_addr, openai_listeners) = bind(opts.openai_listen, opts.cores)?;
        let (control_addr, control_listeners) = bind(opts.control_listen, opts.cores)?;
        let verifier = StreamTokenVerifier::new(&[secrets.stream_token_secret.as_bytes()], 0)
            .map_err(|e| format!("STREAM_TOKEN_SECRET: {e}"))?;
        let (syscall_tool, syscall_note) = match opts.syscalls {
            SyscallChoice::Off => (None, Some("not counted (--syscalls off)".to_owned())),
            SyscallChoice::Perf => (Some(Tool::Perf), None),
            SyscallChoice::Strace => (Some(Tool::Strace), None),
            SyscallChoice::Auto => match Tool::detect() {
                Some(t) => (Some(t), None),
                None => (None, Some("neither perf (syscall tracepoints) nor strace works here".to_owned())),
            },
        };
        let tls = LegTls::new(opts.tls)?;
        Ok(Harness {
            tls,
            opts: opts.clone(),
            secrets,
            openai_listeners,
            control_listeners,
            openai_addr,
            control_addr,
            verifier: Arc::new(verifier),
            syscall_tool,
            syscall_note,
            runs_done: 0,
        })
    }

    /// The syscall tool in use, if any.
    pub fn syscall_tool(&self) -> Option<Tool> {
        self.syscall_tool
    }

    /// The secrets shared with the gateway.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The environment for a gateway listening on `listen` (ops port `ops`) that uses this
    /// harness's stand-in and stub control plane.
    pub fn gateway_env(&self, listen: SocketAddr, ops: SocketAddr) -> Vec<(String, String)> {
        let mut env = gateway_env(
            &self.secrets,
            &GatewayAddrs { listen, ops, openai: self.openai_addr, control: self.control_addr },
        );
        for (k, v) in self.tls.gateway_env(self.openai_addr) {
            env.retain(|(name, _)| *name != k);
            env.push((k, v));
        }
        // --gateway-env KEY=VALUE, last one wins.
        for (k, v) in self.opts.gateway_env.iter().filter_map(|kv| kv.split_once('=')) {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v.to_owned()));
        }
        env
    }

    /// Every level × repeat × mode, spawning the process under test for each run as the
    /// options say. Results come in run order; each is logged on stderr as it ends.
    pub fn run_all(&mut self) -> Result<Vec<RunResult>, String> {
        let mut results = Vec::new();
        let mut modes = self.opts.mode.clone();
        modes.sort();
        modes.dedup();
        let levels = self.opts.calls.clone();
        for &calls in &levels {
            for run in 1..=self.opts.runs {
                for &mode in &modes {
                    let r = self.run_spawned(mode, calls, run)?;
                    eprintln!("loadgen: {}", run_line(&r));
                    results.push(r);
                }
            }
        }
        Ok(results)
    }

    fn priority(&self) -> super::process::Priority {
        super::process::Priority { nice: self.opts.nice, fifo: self.opts.rt }
    }

    fn default_gateway_bin() -> PathBuf {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
        Path::new(&target).join("release").join("callway-gateway")
    }

    /// One run against a freshly spawned process (or the external one the options name).
    fn run_spawned(&mut self, mode: Mode, calls: u32, run: u32) -> Result<RunResult, String> {
        let (busy_before, waited) = wait_idle(self.opts.wait_idle, self.opts.quiet);
        let pin = !self.opts.no_pin;
        let core = pin.then_some(self.opts.gateway_core);
        let mut child: Option<Spawned> = None;
        let target = match mode {
            Mode::Relay => match self.opts.gateway_addr {
                Some(addr) => TargetEndpoint { addr, pid: self.opts.gateway_pid, core: None, ops: None },
                None => {
                    let bin = self.opts.gateway_bin.clone().unwrap_or_else(Self::default_gateway_bin);
                    if !bin.exists() {
                        return Err(format!(
                            "no gateway binary at {}: build it (cargo build --release -p callway-gateway) or pass --gateway-bin / --gateway-addr",
                            bin.display()
                        ));
                    }
                    let listen = free_local_addr().map_err(|e| e.to_string())?;
                    let ops = free_local_addr().map_err(|e| e.to_string())?;
                    let env = self.gateway_env(listen, ops);
                    let mut c = Spawned::spawn("gateway", &bin, &[], &env, core, self.priority())
                        .map_err(|e| e.to_string())?;
                    c.wait_listening(listen, Duration::from_secs(15))?;
                    let pid = c.pid();
                    child = Some(c);
                    TargetEndpoint { addr: listen, pid: Some(pid), core, ops: Some(ops) }
                }
            },
            Mode::EchoFloor => match self.opts.echo_addr {
                Some(addr) => TargetEndpoint { addr, pid: self.opts.echo_pid, core: None, ops: None },
                None => {
                    let bin = self.opts.echo_bin.clone().unwrap_or_else(|| {
                        let g = self.opts.gateway_bin.clone().unwrap_or_else(Self::default_gateway_bin);
                        g.parent().unwrap_or(Path::new(".")).join("examples").join("ws-echo")
                    });
                    if !bin.exists() {
                        return Err(format!(
                            "no ws-echo binary at {}: build it (cargo build --release -p callway-gateway --example ws-echo) or pass --echo-bin / --echo-addr",
                            bin.display()
                        ));
                    }
                    let listen = free_local_addr().map_err(|e| e.to_string())?;
                    let mut args = vec!["server".to_owned(), listen.to_string()];
                    if self.opts.tls.twilio() {
                        // The floor's one leg is TLS like the gateway's Twilio leg.
                        args.push(self.tls.cert_file().display().to_string());
                        args.push(self.tls.key_file().display().to_string());
                    }
                    let mut c = Spawned::spawn("ws-echo", &bin, &args, &[], core, self.priority())
                        .map_err(|e| e.to_string())?;
                    c.wait_listening(listen, Duration::from_secs(15))?;
                    let pid = c.pid();
                    child = Some(c);
                    TargetEndpoint { addr: listen, pid: Some(pid), core, ops: None }
                }
            },
        };
        // Let the probe connection and the start-up settle.
        std::thread::sleep(Duration::from_millis(300));
        let mut result = self.run_once(mode, calls, run, &target);
        if let Ok(r) = &mut result {
            r.busy_before_pct = busy_before * 100.0;
            r.waited_for_idle_s = waited;
        }
        if let Some(mut c) = child {
            let alive = c.check_alive();
            c.stop(Duration::from_secs(5));
            if let (Err(why), Ok(_)) = (alive, &result) {
                return Err(format!("the process under test died during the run: {why}"));
            }
        }
        result
    }

    fn sample(&self, target: &TargetEndpoint, progress: &Progress) -> Sample {
        let cores =
            if self.opts.no_pin { Vec::new() } else { self.opts.harness_core[..self.opts.cores].to_vec() };
        Sample {
            at: Instant::now(),
            target_ticks: target.pid.and_then(|p| procfs::process_cpu_ticks(p).ok()),
            self_ticks: procfs::self_cpu_ticks().unwrap_or(0),
            harness_cores: cores.iter().filter_map(|&c| procfs::core_times(c).ok()).collect(),
            target_core: target.core.and_then(|c| procfs::core_times(c).ok()),
            received: Progress::get(&progress.received),
            idle_ns: Progress::get(&progress.idle_ns),
            turns: Progress::get(&progress.turns),
        }
    }

    /// One run of `calls` calls against `target` (already listening). Blocks until it ends.
    pub fn run_once(
        &mut self,
        mode: Mode,
        calls: u32,
        run: u32,
        target: &TargetEndpoint,
    ) -> Result<RunResult, String> {
        let o = self.opts.clone();
        self.runs_done += 1;
        let run_tag = u64::from_str_radix(&random_hex(4), 16).unwrap_or(self.runs_done);
        let frame = Duration::from_millis(u64::from(o.frame_ms));
        let schedule = Schedule::new(o.tick, frame, calls, o.ramp)?;
        let tool = if target.pid.is_some() { self.syscall_tool } else { None };
        let syscall_window = match tool {
            Some(Tool::Perf) => o.syscall_window,
            Some(Tool::Strace) => o.syscall_window.min(Duration::from_secs(3)),
            None => Duration::ZERO,
        };
        // Media goes on while the tool runs: perf counts `ceil(window) + 2` s (its first and last
        // intervals are dropped) after it has attached; strace the window after attaching.
        let media_extra = match tool {
            None => Duration::ZERO,
            Some(Tool::Perf) => Duration::from_secs_f64(syscall_window.as_secs_f64().ceil() + 3.5),
            Some(Tool::Strace) => syscall_window + Duration::from_millis(1500),
        };
        let timeline = Timeline::new(o.ramp, o.settle, o.duration, media_extra, o.drain);
        let total = Duration::from_nanos(timeline.close_deadline) + Duration::from_secs(60);
        let soak = o.soak.soak.then(|| SoakPlan { args: o.soak.clone(), seed: run_tag });
        // A soak replaces every call that ends: enough identities for calls as short as
        // --call-min all through the run.
        let prepared = match &soak {
            Some(p) => {
                let waves = o.duration.as_secs_f64() / p.args.call_min.as_secs_f64().max(1.0);
                calls.saturating_mul(waves.ceil() as u32 + 2)
            }
            None => calls,
        };
        let ids = Arc::new(identities(&self.secrets, run_tag, prepared, total.as_secs() + 600));
        let template = Arc::new(FrameTemplate::new(o.frame_ms));
        let progress = Arc::new(Progress::default());
        let abort = Arc::new(AtomicBool::new(false));
        let rss_before = target.pid.and_then(|p| procfs::rss_kib(p).ok());
        let load = load_average();
        let started_unix = unix_now();
        let origin = Instant::now() + Duration::from_millis(100);
        let clock = RunClock { schedule, timeline, origin };

        let mut handles = Vec::new();
        for k in 0..o.cores {
            let plan = ShardPlan {
                mode,
                target: target.addr,
                host: self.secrets.stream_domain.clone(),
                clock,
                template: template.clone(),
                identities: ids.clone(),
                calls: (0..calls).filter(|c| *c as usize % o.cores == k).collect(),
                openai_listener: self.openai_listeners[k].try_clone().ok(),
                control_listener: self.control_listeners[k].try_clone().ok(),
                verifier: Some(self.verifier.clone()),
                progress: progress.clone(),
                abort: abort.clone(),
                seed: run_tag,
                soak: soak.clone(),
                client_tls: self.tls.client.clone(),
                server_tls: self.tls.server.clone(),
            };
            let core = (!o.no_pin).then(|| o.harness_core[k]);
            let h = std::thread::Builder::new()
                .name(format!("loadgen-{k}"))
                .spawn(move || {
                    if let Some(c) = core {
                        pin_current_thread(&[c]).map_err(|e| format!("cannot pin to core {c}: {e}"))?;
                    }
                    run_shard(plan).map_err(|e| format!("event loop failed: {e}"))
                })
                .map_err(|e| e.to_string())?;
            handles.push(h);
        }

        // The monitor.
        let at = |ns: u64| origin + Duration::from_nanos(ns);
        let (w0, w1) = (at(timeline.measure_start), at(timeline.measure_end));
        let (mut a, mut b): (Option<Sample>, Option<Sample>) = (None, None);
        let mut rss_steady = None;
        let mut syscall_job: Option<std::thread::JoinHandle<SyscallJob>> = None;
        let mut next_print = origin + Duration::from_secs(1);
        let rss_every = o.soak.rss_every;
        let mut next_rss = origin;
        let mut rss_samples = Vec::new();
        let label = format!("{} {calls} calls, run {run}/{}", mode.name(), o.runs);
        while handles.iter().any(|h| !h.is_finished()) {
            let now = Instant::now();
            if a.is_none() && now >= w0 {
                a = Some(self.sample(target, &progress));
            }
            if b.is_none() && now >= w1 {
                b = Some(self.sample(target, &progress));
                rss_steady = target.pid.and_then(|p| procfs::rss_kib(p).ok());
                if let (Some(tool), Some(pid)) = (tool, target.pid) {
                    let core = (!o.no_pin).then(|| o.harness_core[0]);
                    let progress = progress.clone();
                    syscall_job = Some(std::thread::spawn(move || {
                        let before = Progress::get(&progress.received);
                        let t = Instant::now();
                        let r = syscalls::count(tool, pid, syscall_window, core);
                        (r, Progress::get(&progress.received) - before, t.elapsed().as_secs_f64())
                    }));
                }
            }
            if now >= next_print {
                if !o.quiet {
                    self.print_progress(&label, calls, &progress, origin, &timeline);
                }
                next_print += Duration::from_secs(1);
                if let Some(pid) = target.pid
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    abort.store(true, Ordering::Relaxed);
                }
            }
            if soak.is_some()
                && now >= next_rss
                && let Some(kib) = target.pid.and_then(|p| procfs::rss_kib(p).ok())
            {
                let t_s = now.saturating_duration_since(origin).as_secs_f64();
                rss_samples.push(RssSample { t_s, kib });
                next_rss += rss_every;
            }
            let mut wake = next_print;
            if soak.is_some() {
                wake = wake.min(next_rss);
            }
            if a.is_none() {
                wake = wake.min(w0);
            } else if b.is_none() {
                wake = wake.min(w1);
            }
            let sleep = wake.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
            std::thread::sleep(sleep.max(Duration::from_micros(200)));
        }
        let mut outcomes: Vec<ShardOutcome> = Vec::new();
        for h in handles {
            outcomes.push(h.join().map_err(|_| "an event loop panicked".to_owned())??);
        }
        let syscall_result =
            syscall_job.map(|j| j.join().unwrap_or_else(|_| (Err("panicked".into()), 0, 0.0)));
        std::thread::sleep(Duration::from_secs(1));
        let rss_after = target.pid.and_then(|p| procfs::rss_kib(p).ok());
        let soak_outcome = soak.as_ref().map(|_| {
            let (metrics, metrics_error) = match target.ops.map(metrics::scrape) {
                Some(Ok(m)) => (m, None),
                Some(Err(e)) => (Default::default(), Some(e)),
                None => (Default::default(), Some("the gateway's ops address is not known".to_owned())),
            };
            let counts = outcomes.first().map(|o| o.rec.soak).unwrap_or_default();
            SoakOutcome { counts, rss: rss_samples, metrics, metrics_error }
        });

        // Merge the loops.
        let mut rec = Recorder::default();
        let mut per_second: Vec<LatencyHist> = Vec::new();
        for out in &outcomes {
            rec.window.merge(&out.rec.window);
            rec.lateness.merge(&out.rec.lateness);
            rec.first_audio.merge(&out.rec.first_audio);
            for (i, h) in out.rec.per_second.iter().enumerate() {
                if per_second.len() <= i {
                    per_second.resize_with(i + 1, LatencyHist::new);
                }
                per_second[i].merge(h);
            }
            let c = &out.rec.counts;
            let m = &mut rec.counts;
            m.sent += c.sent;
            m.received += c.received;
            m.duplicated += c.duplicated;
            m.misrouted += c.misrouted;
            m.unknown += c.unknown;
            m.lost += c.lost;
            m.other_audio += c.other_audio;
            m.undecodable += c.undecodable;
            m.malformed += c.malformed;
            m.marks_echoed += c.marks_echoed;
            m.clears += c.clears;
            m.appends += c.appends;
            m.openai_sessions += c.openai_sessions;
            m.openai_sessions_left += c.openai_sessions_left;
            m.control_requests += c.control_requests;
            m.event_batches += c.event_batches;
            m.tool_requests += c.tool_requests;
            for (k, v) in &out.rec.failures {
                *rec.failures.entry(k.clone()).or_default() += v;
            }
        }
        let calls_failed = rec.failures.values().map(|&v| u64::from(v)).sum();
        if calls_failed == u64::from(calls) {
            let why = rec.failures.keys().next().cloned().unwrap_or_default();
            return Err(format!("every call failed against {} ({}): {why}", target.addr, mode.name()));
        }

        let tck = procfs::clock_ticks_per_second() as f64;
        let (mut target_usage, mut harness) = (None, HarnessUsage::default());
        if let (Some(a), Some(b)) = (&a, &b) {
            let wall = b.at.duration_since(a.at).as_secs_f64();
            let frames = b.received - a.received;
            if let (Some(t0), Some(t1)) = (a.target_ticks, b.target_ticks) {
                let cpu_s = (t1 - t0) as f64 / tck;
                let steady = rss_steady.unwrap_or(0);
                let before = rss_before.unwrap_or(0);
                target_usage = Some(TargetUsage {
                    pid: target.pid.unwrap_or(0),
                    cpu_s,
                    cpu_share: cpu_s / wall,
                    frames,
                    us_per_frame: if frames > 0 { cpu_s * 1e6 / frames as f64 } else { f64::NAN },
                    ms_per_call_second: cpu_s * 1e3 / (f64::from(calls) * wall),
                    rss_kib_before: before,
                    rss_kib_steady: steady,
                    rss_kib_after: rss_after.unwrap_or(0),
                    kib_per_call: steady.saturating_sub(before) as f64 / f64::from(calls),
                    core_busy: match (&a.target_core, &b.target_core) {
                        (Some(x), Some(y)) => x.busy_share(y),
                        _ => f64::NAN,
                    },
                });
            }
            let loops = o.cores as f64;
            let core_busy = if a.harness_cores.is_empty() {
                f64::NAN
            } else {
                a.harness_cores.iter().zip(&b.harness_cores).map(|(x, y)| x.busy_share(y)).sum::<f64>()
                    / a.harness_cores.len() as f64
            };
            let cpu_share = (b.self_ticks - a.self_ticks) as f64 / tck / wall / loops;
            let late = rec.lateness.summary();
            harness = HarnessUsage {
                cores: if o.no_pin { Vec::new() } else { o.harness_core[..o.cores].to_vec() },
                cpu_share,
                us_per_frame: if frames > 0 {
                    (b.self_ticks - a.self_ticks) as f64 / tck * 1e6 / frames as f64
                } else {
                    f64::NAN
                },
                idle_share: (b.idle_ns - a.idle_ns) as f64 / (wall * 1e9 * loops),
                core_busy,
                late_p50_us: late.p50_ms * 1000.0,
                late_p99_us: late.p99_ms * 1000.0,
                late_max_us: late.max_ms * 1000.0,
                harness_bound: core_busy.max(cpu_share) > 0.85,
                turns_per_frame: if frames > 0 {
                    (b.turns - a.turns) as f64 / frames as f64
                } else {
                    f64::NAN
                },
            };
        }
        let (syscalls, syscalls_note) = match syscall_result {
            Some((Ok(count), frames, secs)) if frames > 0 && count.secs > 0.0 => {
                // The counts cover `count.secs` inside the tool's run; the frames were counted
                // over the whole run of the tool (`secs`): frames in the counted time = the
                // (steady) frame rate × that time.
                let f = frames as f64 / secs.max(1e-3) * count.secs;
                let result = SyscallResult {
                    tool: tool.unwrap_or(Tool::Perf),
                    window_s: count.secs,
                    frames: f.round() as u64,
                    total: count.total,
                    per_frame: count.total as f64 / f,
                    by_name: count.by_name.iter().map(|(n, c)| (n.clone(), *c, *c as f64 / f)).collect(),
                };
                (Some(result), None)
            }
            Some((Ok(_), _, _)) => (None, Some("no frame completed during the syscall window".to_owned())),
            Some((Err(e), _, _)) => (None, Some(format!("syscall count failed: {e}"))),
            None if target.pid.is_none() => {
                (None, Some("the process under test has no known pid".to_owned()))
            }
            None => (None, self.syscall_note.clone()),
        };
        let timeline_points = per_second
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(i, h)| {
                let s = h.summary();
                SecondPoint {
                    t_s: i as u64,
                    frames: s.count,
                    p50_ms: s.p50_ms,
                    p99_ms: s.p99_ms,
                    max_ms: s.max_ms,
                }
            })
            .collect();
        Ok(RunResult {
            mode,
            tls: o.tls,
            calls,
            run,
            started_unix,
            load_average: load,
            busy_before_pct: f64::NAN,
            waited_for_idle_s: 0.0,
            window_s: timeline.window_secs(),
            calls_failed,
            failures: rec.failures.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            counts: rec.counts,
            latency: rec.window.summary(),
            first_audio: rec.first_audio.summary(),
            target: target_usage,
            syscalls,
            syscalls_note,
            harness,
            timeline: timeline_points,
            histogram: rec.window.log_buckets(10),
            soak: soak_outcome,
        })
    }

    fn print_progress(&self, label: &str, calls: u32, p: &Progress, origin: Instant, t: &Timeline) {
        let now = Instant::now().saturating_duration_since(origin).as_nanos() as u64;
        let phase = if now < t.ramp_end {
            "ramp"
        } else if now < t.measure_start {
            "settle"
        } else if now < t.measure_end {
            "measuring"
        } else if now < t.media_stop {
            "syscalls"
        } else {
            "closing"
        };
        eprintln!(
            "[{label}] {:>3}s {phase:<9} | streaming {}/{calls} failed {} | frames sent {} back {} | rtt(last s) p50 {:.2} p99 {:.2} ms | tick late max {:.2} ms | stand-in sessions {}",
            now / 1_000_000_000,
            Progress::get(&p.streaming),
            Progress::get(&p.failed),
            Progress::get(&p.sent),
            Progress::get(&p.received),
            Progress::get(&p.last_p50_us) as f64 / 1000.0,
            Progress::get(&p.last_p99_us) as f64 / 1000.0,
            Progress::get(&p.last_late_max_us) as f64 / 1000.0,
            Progress::get(&p.openai_open),
        );
    }
}
