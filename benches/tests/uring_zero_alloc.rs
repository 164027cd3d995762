//! The io_uring shell's frame path allocates nothing: with calls streaming in both directions
//! through the real gateway (in-process, `GATEWAY_IO=uring`, plain WebSocket on both legs,
//! driven by the load generator), the engine thread makes no allocation over a window of
//! thousands of relayed frames. Set-up (the call's hand-over, the OpenAI connection, the session)
//! happens before the window, and is allowed to allocate.
//!
//! Allocations are counted per thread under a counting global allocator; the engine thread is
//! found by its name (`gw-uring-0`) in `/proc/self/task`.

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use callway_benches::loadgen::{Harness, Mode, Options, TargetEndpoint};
use callway_gateway::config::Config;
use callway_gateway::io::Gateway;
use clap::Parser as _;

const THREADS: usize = 512;
static NEXT: AtomicUsize = AtomicUsize::new(0);
static COUNTS: [AtomicU64; THREADS] = [const { AtomicU64::new(0) }; THREADS];
static TIDS: [AtomicI32; THREADS] = [const { AtomicI32::new(0) }; THREADS];

thread_local! {
    /// This thread's index in `COUNTS` (const-initialised, no destructor: never allocates).
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count() {
    SLOT.with(|slot| {
        let mut i = slot.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed);
            if i < THREADS {
                TIDS[i].store(rustix::thread::gettid().as_raw_nonzero().get(), Ordering::Relaxed);
            }
            slot.set(i);
        }
        if i < THREADS {
            COUNTS[i].fetch_add(1, Ordering::Relaxed);
        }
    });
}

struct Counting;

// SAFETY: forwards to the system allocator; only adds a per-thread counter.
#[allow(unsafe_code, reason = "a global allocator is unsafe to implement; this one only counts")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made so far by the thread called `name` (0 if it never allocated).
fn allocations_of(name: &str) -> u64 {
    let tid = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .and_then(|t| t.file_name().to_str()?.parse::<i32>().ok())
        .unwrap_or_else(|| panic!("no thread named {name}"));
    let n = NEXT.load(Ordering::Relaxed).min(THREADS);
    (0..n).find(|&i| TIDS[i].load(Ordering::Relaxed) == tid).map_or(0, |i| COUNTS[i].load(Ordering::Relaxed))
}

const CALLS: u64 = 5;

#[test]
fn the_engine_thread_allocates_nothing_while_calls_stream() {
    let args = [
        "callway-loadgen",
        "--calls",
        "5",
        "--duration",
        "8s",
        "--ramp",
        "200ms",
        "--settle",
        "1s",
        "--drain",
        "3s",
        "--runs",
        "1",
        "--mode",
        "relay",
        "--syscalls",
        "off",
        "--no-pin",
        "--quiet",
        "--stream-domain",
        "gw.loadgen.test",
        "--wait-idle",
        "0s",
        "--twilio-auth-token",
        "loadgen-test-auth-token",
        "--stream-token-secret",
        "loadgen-test-stream-token-secret-0123456789",
        "--internal-api-secret",
        "loadgen-test-internal-api-secret-0123456789",
    ];
    let opts = Options::try_parse_from(args).unwrap();
    let mut harness = Harness::new(&opts).unwrap();
    let mut env = harness.gateway_env("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    env.push(("GATEWAY_IO".into(), "uring".into()));
    let config = Config::from_lookup(&|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let gateway = Gateway::start(config).unwrap();
    let metrics = gateway.metrics().clone();
    let target = TargetEndpoint { addr: gateway.local_addr(), pid: None, core: None, ops: None };
    let run = std::thread::spawn(move || harness.run_once(Mode::Relay, CALLS as u32, 1, &target).unwrap());

    // Counters reach /metrics once a second per call: wait for every call to be streaming well
    // past its set-up, then watch a window of at least a second of every call's frames.
    let relayed = || {
        metrics.frames_to_openai.load(Ordering::Relaxed) + metrics.frames_to_twilio.load(Ordering::Relaxed)
    };
    let active = || metrics.active_calls.load(Ordering::Relaxed);
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok() {
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("every call streaming for 2 s", &|| active() == CALLS as i64 && relayed() >= CALLS * 2 * 100);
    let (start_frames, start_allocs) = (relayed(), allocations_of("gw-uring-0"));
    wait_for("a window of relayed frames", &|| relayed() >= start_frames + CALLS * 2 * 100);
    let (end_frames, end_allocs) = (relayed(), allocations_of("gw-uring-0"));
    assert_eq!(active(), CALLS as i64, "the window ended before the calls: widen the run");
    let r = run.join().unwrap();
    gateway.drain();
    gateway.join();

    assert_eq!(r.counts.lost, 0, "{:?}", r.counts);
    assert!(
        end_frames - start_frames >= CALLS * 200,
        "frames relayed in the window: {}",
        end_frames - start_frames
    );
    assert_eq!(
        end_allocs - start_allocs,
        0,
        "the engine thread allocated while relaying {} frames",
        end_frames - start_frames
    );
}
