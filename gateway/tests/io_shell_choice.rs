//! `GATEWAY_IO` as an operator meets it, on the real binary: where the kernel refuses io_uring
//! (here a seccomp filter makes `io_uring_setup` fail with `EPERM`, as the default profiles of
//! some container engines do), `auto` relays on epoll and says so in one line, `uring` refuses
//! to start with a message saying what to allow, `epoll` never tries; with io_uring allowed,
//! `auto` picks it. The shell in use is in `/metrics` and `/readyz`.

#![cfg(target_os = "linux")]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callway-gateway");

/// A gateway configured to start (no call is made: nothing else needs to run).
fn gateway(io: &str, refuse_io_uring: bool) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("OPENAI_API_KEY", "sk-test")
        .env("TWILIO_AUTH_TOKEN", "twilio-auth-token-for-tests")
        .env("TWILIO_STREAM_DOMAIN", "gateway.test.invalid")
        .env("STREAM_TOKEN_SECRET", "s".repeat(48))
        .env("INTERNAL_API_SECRET", "i".repeat(48))
        .env("CONTROL_PLANE_URL", "http://127.0.0.1:9")
        .env("GATEWAY_LISTEN_ADDR", "127.0.0.1:0")
        .env("GATEWAY_OPS_ADDR", "127.0.0.1:0")
        .env("GATEWAY_WORKERS", "1")
        .env("GATEWAY_DRAIN_SECS", "0")
        .env("GATEWAY_IO", io)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if refuse_io_uring {
        seccomp::refuse_io_uring_setup(&mut cmd);
    }
    cmd
}

/// Reads stderr until the "serving" line; returns what was read and the ops address.
fn until_serving(child: &mut Child) -> (String, String) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("serving")
            && let Some(ops) = line.split("ops=").nth(1)
        {
            let ops = ops.split_whitespace().next().unwrap().to_owned();
            // Keep draining stderr so the gateway never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (seen, ops);
        }
    }
    panic!("the gateway did not say it was serving:\n{seen}");
}

fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `/readyz` once the workers are up (503 while they start).
fn readyz(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(addr, "/readyz");
        if answer.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn auto_falls_back_to_epoll_with_one_line_when_the_kernel_refuses_io_uring() {
    let mut child = gateway("auto", true).spawn().unwrap();
    let (log, ops) = until_serving(&mut child);
    assert_eq!(
        log.matches("io_uring refused by the kernel").count(),
        1,
        "one line says io_uring was refused and epoll is used:\n{log}"
    );
    assert!(log.contains("Operation not permitted"), "the kernel's reason is given:\n{log}");
    assert!(log.contains("io=\"epoll\"") || log.contains("io=epoll"), "{log}");
    assert!(get(&ops, "/metrics").contains("callway_gateway_io_shell{shell=\"epoll\"} 1"));
    assert!(readyz(&ops).contains("ready (io: epoll)"));
    stop(child);
}

#[test]
fn uring_refuses_to_start_when_the_kernel_refuses_io_uring_and_says_what_to_allow() {
    let out = gateway("uring", true).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GATEWAY_IO=uring but io_uring cannot be used here")
            && err.contains("io_uring_setup")
            && err.contains("kernel.io_uring_disabled")
            && err.contains("GATEWAY_IO=auto or epoll"),
        "{err}"
    );
}

#[test]
fn epoll_never_tries_io_uring() {
    let mut child = gateway("epoll", true).spawn().unwrap();
    let (log, ops) = until_serving(&mut child);
    assert!(!log.contains("io_uring refused"), "{log}");
    assert!(readyz(&ops).contains("ready (io: epoll)"));
    stop(child);
}

#[test]
fn auto_uses_io_uring_where_the_kernel_allows_it() {
    // This machine's kernel must allow io_uring (CI's does; `scripts/test` also runs the whole
    // end-to-end suite with GATEWAY_IO=uring).
    let mut child = gateway("auto", false).spawn().unwrap();
    let (log, ops) = until_serving(&mut child);
    assert!(!log.contains("io_uring refused"), "{log}");
    assert!(get(&ops, "/metrics").contains("callway_gateway_io_shell{shell=\"uring\"} 1"));
    assert!(readyz(&ops).contains("ready (io: uring)"));
    stop(child);
}

#[test]
fn a_bad_gateway_io_is_a_precise_configuration_error() {
    let out = gateway("iouring", false).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GATEWAY_IO must be uring, epoll or auto") && err.contains("\"iouring\""), "{err}");
}

/// A seccomp filter installed in the child before `exec`: `io_uring_setup` fails with `EPERM`,
/// every other system call is allowed — what a container engine's default profile does.
mod seccomp {
    use std::os::unix::process::CommandExt as _;
    use std::process::Command;

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
    /// `io_uring_setup` has the same number on x86_64 and aarch64.
    const NR_IO_URING_SETUP: u32 = 425;

    fn stmt(code: u16, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt: 0, jf: 0, k }
    }

    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    pub(super) fn refuse_io_uring_setup(cmd: &mut Command) {
        let arch = if cfg!(target_arch = "aarch64") { AUDIT_ARCH_AARCH64 } else { AUDIT_ARCH_X86_64 };
        // seccomp_data: nr at offset 0, arch at offset 4.
        let filter = [
            stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 4),
            jump((libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, arch, 1, 0),
            stmt((libc::BPF_RET | libc::BPF_K) as u16, libc::SECCOMP_RET_ALLOW),
            stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
            jump((libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, NR_IO_URING_SETUP, 0, 1),
            stmt((libc::BPF_RET | libc::BPF_K) as u16, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            stmt((libc::BPF_RET | libc::BPF_K) as u16, libc::SECCOMP_RET_ALLOW),
        ];
        // SAFETY: between fork and exec the closure only calls two async-signal-safe prctls on
        // memory it owns (the filter is moved into it).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const _) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
