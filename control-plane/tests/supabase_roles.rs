//! Row-level security and grants, proven on a real PostgreSQL with Supabase's API roles
//! emulated (protocols.md D, fact 4): `anon` and `authenticated` can neither read nor write
//! any of our tables; `service_role` (BYPASSRLS) can, through the explicit grants of the
//! migration; RLS is on everywhere, so even a stray grant to `authenticated` shows no rows.

mod common;

use callway_control::config::StorageConfig;
use sqlx::{Connection, Executor, PgConnection, Row};

const TABLES: &[&str] =
    &["leads", "calls", "call_status_events", "call_events", "call_retries", "callway_migrations"];

async fn sqlstate(conn: &mut PgConnection, role: &str, sql: &str) -> Option<String> {
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL ROLE {role}").as_str()).await.unwrap();
    let r = tx.execute(sql).await;
    tx.rollback().await.unwrap();
    r.err().map(|e| e.as_database_error().and_then(|d| d.code()).unwrap_or_default().into_owned())
}

async fn migrated_with_roles() -> PgConnection {
    let url = common::pg::fresh_database().await;
    common::pg::ensure_supabase_roles(&url).await;
    let store = callway_control::open_store(&StorageConfig::Postgres { url: url.clone() }).await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute(
        "INSERT INTO leads (id, first_name, last_name, phone_e164, consent_at, consent_text) \
         VALUES ('00000000-0000-4000-8000-000000000001', 'Claire', 'Martin', '+33612345678', now(), 'v1')",
    )
    .await
    .unwrap();
    conn
}

#[tokio::test]
async fn anon_and_authenticated_can_neither_read_nor_write() {
    let mut conn = migrated_with_roles().await;
    for role in ["anon", "authenticated"] {
        for table in TABLES {
            assert_eq!(
                sqlstate(&mut conn, role, &format!("SELECT * FROM {table}")).await.as_deref(),
                Some("42501"),
                "{role} must not read {table}"
            );
            assert_eq!(
                sqlstate(&mut conn, role, &format!("DELETE FROM {table}")).await.as_deref(),
                Some("42501"),
                "{role} must not delete from {table}"
            );
        }
        let insert = "INSERT INTO leads (id, first_name, last_name, phone_e164, consent_at, consent_text) \
                      VALUES (gen_random_uuid(), 'Eve', 'X', '+33612345679', now(), 'v1')";
        assert_eq!(sqlstate(&mut conn, role, insert).await.as_deref(), Some("42501"), "{role} inserts");
        let update = "UPDATE leads SET first_name = 'Eve'";
        assert_eq!(sqlstate(&mut conn, role, update).await.as_deref(), Some("42501"), "{role} updates");
    }
}

#[tokio::test]
async fn service_role_reads_and_writes_through_explicit_grants() {
    let mut conn = migrated_with_roles().await;
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE service_role").await.unwrap();
    let n: i64 = sqlx::query("SELECT count(*) AS n FROM leads").fetch_one(&mut *tx).await.unwrap().get("n");
    assert_eq!(n, 1, "service_role bypasses RLS and holds SELECT");
    tx.execute(
        "INSERT INTO leads (id, first_name, last_name, phone_e164, consent_at, consent_text) \
         VALUES ('00000000-0000-4000-8000-000000000002', 'Luc', 'B', '+33612345679', now(), 'v1')",
    )
    .await
    .expect("service_role inserts leads");
    tx.execute(
        "INSERT INTO calls (id, lead_id, status, summary, stream_nonce, token_expires_at) \
         VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000002', 'created', 's', 'n1', now())",
    )
    .await
    .expect("service_role inserts calls");
    tx.execute("DELETE FROM leads WHERE first_name = 'Luc'").await.expect("service_role deletes (erasure)");
    let e = tx.execute("DELETE FROM callway_migrations").await.unwrap_err();
    assert_eq!(e.as_database_error().unwrap().code().unwrap(), "42501", "migrations are read-only to it");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn rls_is_on_everywhere_so_a_stray_grant_shows_nothing() {
    let mut conn = migrated_with_roles().await;
    for table in TABLES {
        let on: bool = sqlx::query("SELECT relrowsecurity FROM pg_class WHERE relname = $1")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        assert!(on, "RLS must be enabled on {table}");
    }
    let mut tx = conn.begin().await.unwrap();
    tx.execute("GRANT SELECT ON leads TO authenticated").await.unwrap();
    tx.execute("SET LOCAL ROLE authenticated").await.unwrap();
    let n: i64 = sqlx::query("SELECT count(*) AS n FROM leads").fetch_one(&mut *tx).await.unwrap().get("n");
    assert_eq!(n, 0, "no policy: RLS hides every row even from a role holding SELECT");
    tx.rollback().await.unwrap();
}
