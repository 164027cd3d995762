//! The embedded default: SQLite in a file (WAL, foreign keys on), same queries as Postgres.
//! Migrations are embedded SQL files (`migrations/sqlite/`), recorded in `callway_migrations`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::sql::{SqlPool, SqlStore, map_err};

/// The migrations, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_init.sql"))];

/// Opens (creating if needed) the database at `url` (`sqlite:path?mode=rwc`, `sqlite::memory:`).
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("DATABASE_URL is not a valid SQLite URL: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    // One writer at a time is SQLite's rule; in-memory databases must share one connection.
    let max = if url.contains(":memory:") { 1 } else { 4 };
    let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await.map_err(map_err)?;
    Ok(SqlStore { pool: SqlPool::Sqlite(pool) })
}

/// Applies every migration not yet recorded.
pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS callway_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .execute(pool)
    .await
    .map_err(map_err)?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("SELECT version FROM callway_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("INSERT INTO callway_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        tracing::info!(version, "applied SQLite migration");
    }
    Ok(())
}
