//! The queries shared by the Postgres and SQLite backends. Both accept `$n` placeholders,
//! `RETURNING` and `ON CONFLICT`; types are chosen so one text serves both (`Uuid` is `uuid` on
//! Postgres and a 16-byte blob on SQLite, `OffsetDateTime` is `timestamptz` or UTC text). Every
//! time is passed in from Rust: no `now()` in SQL.

use contract::internal_api::{CallEvent, Side, Speaker};
use sqlx::{PgPool, Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Appended, CallRow, CallUsage, Erased, EventsWrite, Lead, LeadCorrection, NewCall, NewLead, Redeem,
    RedeemedCall,
};
use super::{NewRetry, RetryRow, StatusUpdate, StoreError, TimelineEntry, event_kind, status_rank};

/// A pool of either kind.
#[derive(Clone)]
pub enum SqlPool {
    /// Postgres / Supabase direct.
    Pg(PgPool),
    /// Embedded SQLite.
    Sqlite(SqlitePool),
}

/// The SQL store.
#[derive(Clone)]
pub struct SqlStore {
    /// The pool.
    pub pool: SqlPool,
}

/// Runs `$body` with `$p` bound to whichever pool this is (the body compiles for both).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::sql::SqlPool::Pg($p) => $body,
            $crate::store::sql::SqlPool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Reads a [`RetryRow`] from a row of either backend (a macro: the row types differ).
macro_rules! call_row {
    ($r:expr) => {
        (|| -> Result<CallRow, sqlx::Error> {
            Ok(CallRow {
                id: $r.try_get("id")?,
                lead_id: $r.try_get("lead_id")?,
                session_id: $r.try_get("session_id")?,
                call_sid: $r.try_get("call_sid")?,
                status: $r.try_get("status")?,
                end_reason: $r.try_get("end_reason")?,
                input_tokens: $r.try_get("input_tokens")?,
                output_tokens: $r.try_get("output_tokens")?,
                summary: $r.try_get("summary")?,
                web_transcript: $crate::store::web_transcript::decode(
                    $r.try_get::<Option<String>, _>("web_transcript")?.as_deref(),
                ),
            })
        })()
    };
}

/// Reads a [`CallUsage`] from the [`USAGE_COLUMNS`] of a row of either backend.
macro_rules! usage_row {
    ($r:expr) => {
        (|| -> Result<$crate::store::CallUsage, sqlx::Error> {
            let n = |c: &str| -> Result<u64, sqlx::Error> {
                Ok(u64::try_from($r.try_get::<i64, _>(c)?).unwrap_or(0))
            };
            Ok($crate::store::CallUsage {
                input_tokens: n("input_tokens")?,
                output_tokens: n("output_tokens")?,
                details: contract::internal_api::TokenDetails {
                    input_audio_tokens: n("input_audio_tokens")?,
                    input_cached_tokens: n("input_cached_tokens")?,
                    input_cached_audio_tokens: n("input_cached_audio_tokens")?,
                    output_audio_tokens: n("output_audio_tokens")?,
                },
                live_seconds: $r.try_get("live_seconds")?,
                engine_api: $r.try_get("engine_api")?,
                engine_model: $r.try_get("engine_model")?,
            })
        })()
    };
}
pub(crate) use usage_row;

/// The columns of `calls` a [`CallUsage`] is read from (a literal, for `concat!`).
macro_rules! usage_columns {
    () => {
        "input_tokens, output_tokens, input_audio_tokens, input_cached_tokens, input_cached_audio_tokens, \
         output_audio_tokens, live_seconds, engine_api, engine_model"
    };
}
pub(crate) use usage_columns;
const USAGE_OF: &str = concat!("SELECT lead_id, ", usage_columns!(), " FROM calls WHERE id = $1");
const USAGE_OF_LOCKED: &str =
    concat!("SELECT lead_id, ", usage_columns!(), " FROM calls WHERE id = $1 FOR UPDATE");

/// A count as stored (`bigint`).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

macro_rules! retry_row {
    ($r:expr) => {
        (|| -> Result<RetryRow, sqlx::Error> {
            Ok(RetryRow {
                id: $r.try_get("id")?,
                lead_id: $r.try_get("lead_id")?,
                after_call_id: $r.try_get("after_call_id")?,
                attempt: u32::try_from($r.try_get::<i32, _>("attempt")?).unwrap_or(0),
                reason: $r.try_get("reason")?,
                state: $r.try_get("state")?,
                due_at: $r.try_get("due_at")?,
                call_id: $r.try_get("call_id")?,
                detail: $r.try_get("detail")?,
            })
        })()
    };
}

/// Classifies a sqlx error: unreachable (queue it) or not.
pub fn map_err(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
                ErrorKind::ForeignKeyViolation => StoreError::NotFound(db.message().to_owned()),
                // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (and their extended codes): another
                // writer holds the file past the busy timeout; retryable like an outage.
                // 40001/40P01: serialization failure or deadlock — the write is fine, retry it.
                _ if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "40001"
                    || code == "40P01"
                    || (db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                        && code.parse::<i32>().is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6)) =>
                {
                    StoreError::Unavailable(format!("{code}: {}", db.message()))
                }
                _ if code == "42P01" || db.message().contains("no such table") => {
                    StoreError::Schema(db.message().to_owned())
                }
                _ => StoreError::Other(format!("{code}: {}", db.message())),
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("i/o: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("tls: {e}")),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("no database connection within the pool timeout".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("pool closed".into()),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("database worker crashed".into()),
        sqlx::Error::Protocol(p) => StoreError::Unavailable(format!("protocol: {p}")),
        other => StoreError::Other(other.to_string()),
    }
}

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
}

impl SqlStore {
    /// `postgres` or `sqlite`.
    pub fn kind(&self) -> &'static str {
        match self.pool {
            SqlPool::Pg(_) => "postgres",
            SqlPool::Sqlite(_) => "sqlite",
        }
    }

    /// Applies every migration not yet recorded in `callway_migrations`, each in its own
    /// transaction. On Postgres a transaction-scoped advisory lock serializes instances that
    /// start together (SQLite has one writer anyway).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let (migrations, create) = match self.pool {
            SqlPool::Pg(_) => (super::postgres::MIGRATIONS, super::postgres::CREATE_MIGRATIONS_TABLE),
            SqlPool::Sqlite(_) => (super::sqlite::MIGRATIONS, super::sqlite::CREATE_MIGRATIONS_TABLE),
        };
        let postgres = matches!(self.pool, SqlPool::Pg(_));
        on_pool!(&self.pool, p => {
            sqlx::raw_sql(create).execute(p).await.map_err(map_err)?;
            for (version, sql) in migrations {
                let mut tx = p.begin().await.map_err(map_err)?;
                if postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(super::postgres::MIGRATION_LOCK_KEY)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
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
                tracing::info!(version, backend = self.kind(), "applied migration");
            }
            Ok(())
        })
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(map_err))
    }

    /// Inserts or updates a lead by id.
    pub async fn upsert_lead(&self, l: &NewLead) -> Result<(), StoreError> {
        const Q: &str = "INSERT INTO leads (id, session_id, first_name, last_name, phone_e164, source, consent_at, consent_text, created_at, updated_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
            ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name, \
            phone_e164 = excluded.phone_e164, consent_at = excluded.consent_at, consent_text = excluded.consent_text, \
            updated_at = excluded.updated_at";
        let at = utc(l.at);
        on_pool!(&self.pool, p => sqlx::query(Q)
            .bind(l.id).bind(l.session_id).bind(&l.first_name).bind(&l.last_name).bind(&l.phone_e164)
            .bind(&l.source).bind(at).bind(&l.consent_text).bind(at).bind(at)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    /// Applies a correction; unknown lead is [`StoreError::NotFound`].
    pub async fn correct_lead(&self, c: &LeadCorrection) -> Result<(), StoreError> {
        const Q: &str = "UPDATE leads SET first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name), \
            phone_e164 = COALESCE($4, phone_e164), updated_at = $5 WHERE id = $1";
        let n = on_pool!(&self.pool, p => sqlx::query(Q)
            .bind(c.lead_id).bind(&c.first_name).bind(&c.last_name).bind(&c.phone_e164).bind(utc(c.at))
            .execute(p).await.map(|r| r.rows_affected()).map_err(map_err))?;
        if n == 0 { Err(StoreError::NotFound(format!("lead {}", c.lead_id))) } else { Ok(()) }
    }

    /// A lead by id.
    pub async fn get_lead(&self, id: Uuid) -> Result<Option<Lead>, StoreError> {
        const Q: &str = "SELECT id, first_name, last_name, phone_e164 FROM leads WHERE id = $1";
        on_pool!(&self.pool, p => {
            let row = sqlx::query(Q).bind(id).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| -> Result<Lead, sqlx::Error> {
                Ok(Lead {
                    id: r.try_get("id")?,
                    first_name: r.try_get("first_name")?,
                    last_name: r.try_get("last_name")?,
                    phone_e164: r.try_get("phone_e164")?,
                })
            }).transpose().map_err(map_err)
        })
    }

    /// Inserts a call in state `created`.
    pub async fn create_call(&self, c: &NewCall) -> Result<(), StoreError> {
        const Q: &str = "INSERT INTO calls (id, lead_id, session_id, status, status_rank, summary, stream_nonce, token_expires_at, created_at, updated_at, attempt, web_transcript) \
            VALUES ($1, $2, $3, 'created', 0, $4, $5, $6, $7, $8, $9, $10)";
        let at = utc(c.at);
        let attempt = i32::try_from(c.attempt).map_err(|_| StoreError::Other("attempt overflow".into()))?;
        on_pool!(&self.pool, p => sqlx::query(Q)
            .bind(c.id).bind(c.lead_id).bind(c.session_id).bind(&c.summary).bind(&c.stream_nonce)
            .bind(utc(c.token_expires_at)).bind(at).bind(at).bind(attempt)
            .bind(super::web_transcript::encode(&c.web_transcript))
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    /// A call by id.
    pub async fn get_call(&self, id: Uuid) -> Result<Option<CallRow>, StoreError> {
        const Q: &str = "SELECT id, lead_id, session_id, call_sid, status, end_reason, input_tokens, output_tokens, summary, web_transcript FROM calls WHERE id = $1";
        on_pool!(&self.pool, p => {
            let row = sqlx::query(Q).bind(id).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| call_row!(r)).transpose().map_err(map_err)
        })
    }

    /// The lead's call of attempt `attempt` that no retry points to yet (what a worker that
    /// died while placing that attempt left), newest first.
    pub async fn unlinked_call_of_attempt(
        &self,
        lead_id: Uuid,
        attempt: u32,
    ) -> Result<Option<CallRow>, StoreError> {
        const Q: &str = "SELECT id, lead_id, session_id, call_sid, status, end_reason, input_tokens, output_tokens, summary, web_transcript FROM calls \
            WHERE lead_id = $1 AND attempt = $2 AND id NOT IN (SELECT call_id FROM call_retries WHERE call_id IS NOT NULL) \
            ORDER BY created_at DESC LIMIT 1";
        let attempt = i32::try_from(attempt).map_err(|_| StoreError::Other("attempt overflow".into()))?;
        on_pool!(&self.pool, p => {
            let row = sqlx::query(Q).bind(lead_id).bind(attempt).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| call_row!(r)).transpose().map_err(map_err)
        })
    }

    /// Statuses of a call, oldest first.
    pub async fn status_timeline(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        const Q: &str = "SELECT status FROM call_status_events WHERE call_id = $1 ORDER BY id";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(id).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| r.try_get::<String, _>("status")).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Adds a status to the timeline; moves the call's status forward only.
    pub async fn record_status(&self, u: &StatusUpdate) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO call_status_events (call_id, status, source, detail, at) VALUES ($1, $2, $3, $4, $5)";
        const SID: &str = "UPDATE calls SET call_sid = COALESCE(call_sid, $2), updated_at = $3 WHERE id = $1";
        const ADVANCE: &str =
            "UPDATE calls SET status = $2, status_rank = $3 WHERE id = $1 AND status_rank < $3";
        let at = utc(u.at);
        let rank = if u.source == "twilio-stream" { None } else { status_rank(&u.status) };
        // The call row is locked first (the UPDATEs), the timeline row inserted last: two
        // concurrent updates of one call (our `queued` record and Twilio's first callback) then
        // queue behind each other. The other order deadlocks on Postgres: each INSERT's foreign
        // key check holds KEY SHARE on the call, and setting `call_sid` (a unique column) needs
        // FOR UPDATE.
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query(SID).bind(u.call_id).bind(&u.call_sid).bind(at).execute(&mut *tx).await.map_err(map_err)?;
            if let Some(rank) = rank {
                sqlx::query(ADVANCE).bind(u.call_id).bind(&u.status).bind(rank)
                    .execute(&mut *tx).await.map_err(map_err)?;
            }
            sqlx::query(INSERT).bind(u.call_id).bind(&u.status).bind(&u.source).bind(&u.detail).bind(at)
                .execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        })
    }

    /// Marks the token used, once. The `UPDATE … WHERE token_redeemed_at IS NULL` is the atomic
    /// step: two gateways racing get one row between them.
    pub async fn redeem(
        &self,
        call_id: Uuid,
        nonce: &str,
        call_sid: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<Redeem, StoreError> {
        const UPDATE: &str = "UPDATE calls SET token_redeemed_at = $3, call_sid = COALESCE(call_sid, $4), updated_at = $5 \
            WHERE id = $1 AND stream_nonce = $2 AND token_redeemed_at IS NULL RETURNING lead_id, summary, call_sid, web_transcript";
        const LEAD: &str = "SELECT first_name FROM leads WHERE id = $1";
        const EXISTS: &str = "SELECT 1 AS one FROM calls WHERE id = $1 AND stream_nonce = $2";
        let at = utc(at);
        on_pool!(&self.pool, p => {
            let row = sqlx::query(UPDATE).bind(call_id).bind(nonce).bind(at).bind(call_sid).bind(at)
                .fetch_optional(p).await.map_err(map_err)?;
            match row {
                Some(r) => {
                    let lead_id: Uuid = r.try_get("lead_id").map_err(map_err)?;
                    let summary: String = r.try_get("summary").map_err(map_err)?;
                    let call_sid: Option<String> = r.try_get("call_sid").map_err(map_err)?;
                    let web: Option<String> = r.try_get("web_transcript").map_err(map_err)?;
                    let web_transcript = super::web_transcript::decode(web.as_deref());
                    let lead = sqlx::query(LEAD).bind(lead_id).fetch_one(p).await.map_err(map_err)?;
                    let first_name: String = lead.try_get("first_name").map_err(map_err)?;
                    Ok(Redeem::Redeemed(RedeemedCall { call_id, lead_id, first_name, summary, call_sid, web_transcript }))
                }
                None => {
                    let exists = sqlx::query(EXISTS).bind(call_id).bind(nonce).fetch_optional(p).await.map_err(map_err)?;
                    Ok(if exists.is_some() { Redeem::AlreadyRedeemed } else { Redeem::Unknown })
                }
            }
        })
    }

    /// Stores a batch; events already stored (same `seq`) are skipped, so retries are harmless.
    /// The call's row (locked first on Postgres) gets the usage of the events newly stored;
    /// returns that usage before and after.
    pub async fn append_events(&self, b: &EventsWrite) -> Result<Appended, StoreError> {
        const INSERT: &str = "INSERT INTO call_events (call_id, seq, kind, speaker, text, payload, created_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (call_id, seq) DO NOTHING";
        const USAGE: &str = "UPDATE calls SET input_tokens = $2, output_tokens = $3, input_audio_tokens = $4, \
            input_cached_tokens = $5, input_cached_audio_tokens = $6, output_audio_tokens = $7, live_seconds = $8, \
            engine_api = $9, engine_model = $10 WHERE id = $1";
        const ENDED: &str = "UPDATE calls SET end_reason = $2, end_side = $3, duration_ms = $4 WHERE id = $1";
        let lock = if matches!(self.pool, SqlPool::Pg(_)) { USAGE_OF_LOCKED } else { USAGE_OF };
        let at = utc(b.at);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let Some(row) = sqlx::query(lock).bind(b.call_id).fetch_optional(&mut *tx).await.map_err(map_err)? else {
                return Err(StoreError::NotFound(format!("call {}", b.call_id)));
            };
            let before = usage_row!(row).map_err(map_err)?;
            let mut after = before.clone();
            let mut inserted = 0;
            for (i, e) in b.events.iter().enumerate() {
                let seq = i64::try_from(b.seq + i as u64).map_err(|_| StoreError::Other("seq overflow".into()))?;
                let (speaker, text) = match e {
                    CallEvent::Transcript { speaker, text, .. } => (Some(speaker_name(*speaker)), Some(text.as_str())),
                    _ => (None, None),
                };
                let payload = serde_json::to_string(e).map_err(|e| StoreError::Other(e.to_string()))?;
                let n = sqlx::query(INSERT).bind(b.call_id).bind(seq).bind(event_kind(e)).bind(speaker)
                    .bind(text).bind(payload).bind(at).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                if n == 0 {
                    continue;
                }
                inserted += 1;
                after.add(e);
                if let CallEvent::Ended { side, reason, duration_ms } = e {
                    sqlx::query(ENDED).bind(b.call_id).bind(reason).bind(side_name(*side))
                        .bind(i64::try_from(*duration_ms).unwrap_or(i64::MAX))
                        .execute(&mut *tx).await.map_err(map_err)?;
                }
            }
            if after != before {
                let d = &after.details;
                sqlx::query(USAGE).bind(b.call_id).bind(big(after.input_tokens)).bind(big(after.output_tokens))
                    .bind(big(d.input_audio_tokens)).bind(big(d.input_cached_tokens))
                    .bind(big(d.input_cached_audio_tokens)).bind(big(d.output_audio_tokens))
                    .bind(after.live_seconds).bind(&after.engine_api).bind(&after.engine_model)
                    .execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            Ok(Appended { call_id: b.call_id, inserted, before, after })
        })
    }

    /// What a call's cost is computed from, with its lead.
    pub async fn call_usage(&self, id: Uuid) -> Result<Option<(Uuid, CallUsage)>, StoreError> {
        on_pool!(&self.pool, p => {
            let row = sqlx::query(USAGE_OF).bind(id).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| -> Result<(Uuid, CallUsage), sqlx::Error> { Ok((r.try_get("lead_id")?, usage_row!(r)?)) })
                .transpose()
                .map_err(map_err)
        })
    }

    /// Ended calls (updated in `[since, until]`) with a transcript and no summary.
    pub async fn calls_awaiting_summary(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        const Q: &str = "SELECT c.id FROM calls c WHERE c.outcome_summary IS NULL AND c.end_reason IS NOT NULL \
            AND c.updated_at >= $1 AND c.updated_at <= $2 \
            AND EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind = 'transcript') \
            ORDER BY c.updated_at LIMIT $3";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(utc(since)).bind(utc(until)).bind(i64::from(limit))
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| r.try_get::<Uuid, _>("id")).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Stores the end-of-call summary on the call.
    pub async fn set_outcome_summary(
        &self,
        call_id: Uuid,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const Q: &str =
            "UPDATE calls SET outcome_summary = $2, outcome_summary_at = $3, updated_at = $3 WHERE id = $1";
        let n = on_pool!(&self.pool, p => sqlx::query(Q).bind(call_id).bind(text).bind(utc(at))
            .execute(p).await.map(|r| r.rows_affected()).map_err(map_err))?;
        if n == 0 { Err(StoreError::NotFound(format!("call {call_id}"))) } else { Ok(()) }
    }

    /// `UPDATE calls SET transfer_lease_until = until WHERE id AND (free or expired)`.
    pub async fn claim_transfer(
        &self,
        call_id: Uuid,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const Q: &str = "UPDATE calls SET transfer_lease_until = $2 \
            WHERE id = $1 AND (transfer_lease_until IS NULL OR transfer_lease_until < $3)";
        const EXISTS: &str = "SELECT 1 AS one FROM calls WHERE id = $1";
        on_pool!(&self.pool, p => {
            let n = sqlx::query(Q).bind(call_id).bind(utc(until)).bind(utc(now))
                .execute(p).await.map_err(map_err)?.rows_affected();
            if n == 1 {
                return Ok(true);
            }
            match sqlx::query(EXISTS).bind(call_id).fetch_optional(p).await.map_err(map_err)? {
                Some(_) => Ok(false),
                None => Err(StoreError::NotFound(format!("call {call_id}"))),
            }
        })
    }

    /// `UPDATE calls SET transfer_lease_until = NULL`.
    pub async fn release_transfer(&self, call_id: Uuid) -> Result<(), StoreError> {
        const Q: &str = "UPDATE calls SET transfer_lease_until = NULL WHERE id = $1";
        on_pool!(&self.pool, p => sqlx::query(Q).bind(call_id).execute(p).await.map(drop).map_err(map_err))
    }

    /// Deletes transcript lines stored before `before`: the phone lines, and the web
    /// conversations stored with calls asked for before then. Returns how many lines went.
    pub async fn purge_transcripts(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        const Q: &str = "DELETE FROM call_events WHERE kind = 'transcript' AND created_at < $1";
        const COUNT_WEB: &str =
            "SELECT web_transcript FROM calls WHERE web_transcript IS NOT NULL AND created_at < $1";
        const WEB: &str =
            "UPDATE calls SET web_transcript = NULL WHERE web_transcript IS NOT NULL AND created_at < $1";
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let phone = sqlx::query(Q).bind(utc(before)).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            let web = sqlx::query(COUNT_WEB).bind(utc(before)).fetch_all(&mut *tx).await.map_err(map_err)?
                .iter()
                .map(|r| r.try_get::<Option<String>, _>("web_transcript").map(|t| super::web_transcript::decode(t.as_deref()).len() as u64))
                .sum::<Result<u64, _>>()
                .map_err(map_err)?;
            sqlx::query(WEB).bind(utc(before)).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(phone + web)
        })
    }

    /// The ids of the leads with this number and of their calls.
    pub async fn ids_for_phone(&self, phone_e164: &str) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
        const LEADS: &str = "SELECT id FROM leads WHERE phone_e164 = $1";
        const CALLS: &str =
            "SELECT c.id FROM calls c JOIN leads l ON l.id = c.lead_id WHERE l.phone_e164 = $1";
        on_pool!(&self.pool, p => {
            let mut out = (Vec::new(), Vec::new());
            for (q, ids) in [(LEADS, &mut out.0), (CALLS, &mut out.1)] {
                let rows = sqlx::query(q).bind(phone_e164).fetch_all(p).await.map_err(map_err)?;
                for r in rows {
                    ids.push(r.try_get("id").map_err(map_err)?);
                }
            }
            Ok(out)
        })
    }

    /// Deletes the leads with this number and everything hanging off them, in one transaction.
    pub async fn erase_phone(&self, phone_e164: &str) -> Result<Erased, StoreError> {
        const LEADS: &str = "SELECT id FROM leads WHERE phone_e164 = $1";
        const RETRIES: &str = "DELETE FROM call_retries WHERE lead_id = $1";
        const EVENTS: &str =
            "DELETE FROM call_events WHERE call_id IN (SELECT id FROM calls WHERE lead_id = $1)";
        const STATUS: &str =
            "DELETE FROM call_status_events WHERE call_id IN (SELECT id FROM calls WHERE lead_id = $1)";
        const CALLS: &str = "DELETE FROM calls WHERE lead_id = $1";
        const LEAD: &str = "DELETE FROM leads WHERE id = $1";
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let ids: Vec<Uuid> = sqlx::query(LEADS).bind(phone_e164).fetch_all(&mut *tx).await.map_err(map_err)?
                .iter().map(|r| r.try_get("id")).collect::<Result<_, _>>().map_err(map_err)?;
            let mut out = Erased::default();
            for id in ids {
                out.retries += sqlx::query(RETRIES).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                out.call_events += sqlx::query(EVENTS).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                out.call_status_events += sqlx::query(STATUS).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                out.calls += sqlx::query(CALLS).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                out.leads += sqlx::query(LEAD).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            }
            tx.commit().await.map_err(map_err)?;
            Ok(out)
        })
    }

    /// Inserts a retry; a second one for the same call is ignored (`false`).
    pub async fn schedule_retry(&self, r: &NewRetry) -> Result<bool, StoreError> {
        const Q: &str = "INSERT INTO call_retries (id, lead_id, after_call_id, attempt, reason, state, requested_at, due_at, created_at, updated_at) \
            VALUES ($1, $2, $3, $4, $5, 'scheduled', $6, $7, $8, $8) ON CONFLICT (after_call_id) DO NOTHING";
        let attempt = i32::try_from(r.attempt).map_err(|_| StoreError::Other("attempt overflow".into()))?;
        on_pool!(&self.pool, p => sqlx::query(Q)
            .bind(r.id).bind(r.lead_id).bind(r.after_call_id).bind(attempt).bind(&r.reason)
            .bind(utc(r.requested_at)).bind(utc(r.due_at)).bind(utc(r.at))
            .execute(p).await.map(|x| x.rows_affected() == 1).map_err(map_err))
    }

    /// The call's attempt number (stored with the call, so a callback racing the worker reads
    /// it right); 1 for an unknown call.
    pub async fn attempt_of_call(&self, call_id: Uuid) -> Result<u32, StoreError> {
        const Q: &str = "SELECT attempt FROM calls WHERE id = $1";
        on_pool!(&self.pool, p => {
            let row = sqlx::query(Q).bind(call_id).fetch_optional(p).await.map_err(map_err)?;
            match row {
                Some(r) => Ok(u32::try_from(r.try_get::<i32, _>("attempt").map_err(map_err)?).unwrap_or(1)),
                None => Ok(1),
            }
        })
    }

    /// `UPDATE … WHERE state = 'scheduled' AND due_at <= now … RETURNING`: on Postgres the rows
    /// are picked `FOR UPDATE SKIP LOCKED` (a second worker takes other rows instead of waiting)
    /// and the outer `state = 'scheduled'` is re-checked on the locked row, so one row goes to one
    /// worker; SQLite has a single writer.
    pub async fn claim_due_retries(
        &self,
        now: OffsetDateTime,
        worker: &str,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        const PG: &str = "UPDATE call_retries SET state = 'placing', claimed_by = $2, claimed_at = $1, updated_at = $1 \
            WHERE id IN (SELECT id FROM call_retries WHERE state = 'scheduled' AND due_at <= $1 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
            AND state = 'scheduled' \
            RETURNING id, lead_id, after_call_id, attempt, reason, state, due_at, call_id, detail";
        const LITE: &str = "UPDATE call_retries SET state = 'placing', claimed_by = $2, claimed_at = $1, updated_at = $1 \
            WHERE id IN (SELECT id FROM call_retries WHERE state = 'scheduled' AND due_at <= $1 ORDER BY due_at LIMIT $3) \
            AND state = 'scheduled' \
            RETURNING id, lead_id, after_call_id, attempt, reason, state, due_at, call_id, detail";
        let q = if matches!(self.pool, SqlPool::Pg(_)) { PG } else { LITE };
        let now = utc(now);
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(q).bind(now).bind(worker).bind(i64::from(limit))
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| retry_row!(r)).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Retries left `placing` since before `claimed_before` (their worker died), oldest first.
    pub async fn stuck_retries(
        &self,
        claimed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<RetryRow>, StoreError> {
        const Q: &str = "SELECT id, lead_id, after_call_id, attempt, reason, state, due_at, call_id, detail \
            FROM call_retries WHERE state = 'placing' AND claimed_at <= $1 ORDER BY claimed_at LIMIT $2";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(utc(claimed_before)).bind(i64::from(limit))
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| retry_row!(r)).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Back to `scheduled` at `due_at` (only from `placing`).
    pub async fn reschedule_retry(
        &self,
        id: Uuid,
        due_at: OffsetDateTime,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const Q: &str = "UPDATE call_retries SET state = 'scheduled', due_at = $2, detail = $3, claimed_by = NULL, claimed_at = NULL, updated_at = $4 \
            WHERE id = $1 AND state = 'placing'";
        on_pool!(&self.pool, p => sqlx::query(Q).bind(id).bind(utc(due_at)).bind(detail).bind(utc(at))
            .execute(p).await.map(|x| x.rows_affected() == 1).map_err(map_err))
    }

    /// `placing` → `state`.
    pub async fn finish_retry(
        &self,
        id: Uuid,
        state: &str,
        call_id: Option<Uuid>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const Q: &str = "UPDATE call_retries SET state = $2, call_id = $3, detail = $4, updated_at = $5 \
            WHERE id = $1 AND state = 'placing'";
        on_pool!(&self.pool, p => sqlx::query(Q).bind(id).bind(state).bind(call_id).bind(detail).bind(utc(at))
            .execute(p).await.map(|x| x.rows_affected() == 1).map_err(map_err))
    }

    /// `scheduled` → `cancelled` for a lead, or for every lead of a number.
    pub async fn cancel_retries(
        &self,
        lead_id: Option<Uuid>,
        phone_e164: Option<&str>,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<RetryRow>, StoreError> {
        const Q: &str = "UPDATE call_retries SET state = 'cancelled', detail = $3, updated_at = $4 \
            WHERE state = 'scheduled' AND (lead_id = $1 OR lead_id IN (SELECT id FROM leads WHERE phone_e164 = $2)) \
            RETURNING id, lead_id, after_call_id, attempt, reason, state, due_at, call_id, detail";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(lead_id).bind(phone_e164).bind(detail).bind(utc(at))
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| retry_row!(r)).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// A lead's retries, oldest first.
    pub async fn retries_for_lead(&self, lead_id: Uuid) -> Result<Vec<RetryRow>, StoreError> {
        const Q: &str = "SELECT id, lead_id, after_call_id, attempt, reason, state, due_at, call_id, detail \
            FROM call_retries WHERE lead_id = $1 ORDER BY attempt, created_at";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(lead_id).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| retry_row!(r)).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Every status of the lead's calls, in time order.
    pub async fn lead_timeline(&self, lead_id: Uuid) -> Result<Vec<TimelineEntry>, StoreError> {
        const Q: &str = "SELECT e.call_id, e.status, e.source, e.detail, e.at FROM call_status_events e \
            JOIN calls c ON c.id = e.call_id WHERE c.lead_id = $1 ORDER BY e.at, e.id";
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(Q).bind(lead_id).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| -> Result<TimelineEntry, sqlx::Error> {
                Ok(TimelineEntry {
                    call_id: r.try_get("call_id")?,
                    status: r.try_get("status")?,
                    source: r.try_get("source")?,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            }).collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }
}

pub(crate) fn speaker_name(s: Speaker) -> &'static str {
    match s {
        Speaker::Caller => "caller",
        Speaker::Agent => "agent",
    }
}

pub(crate) fn side_name(s: Side) -> &'static str {
    match s {
        Side::Twilio => "twilio",
        Side::Openai => "openai",
        Side::Gateway => "gateway",
        Side::ControlPlane => "control_plane",
    }
}
