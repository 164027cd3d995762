//! What one event loop records while a run goes on: round-trip latencies (the measured window,
//! and per second of the run for the plot), how late its ticks fired, frame counts, failures;
//! and the few counters the monitor thread reads once a second ([`Progress`], atomics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::pacing::{Schedule, Timeline};
use super::stats::LatencyHist;

/// Frame and message counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Media frames sent by the callers.
    pub sent: u64,
    /// Frames of ours that came back to the call that sent them (each counted once).
    pub received: u64,
    /// Frames that came back more than once.
    pub duplicated: u64,
    /// Frames that came back to another call (a relay mixing calls up).
    pub misrouted: u64,
    /// Frame ids of this call never sent (corrupted audio).
    pub unknown: u64,
    /// Sent, never came back, and not cut by a fault a soak injected (`sent - received`, less
    /// the soak's cut frames, at the end).
    pub lost: u64,
    /// Frame-sized blocks of audio that were not ours (the greeting).
    pub other_audio: u64,
    /// Media payloads that were not valid base64.
    pub undecodable: u64,
    /// Text messages without the fields expected.
    pub malformed: u64,
    /// `mark`s echoed back to the gateway.
    pub marks_echoed: u64,
    /// `clear`s received (barge-ins: none expected outside a soak).
    pub clears: u64,
    /// Appends the OpenAI stand-in echoed.
    pub appends: u64,
    /// OpenAI stand-in sessions opened by the gateway.
    pub openai_sessions: u64,
    /// Stand-in sessions still open when the run ended.
    pub openai_sessions_left: u64,
    /// Requests the stub control plane answered (redeem, events, tools).
    pub control_requests: u64,
    /// Event batches the gateway posted.
    pub event_batches: u64,
    /// Tool requests the gateway made (a soak's tool calls).
    pub tool_requests: u64,
}

/// Counters shared with the monitor thread (relaxed atomics; read once a second).
#[derive(Debug, Default)]
pub struct Progress {
    /// Frames sent.
    pub sent: AtomicU64,
    /// Frames received (unique).
    pub received: AtomicU64,
    /// Calls streaming media.
    pub streaming: AtomicU64,
    /// Calls failed.
    pub failed: AtomicU64,
    /// Calls finished (closed or failed).
    pub finished: AtomicU64,
    /// Nanoseconds the loops spent waiting in `epoll_wait`.
    pub idle_ns: AtomicU64,
    /// Median round trip of the last full second (µs).
    pub last_p50_us: AtomicU64,
    /// 99th percentile of the last full second (µs).
    pub last_p99_us: AtomicU64,
    /// Largest tick lateness of the last full second (µs).
    pub last_late_max_us: AtomicU64,
    /// OpenAI stand-in sessions open.
    pub openai_open: AtomicU64,
    /// Turns of the loops (`epoll_wait` calls).
    pub turns: AtomicU64,
}

impl Progress {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes `n` from a counter.
    #[inline]
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One loop's measurements.
#[derive(Debug)]
pub struct Recorder {
    /// Round trips of frames scheduled inside the measured window.
    pub window: LatencyHist,
    /// Round trips by the second (since the origin) they came back in.
    pub per_second: Vec<LatencyHist>,
    /// Tick lateness (ticks due inside the measured window).
    pub lateness: LatencyHist,
    /// From Twilio's `start` to the first agent audio (the greeting), every call.
    pub first_audio: LatencyHist,
    /// Tick lateness of the current second (for the progress line).
    second_late: LatencyHist,
    /// Counts.
    pub counts: Counts,
    /// Distinct failure messages and how many calls had each.
    pub failures: BTreeMap<String, u32>,
    /// Scratch space to decode audio payloads into.
    pub scratch: Vec<u8>,
    /// A soak's counts (zero otherwise).
    pub soak: super::soak::counts::SoakCounts,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            window: LatencyHist::new(),
            per_second: Vec::new(),
            lateness: LatencyHist::new(),
            first_audio: LatencyHist::new(),
            second_late: LatencyHist::new(),
            counts: Counts::default(),
            failures: BTreeMap::new(),
            scratch: vec![0; 64 * 1024],
            soak: Default::default(),
        }
    }
}

impl Recorder {
    /// A round trip of a frame scheduled at `sched_ns` that came back at `now_ns`.
    #[inline]
    pub fn round_trip(&mut self, timeline: &Timeline, sched_ns: u64, now_ns: u64) {
        let rtt = now_ns.saturating_sub(sched_ns);
        if timeline.in_window(sched_ns) {
            self.window.record(rtt);
        }
        let sec = (now_ns / 1_000_000_000) as usize;
        if self.per_second.len() <= sec {
            self.per_second.resize_with(sec + 1, LatencyHist::new);
        }
        self.per_second[sec].record(rtt);
    }

    /// A tick due at `due_ns` processed at `now_ns`.
    #[inline]
    pub fn tick_lateness(&mut self, timeline: &Timeline, due_ns: u64, now_ns: u64) {
        let late = now_ns.saturating_sub(due_ns);
        if timeline.in_window(due_ns) {
            self.lateness.record(late);
        }
        self.second_late.record(late);
    }

    /// A call failed with `why`.
    pub fn failure(&mut self, why: String) {
        *self.failures.entry(why).or_default() += 1;
    }

    /// Publishes second `sec`'s latency and lateness to the progress counters.
    pub fn publish_second(&mut self, sec: usize, progress: &Progress) {
        if let Some(h) = self.per_second.get(sec)
            && !h.is_empty()
        {
            progress.last_p50_us.store((h.quantile_ms(0.5) * 1000.0) as u64, Ordering::Relaxed);
            progress.last_p99_us.store((h.quantile_ms(0.99) * 1000.0) as u64, Ordering::Relaxed);
        }
        if !self.second_late.is_empty() {
            progress
                .last_late_max_us
                .store((self.second_late.quantile_ms(1.0) * 1000.0) as u64, Ordering::Relaxed);
            self.second_late.clear();
        }
    }
}

/// The run's fixed parameters every connection of a loop reads.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    /// The tick grid.
    pub schedule: Schedule,
    /// The run's instants.
    pub timeline: Timeline,
    /// Tick 0.
    pub origin: std::time::Instant,
}

impl RunClock {
    /// Nanoseconds since the origin (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        std::time::Instant::now().saturating_duration_since(self.origin).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trips_go_to_the_window_and_the_second() {
        let timeline = Timeline::new(
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::ZERO,
        );
        let mut r = Recorder::default();
        r.round_trip(&timeline, 500_000_000, 501_000_000); // before the window
        r.round_trip(&timeline, 1_200_000_000, 1_202_000_000); // inside
        r.round_trip(&timeline, 1_999_000_000, 2_003_000_000); // scheduled inside, back after
        assert_eq!(r.window.len(), 2);
        assert_eq!(r.per_second.len(), 3);
        assert_eq!((r.per_second[0].len(), r.per_second[1].len(), r.per_second[2].len()), (1, 1, 1));
        let p = Progress::default();
        r.publish_second(1, &p);
        assert_eq!(Progress::get(&p.last_p50_us), 2000);
        r.failure("x".into());
        r.failure("x".into());
        assert_eq!(r.failures["x"], 2);
    }
}
