//! Postgres (and Supabase through its connection string): connection and migrations.
//!
//! Migrations are SQL files embedded at build time (`migrations/postgres/`), applied by
//! [`super::sql::SqlStore::migrate`] in order, one transaction each, under a transaction-scoped
//! advisory lock so that two instances starting together do not race.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::StoreError;
use super::sql::{SqlPool, SqlStore, map_err};

/// The migrations, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_call_retries.sql")),
    (3, include_str!("../../migrations/postgres/0003_call_outcome_summary.sql")),
    (4, include_str!("../../migrations/postgres/0004_call_cost.sql")),
    (5, include_str!("../../migrations/postgres/0005_call_web_transcript.sql")),
    (6, include_str!("../../migrations/postgres/0006_call_transfer_lease.sql")),
];

/// Arbitrary constant naming the advisory lock migrations take.
pub const MIGRATION_LOCK_KEY: i64 = 0x0063_616c_6c77_6179;
/// The table recording applied migrations.
pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS callway_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";

/// Connects (lazily: the first query opens the first connection, so a database that is down at
/// start does not stop the service; writes go to the outbox meanwhile).
pub fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
    let opts: PgConnectOptions = url
        .parse()
        .map_err(|e| StoreError::Other(format!("DATABASE_URL is not a valid Postgres URL: {e}")))?;
    // Supabase's transaction pooler (port 6543) does not support prepared statements.
    let opts = if url.contains(":6543") { opts.statement_cache_capacity(0) } else { opts };
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(opts);
    Ok(SqlStore { pool: SqlPool::Pg(pool) })
}

/// The latest applied version (for `/readyz` and tests).
pub async fn schema_version(pool: &PgPool) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM callway_migrations")
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_get("v").map_err(map_err)
}
