//! Rate limiting, sans-IO: a GCRA (generic cell rate algorithm) per key, with the time passed
//! in. "At most `limit` events per `window`", smooth (no burst at window edges), one `u64` of
//! state per key.
//!
//! Counters live in this process: with several control-plane instances each enforces its own
//! share. That bounds abuse per instance, which is what the limits are for (cost and
//! harassment protection); a global counter would live in Postgres.

use std::collections::HashMap;
use std::hash::Hash;

/// A limit: `limit` events per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Events allowed in a window (≥ 1).
    pub limit: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

impl Quota {
    /// `limit` per hour.
    pub const fn per_hour(limit: u32) -> Self {
        Self { limit, window_ms: 3_600_000 }
    }
    /// `limit` per minute.
    pub const fn per_minute(limit: u32) -> Self {
        Self { limit, window_ms: 60_000 }
    }
    /// `limit` per day.
    pub const fn per_day(limit: u32) -> Self {
        Self { limit, window_ms: 86_400_000 }
    }
}

/// Refused: try again after this many milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl RetryAfter {
    /// Rounded up to whole seconds (for the `Retry-After` header).
    pub fn secs(self) -> u64 {
        self.0.div_ceil(1000)
    }
}

/// Keys pruned when the table grows past this (expired entries only).
const PRUNE_AT: usize = 10_000;

/// One GCRA table.
#[derive(Debug)]
pub struct RateLimiter<K> {
    quota: Quota,
    /// Theoretical arrival time per key (ms).
    tat: HashMap<K, u64>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter enforcing `quota`.
    pub fn new(quota: Quota) -> Self {
        Self { quota, tat: HashMap::new() }
    }

    fn interval(&self) -> u64 {
        (self.quota.window_ms / u64::from(self.quota.limit.max(1))).max(1)
    }

    /// Whether `key` may act at `now_ms` without consuming anything.
    pub fn peek(&self, key: &K, now_ms: u64) -> Result<(), RetryAfter> {
        let t = self.interval();
        let tau = self.quota.window_ms.saturating_sub(t);
        let tat = self.tat.get(key).copied().unwrap_or(now_ms).max(now_ms);
        if tat - now_ms > tau { Err(RetryAfter(tat - now_ms - tau)) } else { Ok(()) }
    }

    /// Records an event for `key` at `now_ms` if allowed.
    pub fn check(&mut self, key: K, now_ms: u64) -> Result<(), RetryAfter> {
        self.peek(&key, now_ms)?;
        if self.tat.len() >= PRUNE_AT {
            self.tat.retain(|_, tat| *tat > now_ms);
        }
        let t = self.interval();
        let tat = self.tat.entry(key).or_insert(now_ms);
        *tat = (*tat).max(now_ms) + t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_limit_then_refuses_until_a_slot_frees() {
        let mut rl = RateLimiter::new(Quota { limit: 3, window_ms: 3_000 });
        for _ in 0..3 {
            assert_eq!(rl.check("ip", 10_000), Ok(()));
        }
        assert_eq!(rl.check("ip", 10_000), Err(RetryAfter(1_000)));
        assert_eq!(rl.check("other", 10_000), Ok(()));
        assert_eq!(rl.check("ip", 10_999), Err(RetryAfter(1)));
        assert_eq!(rl.check("ip", 11_000), Ok(()));
        assert!(rl.check("ip", 11_000).is_err());
        // After a whole window of silence the full quota is back.
        for _ in 0..3 {
            assert_eq!(rl.check("ip", 20_000), Ok(()));
        }
    }

    #[test]
    fn peek_does_not_consume() {
        let mut rl = RateLimiter::new(Quota::per_minute(1));
        assert!(rl.peek(&1, 0).is_ok());
        assert!(rl.peek(&1, 0).is_ok());
        assert!(rl.check(1, 0).is_ok());
        assert_eq!(rl.peek(&1, 0), Err(RetryAfter(60_000)));
        assert_eq!(RetryAfter(60_000).secs(), 60);
        assert_eq!(RetryAfter(1).secs(), 1);
    }
}
