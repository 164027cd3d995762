//! Timeouts that stay honest under `tokio::time::pause`.
//!
//! With tokio's clock paused, a runtime that waits on a socket jumps straight to its next timer,
//! even when the socket's data is already there: a plain `tokio::time::timeout(10 s, io)` can
//! fire before `io` had a chance. These timeouts wait in short steps instead, so the clock
//! never jumps by more than a step while an operation is under way. In real time the steps
//! cost a wake-up every 10 ms.
//!
//! The kernel's own timers do not follow tokio's paused clock: sockets must not wait on them.
//! The simulator sets `TCP_NODELAY` on every socket it opens or accepts, so Nagle's algorithm
//! never holds a segment back for a delayed ACK that virtual time would outrun.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Longest single jump of a stepped wait.
pub const STEP: Duration = Duration::from_millis(10);

/// The operation did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out")]
pub struct Elapsed;

/// Runs `fut` for at most `limit` (measured on tokio's clock, in steps of [`STEP`]).
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let deadline = Instant::now() + limit;
    tokio::pin!(fut);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Elapsed);
        }
        let step = tokio::time::sleep((deadline - now).min(STEP));
        tokio::select! {
            biased;
            out = &mut fut => return Ok(out),
            _ = step => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn times_out_at_the_limit_and_passes_results_through() {
        let t0 = Instant::now();
        assert_eq!(timeout(Duration::from_secs(2), std::future::pending::<()>()).await, Err(Elapsed));
        assert!(t0.elapsed() >= Duration::from_secs(2));
        assert_eq!(timeout(Duration::from_secs(2), async { 7 }).await, Ok(7));
    }
}
