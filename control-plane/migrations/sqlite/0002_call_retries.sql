-- Callway control plane, schema 2 (embedded SQLite): scheduled call retries. Same table as
-- Postgres (see migrations/postgres/0002_call_retries.sql); SQLite has a single writer, so the
-- claiming UPDATE needs no row locks.

-- Which attempt to reach the lead a call is (1 = the call the prospect asked for).
ALTER TABLE calls ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1);
CREATE TABLE IF NOT EXISTS call_retries (
    id             BLOB PRIMARY KEY,
    lead_id        BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    after_call_id  BLOB NOT NULL UNIQUE REFERENCES calls (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL CHECK (attempt >= 2),
    reason         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('scheduled', 'placing', 'placed', 'cancelled', 'failed')),
    requested_at   TEXT NOT NULL,
    due_at         TEXT NOT NULL,
    claimed_by     TEXT,
    claimed_at     TEXT,
    call_id        BLOB REFERENCES calls (id) ON DELETE SET NULL,
    detail         TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_retries_due_idx ON call_retries (due_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS call_retries_lead_idx ON call_retries (lead_id);
CREATE UNIQUE INDEX IF NOT EXISTS call_retries_call_idx ON call_retries (call_id) WHERE call_id IS NOT NULL;
