//! The caller's stream clock, in samples (125 µs) since the WebSocket opened.
//!
//! Paced, it follows tokio's clock (so `tokio::time::pause` gives exact virtual time in tests),
//! optionally accelerated by an integer factor. Unpaced, it only moves when the caller steps it
//! (one 20 ms frame per step, sent back to back).

use std::time::Duration;

use tokio::time::Instant;

use crate::playback::duration_to_samples;

/// Stream time source for one call.
#[derive(Debug, Clone)]
pub struct StreamClock {
    factor: u32,
    paced: bool,
    base: u64,
    base_instant: Instant,
}

impl StreamClock {
    /// A clock at 0, running `factor` times faster than tokio's clock when paced.
    pub fn new(factor: u32, paced: bool) -> Self {
        Self { factor: factor.max(1), paced, base: 0, base_instant: Instant::now() }
    }

    /// Whether the clock follows tokio's clock.
    pub fn is_paced(&self) -> bool {
        self.paced
    }

    /// Current stream time (samples).
    pub fn now(&self) -> u64 {
        if self.paced {
            self.base + duration_to_samples(self.base_instant.elapsed() * self.factor)
        } else {
            self.base
        }
    }

    /// Switches between following tokio's clock and stepping, without a jump.
    pub fn set_paced(&mut self, paced: bool) {
        if paced != self.paced {
            self.base = self.now();
            self.base_instant = Instant::now();
            self.paced = paced;
        }
    }

    /// Moves an unpaced clock forward.
    pub fn step(&mut self, samples: u64) {
        debug_assert!(!self.paced);
        self.base += samples;
    }

    /// The tokio instant at which a paced clock reads `at` (never earlier, so that a timer set
    /// for it always finds `now() >= at`).
    pub fn deadline(&self, at: u64) -> Instant {
        let ahead = at.saturating_sub(self.base);
        let nanos = (u128::from(ahead) * 125_000).div_ceil(u128::from(self.factor));
        self.base_instant + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paced_follows_tokio_time_and_deadlines_are_exact() {
        let c = StreamClock::new(1, true);
        tokio::time::sleep_until(c.deadline(160)).await;
        assert!(c.now() >= 160);
        let fast = StreamClock::new(10, true);
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(fast.now(), 160);
    }

    #[test]
    fn unpaced_steps() {
        let mut c = StreamClock::new(1, false);
        c.step(160);
        c.step(160);
        assert_eq!(c.now(), 320);
    }
}
