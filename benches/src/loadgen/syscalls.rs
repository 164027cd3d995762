//! How many syscalls the process under test makes, over a window while calls run.
//!
//! Preferred: `perf stat` on the syscall tracepoints (`raw_syscalls:sys_enter` for the total,
//! `syscalls:sys_enter_<name>` for the ones a relay makes), attached to the pid for a window.
//! Counting tracepoints costs the traced process little, but the window is still kept apart
//! from the measured one. perf prints its counts every second (`-I 1000`) and only the whole
//! seconds in the middle are kept: attaching to every thread of a process (300 for the echo
//! server) and detaching take a while, so the edges of the window are not a known length. The
//! caller turns the counts into a rate per frame with the harness's own (steady) frame rate. Fallback when perf cannot open tracepoints (no perf, no tracefs,
//! `perf_event_paranoid`): `strace -c -f -p PID`, which slows the process down a lot: its
//! window is short and always after the measured one, and the report names the tool.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use super::process::Spawned;

/// Syscalls a relay makes, counted one by one (the rest is `other`).
const NAMED: &[&str] = &[
    "read",
    "write",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "readv",
    "writev",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "futex",
    "sched_yield",
    "nanosleep",
    "clock_nanosleep",
    "io_uring_enter",
    "accept4",
    "connect",
    "close",
    "mmap",
    "munmap",
    "madvise",
    "brk",
    "mprotect",
];

/// Which tool counts syscalls here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// `perf stat` on syscall tracepoints.
    Perf,
    /// `strace -c`.
    Strace,
}

impl Tool {
    /// Finds a working tool: perf if it can count a tracepoint, else strace if it runs.
    pub fn detect() -> Option<Tool> {
        let perf_ok = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .is_ok_and(|o| o.status.success() && parse_perf_csv(&String::from_utf8_lossy(&o.stderr)).0 > 0);
        if perf_ok {
            return Some(Tool::Perf);
        }
        super::process::tool_works("strace").then_some(Tool::Strace)
    }
}

/// Syscalls counted over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyscallCount {
    /// Seconds the counts cover.
    pub secs: f64,
    /// Every syscall entered.
    pub total: u64,
    /// Per syscall, largest first (names of [`NAMED`] with perf; all of them with strace).
    pub by_name: Vec<(String, u64)>,
}

/// Counts the syscalls of `pid` for `window`, the counting tool pinned to `core`.
pub fn count(tool: Tool, pid: u32, window: Duration, core: Option<usize>) -> Result<SyscallCount, String> {
    let out = std::env::temp_dir().join(format!("callway-loadgen-{}-syscalls.txt", std::process::id()));
    let result = match tool {
        Tool::Perf => perf(pid, window, core, &out),
        Tool::Strace => strace(pid, window, core, &out),
    };
    let _ = std::fs::remove_file(&out);
    result
}

fn perf(pid: u32, window: Duration, core: Option<usize>, out: &Path) -> Result<SyscallCount, String> {
    let mut args: Vec<String> = vec![
        "stat".into(),
        "-x".into(),
        ",".into(),
        "-I".into(),
        "1000".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(["-e".into(), "raw_syscalls:sys_enter".into()]);
    for name in NAMED {
        args.extend(["-e".into(), format!("syscalls:sys_enter_{name}")]);
    }
    // Two seconds more than the window: the first and the last (partial) intervals are dropped.
    let sleep = window.as_secs_f64().ceil() + 2.0;
    args.extend(["-p".into(), pid.to_string(), "--".into(), "sleep".into(), format!("{sleep:.0}")]);
    let mut p = Spawned::spawn("perf", Path::new("perf"), &args, &[], core, Default::default())
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + window + Duration::from_secs(15);
    while p.check_alive().is_ok() {
        if std::time::Instant::now() > deadline {
            return Err("perf stat did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("perf stat wrote nothing: {e}"))?;
    let count = parse_perf_intervals(&text);
    if count.total == 0 {
        return Err(format!("perf stat counted nothing: {}", text.trim()));
    }
    Ok(count)
}

fn strace(pid: u32, window: Duration, core: Option<usize>, out: &Path) -> Result<SyscallCount, String> {
    let args: Vec<String> =
        vec!["-c".into(), "-f".into(), "-o".into(), out.display().to_string(), "-p".into(), pid.to_string()];
    let mut s = Spawned::spawn("strace", Path::new("strace"), &args, &[], core, Default::default())
        .map_err(|e| e.to_string())?;
    std::thread::sleep(window);
    // SIGINT makes strace detach and write its summary.
    if let Some(p) = rustix::process::Pid::from_raw(s.pid() as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::INT);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.check_alive().is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("strace wrote nothing: {e}"))?;
    let by_name = parse_strace_summary(&text);
    let total = by_name.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return Err(format!("strace counted nothing: {}", text.trim()));
    }
    // From attach to SIGINT: about the window (attaching makes it a little shorter).
    Ok(SyscallCount { secs: window.as_secs_f64(), total, by_name })
}

/// Parses `perf stat -x , -I 1000` output: the whole one-second intervals between the first
/// and the last (both dropped), summed.
pub fn parse_perf_intervals(text: &str) -> SyscallCount {
    // (time, count, event): one block of lines per interval, all with the interval's end time.
    let rows: Vec<(f64, u64, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            if c.len() < 4 {
                return None;
            }
            Some((c[0].trim().parse().ok()?, c[1].trim().parse().unwrap_or(0), c[3].trim()))
        })
        .collect();
    let mut times: Vec<f64> = rows.iter().map(|r| r.0).collect();
    times.dedup();
    if times.len() < 3 {
        return SyscallCount::default();
    }
    // Intervals 2..n-1: those ending at times[1] ..= times[n-2].
    let (from, to) = (times[0], times[times.len() - 2]);
    let mut total = 0;
    let mut by: Vec<(String, u64)> = Vec::new();
    for &(_, n, event) in rows.iter().filter(|r| r.0 > from && r.0 <= to) {
        if event == "raw_syscalls:sys_enter" {
            total += n;
        } else if let Some(name) = event.strip_prefix("syscalls:sys_enter_") {
            match by.iter_mut().find(|(x, _)| x == name) {
                Some(e) => e.1 += n,
                None => by.push((name.to_owned(), n)),
            }
        }
    }
    by.retain(|(_, n)| *n > 0);
    by.sort_by_key(|b| std::cmp::Reverse(b.1));
    SyscallCount { secs: to - from, total, by_name: by }
}

/// Parses `perf stat -x ,` output: the `raw_syscalls:sys_enter` total and each named count.
pub fn parse_perf_csv(text: &str) -> (u64, Vec<(String, u64)>) {
    let mut total = 0;
    let mut by_name = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 3 {
            continue;
        }
        let Ok(n) = cols[0].trim().parse::<u64>() else { continue };
        let event = cols[2].trim();
        if event == "raw_syscalls:sys_enter" {
            total = n;
        } else if let Some(name) = event.strip_prefix("syscalls:sys_enter_")
            && n > 0
        {
            by_name.push((name.to_owned(), n));
        }
    }
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    (total, by_name)
}

/// Parses the table `strace -c` writes: `(syscall, calls)`, largest first.
pub fn parse_strace_summary(text: &str) -> Vec<(String, u64)> {
    let mut by_name = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_ascii_whitespace().collect();
        if t.len() < 5 || t[0].parse::<f64>().is_err() {
            continue;
        }
        let name = t[t.len() - 1];
        if name == "total" {
            continue;
        }
        if let Ok(calls) = t[3].parse::<u64>() {
            by_name.push((name.to_owned(), calls));
        }
    }
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    by_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv() {
        let text = "# started on Mon Dec  7 10:00:00 2026\n\n\
                    65012,,raw_syscalls:sys_enter,5001234567,100.00,,\n\
                    30010,,syscalls:sys_enter_recvfrom,5001234567,100.00,,\n\
                    0,,syscalls:sys_enter_read,5001234567,100.00,,\n\
                    20000,,syscalls:sys_enter_sendto,5001234567,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_futex,0,0.00,,\n";
        let (total, by) = parse_perf_csv(text);
        assert_eq!(total, 65012);
        assert_eq!(by, vec![("recvfrom".to_owned(), 30010), ("sendto".to_owned(), 20000)]);
    }

    #[test]
    fn perf_intervals_keep_the_whole_middle_seconds() {
        let text = "     1.001,900,,raw_syscalls:sys_enter,1,100.00,,\n     1.001,300,,syscalls:sys_enter_read,1,100.00,,\n\
                    2.001,1000,,raw_syscalls:sys_enter,1,100.00,,\n     2.001,400,,syscalls:sys_enter_read,1,100.00,,\n\
                    3.002,1010,,raw_syscalls:sys_enter,1,100.00,,\n     3.002,410,,syscalls:sys_enter_read,1,100.00,,\n\
                    3.002,0,,syscalls:sys_enter_futex,1,100.00,,\n\
                    3.500,480,,raw_syscalls:sys_enter,1,100.00,,\n     3.500,200,,syscalls:sys_enter_read,1,100.00,,\n";
        let c = parse_perf_intervals(text);
        assert_eq!(c.total, 2010);
        assert!((c.secs - 2.001).abs() < 1e-9, "{c:?}");
        assert_eq!(c.by_name, vec![("read".to_owned(), 810)]);
        assert_eq!(parse_perf_intervals("1.0,5,,raw_syscalls:sys_enter,1,1,,\n").total, 0);
    }

    #[test]
    fn strace_table() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n \
                    55.10    0.120000          12     10000      3000 recvfrom\n \
                    40.00    0.080000          10      8000           sendto\n  \
                    4.90    0.010000           2      5000           epoll_wait\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.210000           9     23000      3000 total\n";
        let by = parse_strace_summary(text);
        assert_eq!(
            by,
            vec![
                ("recvfrom".to_owned(), 10000),
                ("sendto".to_owned(), 8000),
                ("epoll_wait".to_owned(), 5000)
            ]
        );
    }
}
