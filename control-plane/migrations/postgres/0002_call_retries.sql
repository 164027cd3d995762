-- Callway control plane, schema 2 (Postgres / Supabase): scheduled call retries.
-- A call that ends busy, unanswered or failed (or, later, on a voicemail) may schedule one retry;
-- the `after_call_id` unique key makes scheduling idempotent (Twilio may repeat a callback).
-- Workers claim due rows with `UPDATE ... WHERE state = 'scheduled' AND due_at <= now ...
-- FOR UPDATE SKIP LOCKED RETURNING`, so one attempt is placed by one control plane only.
-- Every step is also written to the originating call's `call_status_events` (source `retry`).

-- Which attempt to reach the lead a call is (1 = the call the prospect asked for), written with
-- the call itself so a status callback never reads it before it exists.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1);

CREATE TABLE IF NOT EXISTS call_retries (
    id             uuid PRIMARY KEY,
    lead_id        uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    after_call_id  uuid NOT NULL UNIQUE REFERENCES calls (id) ON DELETE CASCADE,
    attempt        integer NOT NULL CHECK (attempt >= 2),
    reason         text NOT NULL,
    state          text NOT NULL CHECK (state IN ('scheduled', 'placing', 'placed', 'cancelled', 'failed')),
    requested_at   timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    claimed_by     text,
    claimed_at     timestamptz,
    call_id        uuid REFERENCES calls (id) ON DELETE SET NULL,
    detail         text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS call_retries_due_idx ON call_retries (due_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS call_retries_lead_idx ON call_retries (lead_id);
CREATE UNIQUE INDEX IF NOT EXISTS call_retries_call_idx ON call_retries (call_id) WHERE call_id IS NOT NULL;

ALTER TABLE call_retries ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON call_retries FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON call_retries FROM anon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON call_retries FROM authenticated;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON call_retries TO service_role;
    END IF;
END
$$;
