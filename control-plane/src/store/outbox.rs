//! The durable outbox: a write accepted while the database is down is not lost.
//!
//! [`Storage::write`] tries the database; if it is unreachable ([`StoreError::Unavailable`]) the
//! write is serialized to a file in `OUTBOX_DIR` (written to a temporary name, `fsync`ed, renamed,
//! directory `fsync`ed) and the caller is told it was [`Applied::Queued`]. While anything is
//! queued, later writes queue behind it, so the database sees them in the order they were
//! accepted. [`Storage::replay`] (run periodically by the server) applies queued writes oldest
//! first and stops at the first one that still cannot reach the database. A write the database
//! refuses for good (a missing parent row…) is moved to `OUTBOX_DIR/dead/` and counted, never
//! dropped silently.
//!
//! A batch of call events applied, now or on replay, is reported once to the function set with
//! [`Storage::on_appended`] (the cost counters, [`crate::cost::counter`]): what the store
//! actually inserted, so a batch the gateway sends again is not counted twice.
//!
//! Erasure ([`Storage::erase_phone`]) reaches the outbox too: a queued write about an erased
//! number (its lead, a correction, its calls' statuses and transcript events) would otherwise
//! bring the data back on replay, and a dead letter would keep it on disk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use super::{Appended, Erased, Store, StoreError, Write};
use crate::metrics::Metrics;

/// Where a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Applied {
    /// In the database.
    Now,
    /// In the outbox, to be replayed.
    Queued,
}

/// What one replay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Writes applied.
    pub replayed: u64,
    /// Writes refused for good (moved to `dead/`).
    pub dead: u64,
    /// Writes still waiting.
    pub pending: u64,
}

struct Queue {
    next_seq: u64,
    pending: VecDeque<u64>,
}

/// A store plus its outbox.
pub struct Storage {
    /// The backend.
    pub store: Store,
    dir: PathBuf,
    queue: Mutex<Queue>,
    pending: AtomicU64,
    metrics: Arc<Metrics>,
    on_appended: std::sync::OnceLock<AppendedHook>,
}

/// Told of each batch of call events applied ([`Storage::on_appended`]).
pub type AppendedHook = Box<dyn Fn(&Appended) + Send + Sync>;

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Other(format!("outbox: cannot {what} {}: {e}", path.display()))
}

impl Storage {
    /// Opens the outbox in `dir` (created if needed) and loads what a previous run left there.
    pub async fn open(store: Store, dir: &Path, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(dir.join("dead")).await.map_err(|e| io_err("create", dir, e))?;
        let mut seqs = Vec::new();
        let mut rd = tokio::fs::read_dir(dir).await.map_err(|e| io_err("read", dir, e))?;
        while let Some(entry) = rd.next_entry().await.map_err(|e| io_err("read", dir, e))? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let next_seq = seqs.last().map_or(1, |s| s + 1);
        let pending = seqs.len() as u64;
        metrics.outbox_pending.store(pending, Ordering::Relaxed);
        if pending > 0 {
            tracing::warn!(pending, dir = %dir.display(), "outbox holds writes from a previous run; they will be replayed");
        }
        Ok(Self {
            store,
            dir: dir.to_owned(),
            queue: Mutex::new(Queue { next_seq, pending: seqs.into() }),
            pending: AtomicU64::new(pending),
            metrics,
            on_appended: std::sync::OnceLock::new(),
        })
    }

    /// Sets the function told of each batch of call events applied, now or on replay (once;
    /// a second call is ignored).
    pub fn on_appended(&self, hook: AppendedHook) {
        let _ = self.on_appended.set(hook);
    }

    fn applied(&self, stored: Option<Appended>) {
        if let (Some(a), Some(hook)) = (stored, self.on_appended.get()) {
            hook(&a);
        }
    }

    /// Writes waiting in the outbox.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    async fn enqueue(&self, q: &mut Queue, w: &Write) -> Result<(), StoreError> {
        let seq = q.next_seq;
        let bytes = serde_json::to_vec(w).map_err(|e| StoreError::Other(e.to_string()))?;
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let path = self.path(seq);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(|e| StoreError::Other(format!("outbox: writer task failed: {e}")))?
        .map_err(|e| io_err("write", &self.dir, e))?;
        q.next_seq += 1;
        q.pending.push_back(seq);
        self.pending.store(q.pending.len() as u64, Ordering::Relaxed);
        self.metrics.outbox_pending.store(q.pending.len() as u64, Ordering::Relaxed);
        self.metrics.outbox_queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Applies `w` now, or queues it if the database is unreachable or writes are already queued.
    pub async fn write(&self, w: Write) -> Result<Applied, StoreError> {
        if self.pending() > 0 {
            let mut q = self.queue.lock().await;
            if !q.pending.is_empty() {
                self.enqueue(&mut q, &w).await?;
                return Ok(Applied::Queued);
            }
        }
        match self.store.apply(&w).await {
            Ok(stored) => {
                self.applied(stored);
                Ok(Applied::Now)
            }
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(%why, "database unavailable: write queued in the outbox");
                let mut q = self.queue.lock().await;
                self.enqueue(&mut q, &w).await?;
                Ok(Applied::Queued)
            }
            Err(e) => Err(e),
        }
    }

    /// Applies queued writes, oldest first, until the outbox is empty or the database is still
    /// unreachable.
    pub async fn replay(&self) -> ReplayReport {
        let mut report = ReplayReport::default();
        let mut q = self.queue.lock().await;
        while let Some(&seq) = q.pending.front() {
            let path = self.path(seq);
            let parsed = match tokio::fs::read(&path).await {
                Ok(bytes) => serde_json::from_slice::<Write>(&bytes).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let outcome = match &parsed {
                Ok(w) => self.store.apply(w).await,
                Err(why) => Err(StoreError::Other(format!("unreadable outbox entry: {why}"))),
            };
            match outcome {
                Ok(stored) => {
                    self.applied(stored);
                    if let Err(e) = tokio::fs::remove_file(&path).await {
                        tracing::error!(seq, error = %e, "outbox: applied but could not delete entry; stopping replay");
                        break;
                    }
                    report.replayed += 1;
                    self.metrics.outbox_replayed.fetch_add(1, Ordering::Relaxed);
                }
                Err(StoreError::Unavailable(_)) => break,
                Err(e) => {
                    tracing::error!(seq, error = %e, "outbox: write refused by the database, moved to dead/");
                    let _ =
                        tokio::fs::rename(&path, self.dir.join("dead").join(format!("{seq:020}.json"))).await;
                    report.dead += 1;
                    self.metrics.outbox_dead.fetch_add(1, Ordering::Relaxed);
                }
            }
            q.pending.pop_front();
            self.pending.store(q.pending.len() as u64, Ordering::Relaxed);
            self.metrics.outbox_pending.store(q.pending.len() as u64, Ordering::Relaxed);
        }
        report.pending = q.pending.len() as u64;
        if report.replayed > 0 {
            tracing::info!(replayed = report.replayed, pending = report.pending, "outbox replayed");
        }
        report
    }

    /// Erases everything held about `phone_e164`: the outbox entries that mention the number,
    /// one of its leads or one of their calls (pending writes and dead letters, matched on
    /// their stored bytes, so an entry that no longer parses is caught too), then the database
    /// rows ([`Store::erase_phone`]). Replay waits meanwhile, so nothing erased comes back. Leads
    /// that exist only in the outbox (saved while the database was down) are found by their
    /// number and their later writes go with them.
    pub async fn erase_phone(&self, phone_e164: &str) -> Result<Erased, StoreError> {
        let mut q = self.queue.lock().await;
        let (leads, calls) = self.store.ids_for_phone(phone_e164).await?;
        let mut needles: Vec<String> = std::iter::once(phone_e164.to_owned())
            .chain(leads.iter().chain(&calls).map(uuid::Uuid::to_string))
            .collect();

        // Every entry, oldest first: pending ones by sequence, then dead letters.
        let mut entries: Vec<(Option<u64>, PathBuf)> =
            q.pending.iter().map(|&seq| (Some(seq), self.path(seq))).collect();
        let dead_dir = self.dir.join("dead");
        let mut rd = tokio::fs::read_dir(&dead_dir).await.map_err(|e| io_err("read", &dead_dir, e))?;
        while let Some(entry) = rd.next_entry().await.map_err(|e| io_err("read", &dead_dir, e))? {
            if entry.file_name().to_string_lossy().ends_with(".json") {
                entries.push((None, entry.path()));
            }
        }
        let mut contents = Vec::with_capacity(entries.len());
        for (seq, path) in entries {
            let bytes = tokio::fs::read(&path).await.map_err(|e| io_err("read", &path, e))?;
            // A lead saved only here: its id marks its later writes.
            if let Ok(Write::UpsertLead(l)) = serde_json::from_slice::<Write>(&bytes)
                && l.phone_e164 == phone_e164
            {
                needles.push(l.id.to_string());
            }
            contents.push((seq, path, bytes));
        }
        let mut removed = 0;
        for (seq, path, bytes) in contents {
            let text = String::from_utf8_lossy(&bytes);
            if !needles.iter().any(|n| text.contains(n.as_str())) {
                continue;
            }
            tokio::fs::remove_file(&path).await.map_err(|e| io_err("delete", &path, e))?;
            if let Some(seq) = seq {
                q.pending.retain(|&s| s != seq);
            }
            removed += 1;
        }
        self.pending.store(q.pending.len() as u64, Ordering::Relaxed);
        self.metrics.outbox_pending.store(q.pending.len() as u64, Ordering::Relaxed);
        let mut erased = self.store.erase_phone(phone_e164).await?;
        erased.outbox = removed;
        Ok(erased)
    }

    /// Replays forever, every `period`, backing off while the database stays down.
    pub async fn run_replayer(self: Arc<Self>, period: std::time::Duration) {
        loop {
            tokio::time::sleep(period).await;
            if self.pending() > 0 {
                let _ = self.replay().await;
            }
        }
    }
}
