//! Postgres (and Supabase through its connection string): connection and migrations.
//!
//! Migrations are SQL files embedded at build time (`migrations/postgres/`), applied in order
//! inside one transaction each, under a transaction-scoped advisory lock so that two instances
//! starting together do not race. Applied versions are recorded in `callway_migrations`.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::StoreError;
use super::sql::{SqlPool, SqlStore, map_err};

/// The migrations, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/postgres/0001_init.sql"))];

/// Arbitrary constant naming our advisory lock.
const LOCK_KEY: i64 = 0x0063_616c_6c77_6179;

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

/// Applies every migration not yet recorded.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS callway_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await
    .map_err(map_err)?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
        tracing::info!(version, "applied Postgres migration");
    }
    Ok(())
}

/// The latest applied version (for `/readyz` and tests).
pub async fn schema_version(pool: &PgPool) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM callway_migrations")
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_get("v").map_err(map_err)
}
