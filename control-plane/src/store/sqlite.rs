//! The embedded default: SQLite in a file (WAL, foreign keys on), same queries as Postgres.
//! Migrations are embedded SQL files (`migrations/sqlite/`), applied by
//! [`super::sql::SqlStore::migrate`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::sql::{SqlPool, SqlStore, map_err};

/// The migrations, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_call_retries.sql")),
    (3, include_str!("../../migrations/sqlite/0003_call_outcome_summary.sql")),
    (4, include_str!("../../migrations/sqlite/0004_call_cost.sql")),
    (5, include_str!("../../migrations/sqlite/0005_call_web_transcript.sql")),
    (6, include_str!("../../migrations/sqlite/0006_call_transfer_lease.sql")),
];
/// The table recording applied migrations.
pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS callway_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)";

/// Opens (creating if needed) the database at `url` (`sqlite:path?mode=rwc`, `sqlite::memory:`).
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("DATABASE_URL is not a valid SQLite URL: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    // One connection: SQLite allows one writer at a time, and a deferred transaction that turns
    // into a write while another connection writes fails with SQLITE_BUSY at once (the busy
    // timeout does not apply). The embedded default trades concurrency for never failing so.
    let max = 1;
    let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await.map_err(map_err)?;
    Ok(SqlStore { pool: SqlPool::Sqlite(pool) })
}
