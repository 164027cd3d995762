//! Giving the memory of ended calls and reconnects back to the system.
//!
//! A call's buffers are a few tens of KiB, freed when it ends or when its OpenAI connection is
//! replaced. glibc's allocator keeps freed memory in its heaps for reuse and returns only the
//! free space at the very top of a heap: after call churn and reconnect waves the freed
//! buffers sit between live ones, the pages stay resident, and RSS climbs in steps to the
//! highest point the churn ever reached (the soak in `benches/README.md` measured +9 % over
//! 20 minutes at a steady 200 calls). Every [`TRIM_PERIOD`] the ops thread asks the allocator
//! to release every whole free page (`malloc_trim(0)`, which `madvise`s them away), so RSS
//! follows the calls running rather than the churn's high-water mark.
//!
//! Never on a call's path: it runs on the ops thread, and the io_uring engine's frame path
//! does not allocate, so it never waits for the allocator's lock while a trim runs. Its cost is
//! in `/metrics` (`callway_gateway_memory_trim_seconds_total`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// How often freed heap memory is handed back to the system.
pub(crate) const TRIM_PERIOD: Duration = Duration::from_secs(10);

/// Trims every [`TRIM_PERIOD`], forever (the ops runtime ends it).
pub(crate) async fn trim_periodically(metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(TRIM_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: nothing has been freed yet
    loop {
        tick.tick().await;
        let start = Instant::now();
        release_free_memory();
        metrics.memory_trims.fetch_add(1, Ordering::Relaxed);
        metrics.memory_trim_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Asks the allocator to return every whole free page of its heaps to the system; true when
/// some memory was released. A no-op (false) where the allocator is not glibc's.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only inspects and releases the allocator's own free memory; it
        // takes the allocator's locks and is safe to call from any thread at any time.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
