//! When everything happens in a run, from ONE periodic tick.
//!
//! The event loop has a single `timerfd` firing every [`Schedule::tick_ns`] (1 ms by default);
//! there is no timer per call or per frame. Tick `t` is due at `origin + t × tick`. Calls are
//! spread over `frame_ticks` phases (20 for 20 ms frames at 1 ms ticks): call `i` has phase
//! `i mod frame_ticks` and sends a frame on every tick of its phase, so each tick sends about
//! `calls / frame_ticks` frames, all written in one pass. A late tick is caught up: every missed
//! tick is processed in order, and each frame keeps the time it was *scheduled* for, from which
//! its round trip is measured (no coordinated omission).
//!
//! A run's timeline ([`Timeline`]): calls start one after another over the ramp; after a settle
//! time the measured window opens for `duration`; then an optional window for counting the
//! gateway's syscalls; then media stops, the last frames drain back, and every call sends
//! `stop` and closes.

use std::time::Duration;

/// The tick grid and the call phases of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Tick period (ns).
    pub tick_ns: u64,
    /// Ticks per frame period (the number of phases).
    pub frame_ticks: u64,
    /// Calls in the run.
    pub calls: u32,
    /// Ticks over which the calls start.
    pub ramp_ticks: u64,
}

impl Schedule {
    /// For `calls` calls of `frame` frames on a `tick` grid, started over `ramp`. The frame
    /// period must be a whole number of ticks.
    pub fn new(tick: Duration, frame: Duration, calls: u32, ramp: Duration) -> Result<Self, String> {
        let tick_ns = tick.as_nanos() as u64;
        let frame_ns = frame.as_nanos() as u64;
        if tick_ns == 0 || frame_ns == 0 || !frame_ns.is_multiple_of(tick_ns) {
            return Err(format!("the frame period ({frame:?}) must be a whole number of ticks ({tick:?})"));
        }
        Ok(Self {
            tick_ns,
            frame_ticks: frame_ns / tick_ns,
            calls,
            ramp_ticks: ramp.as_nanos() as u64 / tick_ns,
        })
    }

    /// Frame period (ns).
    pub fn frame_ns(&self) -> u64 {
        self.tick_ns * self.frame_ticks
    }

    /// When tick `t` is due (ns since the origin).
    pub fn tick_at(&self, t: u64) -> u64 {
        t * self.tick_ns
    }

    /// The last tick due at or before `now_ns`.
    pub fn tick_of(&self, now_ns: u64) -> u64 {
        now_ns / self.tick_ns
    }

    /// The phase of call `call`.
    pub fn phase(&self, call: u32) -> u64 {
        u64::from(call) % self.frame_ticks
    }

    /// The tick at which call `call` opens its connection (calls spread evenly over the ramp).
    pub fn start_tick(&self, call: u32) -> u64 {
        if self.calls == 0 {
            return 0;
        }
        u64::from(call) * self.ramp_ticks / u64::from(self.calls)
    }

    /// The first tick after `after` that is in `call`'s phase: where its media starts once the
    /// call is ready at tick `after`.
    pub fn first_media_tick(&self, call: u32, after: u64) -> u64 {
        let phase = self.phase(call);
        let next = after + 1;
        let offset = (phase + self.frame_ticks - next % self.frame_ticks) % self.frame_ticks;
        next + offset
    }

    /// When frame `seq` of a call whose media started at tick `first` is scheduled (ns).
    pub fn frame_at(&self, first: u64, seq: u32) -> u64 {
        self.tick_at(first) + u64::from(seq) * self.frame_ns()
    }

    /// Whether call media is due on tick `t` for a call of `phase`.
    pub fn in_phase(&self, t: u64, phase: u64) -> bool {
        t % self.frame_ticks == phase
    }
}

/// The instants of a run (ns since its origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The last call has started.
    pub ramp_end: u64,
    /// The measured window opens.
    pub measure_start: u64,
    /// The measured window closes.
    pub measure_end: u64,
    /// The syscall-count window closes (= `measure_end` without one); media stops here.
    pub media_stop: u64,
    /// At the latest, calls hang up here (earlier once every frame sent came back).
    pub drain_deadline: u64,
    /// Calls still open now are closed without waiting for the gateway.
    pub close_deadline: u64,
}

impl Timeline {
    /// Builds the timeline from the run's phase lengths.
    pub fn new(
        ramp: Duration,
        settle: Duration,
        duration: Duration,
        syscalls: Duration,
        drain: Duration,
    ) -> Self {
        let ns = |d: Duration| d.as_nanos() as u64;
        let ramp_end = ns(ramp);
        let measure_start = ramp_end + ns(settle);
        let measure_end = measure_start + ns(duration);
        let media_stop = measure_end + ns(syscalls);
        let drain_deadline = media_stop + ns(drain);
        Self {
            ramp_end,
            measure_start,
            measure_end,
            media_stop,
            drain_deadline,
            close_deadline: drain_deadline + 5_000_000_000,
        }
    }

    /// Whether `t_ns` is inside the measured window.
    pub fn in_window(&self, t_ns: u64) -> bool {
        (self.measure_start..self.measure_end).contains(&t_ns)
    }

    /// Seconds of the measured window.
    pub fn window_secs(&self) -> f64 {
        (self.measure_end - self.measure_start) as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn calls_spread_over_twenty_phases() {
        let s = Schedule::new(ms(1), ms(20), 300, ms(5000)).unwrap();
        assert_eq!(s.frame_ticks, 20);
        let mut per_phase = [0u32; 20];
        for c in 0..300 {
            per_phase[s.phase(c) as usize] += 1;
        }
        assert!(per_phase.iter().all(|&n| n == 15), "{per_phase:?}");
        // Each tick sends the frames of one phase: 15 frames per tick at 300 calls.
        let due = (0..300).filter(|&c| s.in_phase(1234, s.phase(c))).count();
        assert_eq!(due, 15);
    }

    #[test]
    fn starts_spread_over_the_ramp() {
        let s = Schedule::new(ms(1), ms(20), 100, ms(5000)).unwrap();
        assert_eq!(s.start_tick(0), 0);
        assert_eq!(s.start_tick(50), 2500);
        assert_eq!(s.start_tick(99), 4950);
        let no_ramp = Schedule::new(ms(1), ms(20), 10, Duration::ZERO).unwrap();
        assert!((0..10).all(|c| no_ramp.start_tick(c) == 0));
    }

    #[test]
    fn first_media_tick_is_the_next_tick_of_the_phase() {
        let s = Schedule::new(ms(1), ms(20), 100, ms(0)).unwrap();
        // Call 7 has phase 7; ready at tick 7 → next phase tick is 27; ready at 6 → 7.
        assert_eq!(s.first_media_tick(7, 6), 7);
        assert_eq!(s.first_media_tick(7, 7), 27);
        assert_eq!(s.first_media_tick(7, 100), 107);
        assert_eq!(s.first_media_tick(0, 19), 20);
        for after in 0..200 {
            let t = s.first_media_tick(13, after);
            assert!(t > after && t <= after + 20 && s.in_phase(t, 13));
        }
    }

    #[test]
    fn frames_are_scheduled_on_the_grid() {
        let s = Schedule::new(ms(1), ms(20), 1, ms(0)).unwrap();
        assert_eq!(s.frame_at(27, 0), 27_000_000);
        assert_eq!(s.frame_at(27, 3), 87_000_000);
        assert_eq!(s.tick_of(87_999_999), 87);
        assert!(Schedule::new(ms(3), ms(20), 1, ms(0)).is_err());
    }

    #[test]
    fn timeline_phases_follow_each_other() {
        let t = Timeline::new(ms(5000), ms(2000), ms(30_000), ms(5000), ms(3000));
        assert_eq!(t.measure_start, 7_000_000_000);
        assert_eq!(t.measure_end, 37_000_000_000);
        assert_eq!(t.media_stop, 42_000_000_000);
        assert_eq!(t.drain_deadline, 45_000_000_000);
        assert!(t.in_window(7_000_000_000) && !t.in_window(37_000_000_000));
        assert_eq!(t.window_secs(), 30.0);
    }
}
