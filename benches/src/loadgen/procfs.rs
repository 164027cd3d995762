//! What the kernel says about a process and a core, from `/proc`: CPU time of a process
//! (`utime + stime` of `/proc/<pid>/stat`, all its threads), its resident memory (`VmRSS` of
//! `/proc/<pid>/status`), and how busy one core was (`/proc/stat`, the `cpuN` line). The
//! parsers are pure and tested on captured text; the readers just read the files.
//!
//! A core's busy share is `1 − idle ÷ wall time`, not `busy ÷ (busy + idle)` of `/proc/stat`:
//! with tick-based CPU accounting (`CONFIG_TICK_CPU_ACCOUNTING`, this machine's kernel) the
//! user/system columns are samples taken at each 4 ms tick, and a loop woken by a 1 ms timer
//! that is idle whenever the tick comes is badly undercounted (a harness at 43 % of its core
//! showed as 29 % busy), while the idle column is measured exactly (NO_HZ idle time). A
//! process's own `utime + stime` is exact too (scaled to its measured run time).

use std::io;

/// CPU time of a process, in clock ticks (`utime + stime`).
pub fn process_cpu_ticks(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&text)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: unexpected format")))
}

/// CPU time of this process, in clock ticks.
pub fn self_cpu_ticks() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    parse_stat_cpu_ticks(&text).ok_or_else(|| io::Error::other("/proc/self/stat: unexpected format"))
}

/// Resident memory of a process (KiB).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss_kib(&text).ok_or_else(|| io::Error::other(format!("/proc/{pid}/status: no VmRSS")))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), to turn ticks into time.
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Idle time of a core, in clock ticks since boot, read at a known instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreTimes {
    /// Idle + iowait (exact with NO_HZ idle accounting).
    pub idle: u64,
    /// When it was read.
    pub at: std::time::Instant,
}

impl CoreTimes {
    /// Busy share between `self` (earlier) and `later`: 1 − idle ÷ wall time, 0–1.
    pub fn busy_share(&self, later: &CoreTimes) -> f64 {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let idle = later.idle.saturating_sub(self.idle) as f64 / clock_ticks_per_second() as f64;
        (1.0 - idle / wall).clamp(0.0, 1.0)
    }
}

/// The times of core `core`.
pub fn core_times(core: usize) -> io::Result<CoreTimes> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let at = std::time::Instant::now();
    parse_core_idle(&text, core)
        .map(|idle| CoreTimes { idle, at })
        .ok_or_else(|| io::Error::other(format!("/proc/stat has no cpu{core} line")))
}

/// `utime + stime` from the text of a `/proc/<pid>/stat` file.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ')': field 3 (state) is index 0, so utime (field 14) is index 11, stime index 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` in KiB from the text of a `/proc/<pid>/status` file.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..].split_ascii_whitespace().next()?.parse().ok()
}

/// Idle + iowait ticks of the `cpuN` line of `/proc/stat`.
pub fn parse_core_idle(stat: &str, core: usize) -> Option<u64> {
    let name = format!("cpu{core}");
    let line = stat.lines().find(|l| l.split_ascii_whitespace().next() == Some(name.as_str()))?;
    // user nice system idle iowait irq softirq steal …
    let v: Vec<u64> = line.split_ascii_whitespace().skip(1).take(5).filter_map(|x| x.parse().ok()).collect();
    (v.len() == 5).then(|| v[3] + v[4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_with_a_name_holding_spaces_and_parens() {
        let stat = "4242 (callway gw (x)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 269 0 0 20 0 3 0 12345 \
                    123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17610 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(731 + 269));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss() {
        let status = "Name:\tcallway-gateway\nVmPeak:\t  100000 kB\nVmRSS:\t   23456 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss_kib(status), Some(23456));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn core_idle_and_busy_share() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\ncpu1 300 0 100 500 0 0 100 0 0 0\n";
        assert_eq!(parse_core_idle(stat, 0), Some(850));
        assert_eq!(parse_core_idle(stat, 1), Some(500));
        assert_eq!(parse_core_idle(stat, 2), None);
        let t = clock_ticks_per_second();
        let at = std::time::Instant::now();
        let a = CoreTimes { idle: 850, at };
        // Two seconds of wall time, half a second idle: 75 % busy.
        let b = CoreTimes { idle: 850 + t / 2, at: at + std::time::Duration::from_secs(2) };
        assert!((a.busy_share(&b) - 0.75).abs() < 1e-9);
        assert_eq!(b.busy_share(&a), 0.0);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(process_cpu_ticks(pid).is_ok() && self_cpu_ticks().is_ok());
        assert!(clock_ticks_per_second() > 0);
        assert!(core_times(0).unwrap().idle > 0);
    }
}
