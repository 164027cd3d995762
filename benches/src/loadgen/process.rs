//! Processes the load generator starts (the gateway, the echo server, `perf`/`strace`) and the
//! cores everything runs on.
//!
//! [`Spawned`] is a guard: whatever way the run ends (an error, a panic unwinding), dropping it
//! sends SIGTERM, waits a moment and then SIGKILLs. If the load generator itself is killed, the
//! child gets SIGTERM from the kernel (`setpriv --pdeathsig`, when util-linux's `setpriv` is
//! there). A child is pinned with `taskset -c <core>` and reniced with `nice -n N` when asked;
//! each wrapper execs in place, so the pid is the child's own. Its stdout and stderr go to a
//! log file, shown when it dies early.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// How a process is scheduled (both `None`: as the load generator itself was started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Priority {
    /// Nice value.
    pub nice: Option<i32>,
    /// `SCHED_FIFO` priority (1–99).
    pub fifo: Option<u8>,
}

/// A child process that is stopped when dropped.
#[derive(Debug)]
pub struct Spawned {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Spawned {
    /// Starts `program` with `args` and exactly the environment `env` (plus `PATH`), pinned to
    /// `core` with `taskset` when given. Stdout and stderr go to a log file.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        core: Option<usize>,
        priority: Priority,
    ) -> io::Result<Spawned> {
        let log = std::env::temp_dir().join(format!("callway-loadgen-{}-{name}.log", std::process::id()));
        let out = File::create(&log)?;
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if has_setpriv() {
            argv.extend(["setpriv", "--pdeathsig", "TERM", "--"].map(Into::into));
        }
        if let Some(n) = priority.nice {
            argv.extend(["nice".into(), "-n".into(), n.to_string().into(), "--".into()]);
        }
        if let Some(p) = priority.fifo {
            argv.extend(["chrt".into(), "-f".into(), p.to_string().into()]);
        }
        if let Some(core) = core {
            argv.extend(["taskset".into(), "-c".into(), core.to_string().into()]);
        }
        argv.push(program.into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.args(args).env_clear().stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot start {name} ({}): {e}",
                    argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
                ),
            )
        })?;
        Ok(Spawned { name: name.to_owned(), child: Some(child), log })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The last lines the child wrote.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `Err` with its exit status and last log lines if the child has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else { return Err(format!("{} was stopped", self.name)) };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                Err(format!("{} exited ({status}); its last output:\n{}", self.name, self.log_tail(20)))
            }
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// Waits until `addr` accepts a TCP connection (the child is listening).
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {addr} within {timeout:?}; its last output:\n{}",
                    self.name,
                    self.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; reaps the child. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(None) = child.try_wait() {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process(pid, Signal::TERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// Whether util-linux's `setpriv` is there (for `--pdeathsig`).
fn has_setpriv() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| tool_works("setpriv"))
}

/// Sets the calling thread's nice value (threads it starts afterwards inherit it) and, where
/// the kernel groups tasks by session (`CONFIG_SCHED_AUTOGROUP`), the nice value of this
/// session's group: between groups the CPU is shared by group weight whatever the tasks' own
/// nice values, so a background job in another session would otherwise still take half of a
/// contended core. Start the load generator with `setsid` so that only it and its children are
/// in the group.
pub fn renice(nice: i32) -> io::Result<()> {
    rustix::process::setpriority_process(None, nice).map_err(io::Error::from)?;
    let autogroup = Path::new("/proc/self/autogroup");
    if autogroup.exists() {
        std::fs::write(autogroup, nice.to_string())?;
    }
    Ok(())
}

/// Makes this process `SCHED_FIFO` at `prio` (`chrt -f -p`; threads started afterwards
/// inherit it): wake-ups then preempt every normal task at once, whatever runs beside.
pub fn make_fifo(prio: u8) -> io::Result<()> {
    let status = Command::new("chrt")
        .args(["-f", "-p", &prio.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("chrt -f -p {prio} failed ({status})")))
    }
}

/// Pins the calling thread (and the threads it starts afterwards) to `cores`.
pub fn pin_current_thread(cores: &[usize]) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cores {
        set.set(c);
    }
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

/// Number of cores the machine has.
pub fn cores_online() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A free TCP port on 127.0.0.1 (bound then released: a small race, fine on a quiet loopback).
pub fn free_local_addr() -> io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// Whether `program` runs (`program --version` exits 0).
pub fn tool_works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawned_child_is_stopped_on_drop() {
        let mut s =
            Spawned::spawn("sleeper", Path::new("sleep"), &["30".into()], &[], None, Priority::default())
                .unwrap();
        let pid = s.pid();
        assert!(s.check_alive().is_ok());
        drop(s);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // A zombie would still have the directory; we reaped it, so only a reused pid could.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                !stat.contains("(sleep)")
            }
        );
    }

    #[test]
    fn a_child_that_exits_is_reported_with_its_output() {
        let mut s = Spawned::spawn(
            "failing",
            Path::new("sh"),
            &["-c".into(), "echo boom >&2; exit 3".into()],
            &[],
            None,
            Priority { nice: Some(5), fifo: None },
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let e = s.check_alive().unwrap_err();
        assert!(e.contains("boom") && e.contains('3'), "{e}");
    }
}
