//! The command line of `callway-loadgen` (clap), and durations written `30s`, `500ms`, `2m`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use super::soak::options::SoakArgs;

/// What the simulated callers talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A minimal one-leg WebSocket echo server (`gateway/examples/ws-echo`): the floor.
    EchoFloor,
    /// The gateway, relaying to the in-process OpenAI stand-in.
    Relay,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::EchoFloor => "echo-floor",
            Mode::Relay => "relay",
        }
    }
}

/// Which tool counts the syscalls of the process under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyscallChoice {
    /// perf if it can count tracepoints here, else strace.
    Auto,
    /// `perf stat` on syscall tracepoints.
    Perf,
    /// `strace -c` (slows the process: in a short window after the measured one).
    Strace,
    /// Do not count.
    Off,
}

/// Parses `30s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?} (write 30s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "us" | "µs" => n / 1e6,
        _ => return Err(format!("unknown unit in {s:?} (ms, s, m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `callway-loadgen`: N simulated Twilio calls through the real gateway, with the stub control
/// plane and the echoing OpenAI stand-in in the same process, on loopback.
#[derive(Debug, Clone, Parser)]
#[command(name = "callway-loadgen", version, about, long_about = None)]
pub struct Options {
    /// The gateway binary to spawn for each run (GATEWAY_WORKERS=1, pinned to --gateway-core).
    /// Default: target/release/callway-gateway (under $CARGO_TARGET_DIR when set).
    #[arg(long, value_name = "PATH")]
    pub gateway_bin: Option<PathBuf>,
    /// Use a gateway already running there instead of spawning one (it must point at
    /// --openai-listen and --control-listen and share the secrets).
    #[arg(long, value_name = "ADDR", conflicts_with = "gateway_bin")]
    pub gateway_addr: Option<SocketAddr>,
    /// With --gateway-addr: the gateway's pid, to measure its CPU and memory.
    #[arg(long, value_name = "PID", requires = "gateway_addr")]
    pub gateway_pid: Option<u32>,
    /// The ws-echo example binary for echo-floor runs. Default: examples/ws-echo beside the
    /// gateway binary.
    #[arg(long, value_name = "PATH")]
    pub echo_bin: Option<PathBuf>,
    /// Use a ws-echo server already running there.
    #[arg(long, value_name = "ADDR", conflicts_with = "echo_bin")]
    pub echo_addr: Option<SocketAddr>,
    /// With --echo-addr: its pid.
    #[arg(long, value_name = "PID", requires = "echo_addr")]
    pub echo_pid: Option<u32>,
    /// Levels: numbers of concurrent calls, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,300,500")]
    pub calls: Vec<u32>,
    /// Length of the measured window of each run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time over which the calls start.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ramp: Duration,
    /// Time between the last call's start and the measured window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Runs per mode and level.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Milliseconds of audio per media frame (8 bytes of μ-law per ms).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=240))]
    pub frame_ms: u32,
    /// Period of the harness's one tick.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub tick: Duration,
    /// Event loops (threads) of the harness, one per harness core.
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// Cores the harness runs on (comma-separated; as many as --cores).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub harness_core: Vec<usize>,
    /// Core the spawned gateway (or echo server) is pinned to.
    #[arg(long, default_value_t = 0)]
    pub gateway_core: usize,
    /// Nice value for the harness and the process under test (e.g. -10, as root), also set on the
    /// session's autogroup: shields the measurement from background jobs (builds, fuzzing)
    /// sharing the cores. Run under `setsid` so the group holds only the load generator and its
    /// children. Off: nice 0.
    #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub nice: Option<i32>,
    /// Run the harness and the process under test `SCHED_FIFO` at this priority (1–99, as
    /// root): their wake-ups preempt any normal task, so background jobs on the same cores
    /// (builds, fuzzing) stop distorting latency. CPU accounting is unchanged.
    #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub rt: Option<u8>,
    /// Do not pin anything (results are then much noisier).
    #[arg(long)]
    pub no_pin: bool,
    /// What to run against, comma-separated: echo-floor, relay (both: the report shows the
    /// gateway's CPU per frame over the floor's, from the same invocation).
    #[arg(long, value_delimiter = ',', default_value = "echo-floor,relay")]
    pub mode: Vec<Mode>,
    /// Write every result as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Draw latency over time and a histogram per level here (SVG).
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// How syscalls of the process under test are counted.
    #[arg(long, value_enum, default_value = "auto")]
    pub syscalls: SyscallChoice,
    /// Length of the syscall-count window (after the measured one; strace uses at most 3 s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub syscall_window: Duration,
    /// Before each run, wait up to this long for every core to be idle (below 20 % busy over a
    /// second: another build or benchmark would distort the run); 0 to start at once. The run
    /// records how busy the machine was and how long it waited.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub wait_idle: Duration,
    /// Longest wait for the last frames after media stops.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Where the OpenAI stand-in listens (port 0: any; fix it for --gateway-addr).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub openai_listen: SocketAddr,
    /// Where the stub control plane listens (port 0: any; fix it for --gateway-addr).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control_listen: SocketAddr,
    /// TWILIO_AUTH_TOKEN shared with the gateway (random for a spawned one).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// STREAM_TOKEN_SECRET shared with the gateway (random for a spawned one).
    #[arg(long, env = "STREAM_TOKEN_SECRET", hide_env_values = true)]
    pub stream_token_secret: Option<String>,
    /// INTERNAL_API_SECRET given to a spawned gateway (the stub does not check it).
    #[arg(long, env = "INTERNAL_API_SECRET", hide_env_values = true)]
    pub internal_api_secret: Option<String>,
    /// TWILIO_STREAM_DOMAIN: the host the upgrade signatures are computed over.
    #[arg(long, env = "TWILIO_STREAM_DOMAIN", default_value = "gateway.loadgen.invalid")]
    pub stream_domain: String,
    /// Which legs carry TLS: none, twilio (callers → gateway, and the echo floor), openai
    /// (gateway → stand-in) or both. The certificates are made for the run (a throw-away CA).
    #[arg(long, value_enum, default_value = "none")]
    pub tls: super::tls::TlsLegs,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Extra environment for a spawned gateway, KEY=VALUE, repeatable (wins over the load
    /// generator's own values), e.g. `--gateway-env GATEWAY_IO=uring`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub gateway_env: Vec<String>,
    /// The soak (`--soak` and its knobs).
    #[command(flatten)]
    pub soak: SoakArgs,
}

impl Options {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.calls.is_empty() || self.calls.contains(&0) {
            return Err("--calls needs at least one level, each above 0".into());
        }
        if self.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        if self.cores == 0 || self.harness_core.len() < self.cores {
            return Err(format!(
                "--cores {} needs as many --harness-core entries (got {:?})",
                self.cores, self.harness_core
            ));
        }
        if !self.no_pin && self.harness_core[..self.cores].contains(&self.gateway_core) {
            return Err(format!(
                "--gateway-core {} is also a harness core: the gateway and the harness must not share a core",
                self.gateway_core
            ));
        }
        let frame = Duration::from_millis(u64::from(self.frame_ms));
        if self.tick.is_zero() || !frame.as_nanos().is_multiple_of(self.tick.as_nanos()) {
            return Err(format!(
                "--frame-ms {} must be a whole number of ticks ({:?})",
                self.frame_ms, self.tick
            ));
        }
        if self.mode.is_empty() {
            return Err("--mode needs echo-floor, relay or both".into());
        }
        if let Some(bad) =
            self.gateway_env.iter().find(|kv| kv.split_once('=').is_none_or(|(k, _)| k.is_empty()))
        {
            return Err(format!("--gateway-env takes KEY=VALUE, not {bad:?}"));
        }
        if self.soak.soak {
            self.soak.validate()?;
            if self.calls.len() != 1 || self.runs != 1 || self.mode != [Mode::Relay] || self.cores != 1 {
                return Err(
                    "--soak runs one level (--calls N), one run (--runs 1), --mode relay, --cores 1".into()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn defaults_and_checks() {
        let o = Options::try_parse_from(["callway-loadgen"]).unwrap();
        assert_eq!(o.calls, vec![100, 300, 500]);
        assert_eq!((o.runs, o.frame_ms, o.cores, o.gateway_core), (3, 20, 1, 0));
        assert_eq!(o.harness_core, vec![1]);
        assert_eq!(o.mode, vec![Mode::EchoFloor, Mode::Relay]);
        assert!(o.validate().is_ok());
        let o = Options::try_parse_from(["x", "--gateway-core", "1"]).unwrap();
        assert!(o.validate().unwrap_err().contains("must not share a core"));
        let o = Options::try_parse_from(["x", "--calls", "5,0"]).unwrap();
        assert!(o.validate().is_err());
        let o =
            Options::try_parse_from(["x", "--mode", "relay", "--calls", "5", "--duration", "3s"]).unwrap();
        assert_eq!((o.mode.as_slice(), o.duration), (&[Mode::Relay][..], Duration::from_secs(3)));
        assert!(Options::try_parse_from(["x", "--frame-ms", "1"]).is_err());
    }
}
