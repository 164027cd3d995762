//! What a load run reports: one [`RunResult`] per mode, level and repeat, the per-level
//! summary over repeats ([`LevelSummary`]: median and min–max), the Markdown table printed at
//! the end (and pasted into `benches/README.md`), and the JSON file.

use serde::Serialize;

use super::options::Mode;
use super::recorder::Counts;
use super::stats::{Percentiles, Spread};
use super::syscalls::Tool;

/// The process under test (gateway or echo server) over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetUsage {
    /// Its pid.
    pub pid: u32,
    /// CPU seconds (user + system, all threads) in the window.
    pub cpu_s: f64,
    /// CPU seconds per wall second.
    pub cpu_share: f64,
    /// Round-trip frames completed in the window (by arrival time).
    pub frames: u64,
    /// CPU µs per round-trip frame.
    pub us_per_frame: f64,
    /// CPU ms per call-second.
    pub ms_per_call_second: f64,
    /// RSS before the calls (KiB).
    pub rss_kib_before: u64,
    /// RSS at the end of the window, every call up (KiB).
    pub rss_kib_steady: u64,
    /// RSS after the calls closed (KiB).
    pub rss_kib_after: u64,
    /// (steady − before) ÷ calls.
    pub kib_per_call: f64,
    /// Busy share of its core (everything on it: the process, interrupts, kernel threads).
    pub core_busy: f64,
}

/// Syscalls of the process under test, over their own window.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallResult {
    /// perf or strace.
    pub tool: Tool,
    /// Window length (s).
    pub window_s: f64,
    /// Round-trip frames completed in that window.
    pub frames: u64,
    /// Syscalls entered.
    pub total: u64,
    /// Syscalls per round-trip frame.
    pub per_frame: f64,
    /// `(name, count, per frame)`, largest first.
    pub by_name: Vec<(String, u64, f64)>,
}

/// The harness itself over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HarnessUsage {
    /// Cores it ran on.
    pub cores: Vec<usize>,
    /// Its CPU time per wall second per core (0–1).
    pub cpu_share: f64,
    /// Its CPU µs per round-trip frame (all three parties), to compare with the target's.
    pub us_per_frame: f64,
    /// Share of wall time its loops waited in `epoll_wait` (0–1).
    pub idle_share: f64,
    /// Busy share of its core(s) from `/proc/stat` (0–1).
    pub core_busy: f64,
    /// Tick lateness p50 (µs).
    pub late_p50_us: f64,
    /// Tick lateness p99 (µs).
    pub late_p99_us: f64,
    /// Largest tick lateness (µs).
    pub late_max_us: f64,
    /// Its core was above 85 % busy: the latency of this run says more about the harness
    /// than about the process under test.
    pub harness_bound: bool,
    /// Loop turns (`epoll_wait` calls) per round-trip frame in the window.
    pub turns_per_frame: f64,
}

/// One point of the latency-over-time plot.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SecondPoint {
    /// Second since the run's origin.
    pub t_s: u64,
    /// Round trips completed in that second.
    pub frames: u64,
    /// Median (ms).
    pub p50_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Largest (ms).
    pub max_ms: f64,
}

/// One run of one mode at one level.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Relay or echo floor.
    pub mode: Mode,
    /// Which legs were TLS (`--tls`; the echo floor's one leg is TLS with Twilio's).
    pub tls: super::tls::TlsLegs,
    /// Concurrent calls.
    pub calls: u32,
    /// Repeat number (1-based).
    pub run: u32,
    /// Unix time of the start.
    pub started_unix: u64,
    /// 1-minute load average when it started.
    pub load_average: f64,
    /// Busiest core over the second before the run (%), with nothing of ours running.
    pub busy_before_pct: f64,
    /// Seconds waited for the machine to be idle before the run.
    pub waited_for_idle_s: f64,
    /// Measured window (s).
    pub window_s: f64,
    /// Calls that failed (connect, upgrade refused, closed early…).
    pub calls_failed: u64,
    /// Distinct failure messages and how many calls had each.
    pub failures: Vec<(String, u32)>,
    /// Frame and message counts, whole run.
    pub counts: Counts,
    /// Round trips of frames scheduled in the window.
    pub latency: Percentiles,
    /// From Twilio's `start` to the first agent audio, every call of the run (relay mode).
    pub first_audio: Percentiles,
    /// The process under test, when its pid is known.
    pub target: Option<TargetUsage>,
    /// Its syscalls, when counted.
    pub syscalls: Option<SyscallResult>,
    /// Why syscalls were not counted, if they were not.
    pub syscalls_note: Option<String>,
    /// The harness.
    pub harness: HarnessUsage,
    /// Latency per second, whole run.
    pub timeline: Vec<SecondPoint>,
    /// Window latency histogram: `(bucket upper bound in ms, count)`.
    pub histogram: Vec<(f64, u64)>,
    /// A soak's own measurements (`--soak` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<super::soak::report::SoakOutcome>,
}

/// A mode and level over its repeats.
#[derive(Debug, Clone, Serialize)]
pub struct LevelSummary {
    /// Relay or echo floor.
    pub mode: Mode,
    /// Concurrent calls.
    pub calls: u32,
    /// Runs.
    pub runs: usize,
    /// p50 (ms).
    pub p50_ms: Spread,
    /// p99 (ms).
    pub p99_ms: Spread,
    /// p99.9 (ms).
    pub p999_ms: Spread,
    /// Max (ms).
    pub max_ms: Spread,
    /// First agent audio after `start`, p50 (ms).
    pub first_audio_p50_ms: Spread,
    /// First agent audio after `start`, p99 (ms).
    pub first_audio_p99_ms: Spread,
    /// CPU µs per round-trip frame.
    pub us_per_frame: Spread,
    /// CPU ms per call-second.
    pub ms_per_call_second: Spread,
    /// Relay µs/frame ÷ echo-floor µs/frame at the same level (medians), relay rows only.
    pub over_floor: Option<f64>,
    /// Syscalls per frame.
    pub syscalls_per_frame: Spread,
    /// KiB per call.
    pub kib_per_call: Spread,
    /// Frames sent, all runs.
    pub sent: u64,
    /// Frames lost, all runs.
    pub lost: u64,
    /// Frames duplicated or misrouted, all runs.
    pub duplicated_or_misrouted: u64,
    /// Calls failed, all runs.
    pub calls_failed: u64,
    /// Stand-in sessions left open after the last call, all runs.
    pub openai_sessions_left: u64,
    /// Harness CPU share (%).
    pub harness_cpu_pct: Spread,
    /// Harness CPU µs per round-trip frame.
    pub harness_us_per_frame: Spread,
    /// Harness core busy (%).
    pub harness_core_busy_pct: Spread,
    /// Tick lateness p99 (µs).
    pub late_p99_us: Spread,
    /// Runs that were harness-bound.
    pub harness_bound_runs: usize,
}

/// Summarises runs by mode and level (in the order of first appearance).
pub fn summarise(runs: &[RunResult]) -> Vec<LevelSummary> {
    let mut keys: Vec<(Mode, u32)> = Vec::new();
    for r in runs {
        if !keys.contains(&(r.mode, r.calls)) {
            keys.push((r.mode, r.calls));
        }
    }
    keys.sort();
    let mut out: Vec<LevelSummary> = keys
        .iter()
        .map(|&(mode, calls)| {
            let rs: Vec<&RunResult> = runs.iter().filter(|r| r.mode == mode && r.calls == calls).collect();
            let t = |f: fn(&TargetUsage) -> f64| {
                Spread::of(rs.iter().map(|r| r.target.as_ref().map_or(f64::NAN, f)))
            };
            LevelSummary {
                mode,
                calls,
                runs: rs.len(),
                p50_ms: Spread::of(rs.iter().map(|r| r.latency.p50_ms)),
                p99_ms: Spread::of(rs.iter().map(|r| r.latency.p99_ms)),
                p999_ms: Spread::of(rs.iter().map(|r| r.latency.p999_ms)),
                max_ms: Spread::of(rs.iter().map(|r| r.latency.max_ms)),
                first_audio_p50_ms: Spread::of(rs.iter().map(|r| r.first_audio.p50_ms)),
                first_audio_p99_ms: Spread::of(rs.iter().map(|r| r.first_audio.p99_ms)),
                us_per_frame: t(|u| u.us_per_frame),
                ms_per_call_second: t(|u| u.ms_per_call_second),
                over_floor: None,
                syscalls_per_frame: Spread::of(
                    rs.iter().map(|r| r.syscalls.as_ref().map_or(f64::NAN, |s| s.per_frame)),
                ),
                kib_per_call: t(|u| u.kib_per_call),
                sent: rs.iter().map(|r| r.counts.sent).sum(),
                lost: rs.iter().map(|r| r.counts.lost).sum(),
                duplicated_or_misrouted: rs.iter().map(|r| r.counts.duplicated + r.counts.misrouted).sum(),
                calls_failed: rs.iter().map(|r| r.calls_failed).sum(),
                openai_sessions_left: rs.iter().map(|r| r.counts.openai_sessions_left).sum(),
                harness_cpu_pct: Spread::of(rs.iter().map(|r| r.harness.cpu_share * 100.0)),
                harness_us_per_frame: Spread::of(rs.iter().map(|r| r.harness.us_per_frame)),
                harness_core_busy_pct: Spread::of(rs.iter().map(|r| r.harness.core_busy * 100.0)),
                late_p99_us: Spread::of(rs.iter().map(|r| r.harness.late_p99_us)),
                harness_bound_runs: rs.iter().filter(|r| r.harness.harness_bound).count(),
            }
        })
        .collect();
    let floors: Vec<(u32, f64)> = out
        .iter()
        .filter(|s| s.mode == Mode::EchoFloor && s.us_per_frame.n > 0)
        .map(|s| (s.calls, s.us_per_frame.median))
        .collect();
    for s in out.iter_mut().filter(|s| s.mode == Mode::Relay && s.us_per_frame.n > 0) {
        if let Some(&(_, floor)) = floors.iter().find(|(c, _)| *c == s.calls)
            && floor > 0.0
        {
            s.over_floor = Some(s.us_per_frame.median / floor);
        }
    }
    out
}

/// The summary as a Markdown table: median (min–max) over the runs.
pub fn table(levels: &[LevelSummary]) -> String {
    let mut s = String::from(
        "| mode | calls | runs | p50 ms | p99 ms | max ms | first audio p50 / p99 ms | CPU µs/frame | ×floor | CPU ms/call-s | syscalls/frame | KiB/call | lost / sent | harness CPU % | harness µs/frame | harness core busy % | tick late p99 µs | harness-bound |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for l in levels {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} |\n",
            l.mode.name(),
            l.calls,
            l.runs,
            l.p50_ms.show(2),
            l.p99_ms.show(2),
            l.max_ms.show(1),
            if l.mode == Mode::Relay {
                format!("{} / {}", l.first_audio_p50_ms.show(1), l.first_audio_p99_ms.show(1))
            } else {
                "—".to_owned()
            },
            l.us_per_frame.show(1),
            l.over_floor.map_or("—".to_owned(), |r| format!("{r:.2}×")),
            l.ms_per_call_second.show(3),
            l.syscalls_per_frame.show(2),
            l.kib_per_call.show(1),
            l.lost,
            l.sent,
            l.harness_cpu_pct.show(0),
            l.harness_us_per_frame.show(1),
            l.harness_core_busy_pct.show(0),
            l.late_p99_us.show(0),
            if l.harness_bound_runs == 0 {
                "no".to_owned()
            } else {
                format!("{}/{} runs", l.harness_bound_runs, l.runs)
            },
        ));
    }
    s
}

/// One line per run, for the log.
pub fn run_line(r: &RunResult) -> String {
    let mut s = format!(
        "{} {} calls run {}: rtt p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.1} ms; frames {} sent, {} back, {} lost, {} dup, {} misrouted",
        r.mode.name(),
        r.calls,
        r.run,
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.p999_ms,
        r.latency.max_ms,
        r.counts.sent,
        r.counts.received,
        r.counts.lost,
        r.counts.duplicated,
        r.counts.misrouted
    );
    if let Some(t) = &r.target {
        s.push_str(&format!(
            "; target {:.1} µs/frame, {:.3} ms/call-s, {:.0}% CPU, {:.1} KiB/call",
            t.us_per_frame,
            t.ms_per_call_second,
            t.cpu_share * 100.0,
            t.kib_per_call
        ));
    }
    if let Some(sc) = &r.syscalls {
        s.push_str(&format!("; {:.2} syscalls/frame ({:?})", sc.per_frame, sc.tool));
    }
    s.push_str(&format!(
        "; harness {:.0}% CPU, {:.0}% idle, core {:.0}% busy, late p99 {:.0} µs{}",
        r.harness.cpu_share * 100.0,
        r.harness.idle_share * 100.0,
        r.harness.core_busy * 100.0,
        r.harness.late_p99_us,
        if r.harness.harness_bound { " — HARNESS-BOUND" } else { "" }
    ));
    if r.calls_failed > 0 {
        s.push_str(&format!("; {} calls failed", r.calls_failed));
    }
    if r.busy_before_pct.is_finite() {
        s.push_str(&format!("; busiest core {:.0}% before the run", r.busy_before_pct));
    }
    s
}

/// The whole JSON document.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// The command line.
    pub command: String,
    /// Unix time at the end.
    pub finished_unix: u64,
    /// `lscpu`'s model name, cores, kernel.
    pub machine: Machine,
    /// Per mode and level.
    pub levels: &'a [LevelSummary],
    /// Every run.
    pub runs: &'a [RunResult],
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Online cores.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads `/proc/cpuinfo` and `/proc/sys/kernel/osrelease`.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let kernel =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        // Every core of the machine, not the ones this (pinned) process may use.
        let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        Self { cpu, cores, kernel }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: Mode, calls: u32, us: f64, p99: f64) -> RunResult {
        RunResult {
            mode,
            tls: super::super::tls::TlsLegs::None,
            calls,
            run: 1,
            started_unix: 0,
            load_average: 0.0,
            busy_before_pct: 0.0,
            waited_for_idle_s: 0.0,
            window_s: 30.0,
            calls_failed: 0,
            failures: vec![],
            counts: Counts { sent: 100, received: 100, ..Counts::default() },
            latency: Percentiles { p99_ms: p99, ..Percentiles::default() },
            first_audio: Percentiles::default(),
            target: Some(TargetUsage { us_per_frame: us, ..TargetUsage::default() }),
            syscalls: None,
            syscalls_note: None,
            harness: HarnessUsage::default(),
            timeline: vec![],
            histogram: vec![],
            soak: None,
        }
    }

    #[test]
    fn summary_medians_and_ratio_to_floor() {
        let runs = vec![
            run(Mode::Relay, 300, 40.0, 1.0),
            run(Mode::Relay, 300, 44.0, 3.0),
            run(Mode::Relay, 300, 42.0, 2.0),
            run(Mode::EchoFloor, 300, 16.0, 0.5),
            run(Mode::EchoFloor, 300, 18.0, 0.7),
            run(Mode::EchoFloor, 300, 17.0, 0.6),
        ];
        let levels = summarise(&runs);
        assert_eq!(levels.len(), 2);
        assert_eq!(levels[0].mode, Mode::EchoFloor, "floor first");
        let relay = &levels[1];
        assert_eq!((relay.us_per_frame.median, relay.p99_ms.median, relay.p99_ms.max), (42.0, 2.0, 3.0));
        assert!((relay.over_floor.unwrap() - 42.0 / 17.0).abs() < 1e-9);
        assert_eq!(relay.sent, 300);
        let t = table(&levels);
        assert!(t.contains("| relay | 300 | 3 |") && t.contains("2.47×"), "{t}");
    }
}
