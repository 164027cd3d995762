-- Callway control plane, schema 1 (Postgres / Supabase).
-- RLS is enabled on every table with no policy: only roles that bypass RLS (service_role, the
-- table owner) see rows. Grants are explicit (Supabase no longer grants new tables to
-- anon/authenticated/service_role automatically): service_role gets what the control plane
-- needs, anon and authenticated get nothing.

CREATE TABLE IF NOT EXISTS leads (
    id            uuid PRIMARY KEY,
    session_id    uuid,
    first_name    text NOT NULL CHECK (char_length(first_name) BETWEEN 1 AND 80),
    last_name     text NOT NULL CHECK (char_length(last_name) BETWEEN 1 AND 80),
    phone_e164    text NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
    source        text NOT NULL DEFAULT 'web',
    consent_at    timestamptz NOT NULL,
    consent_text  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS leads_phone_e164_idx ON leads (phone_e164);

CREATE TABLE IF NOT EXISTS calls (
    id                 uuid PRIMARY KEY,
    lead_id            uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    session_id         uuid,
    call_sid           text UNIQUE,
    status             text NOT NULL,
    status_rank        integer NOT NULL DEFAULT 0,
    summary            text NOT NULL,
    stream_nonce       text NOT NULL UNIQUE,
    token_expires_at   timestamptz NOT NULL,
    token_redeemed_at  timestamptz,
    end_reason         text,
    end_side           text,
    duration_ms        bigint,
    input_tokens       bigint NOT NULL DEFAULT 0,
    output_tokens      bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS calls_lead_id_idx ON calls (lead_id);
-- One active call per lead, enforced by the database itself (races between instances included).
CREATE UNIQUE INDEX IF NOT EXISTS calls_one_active_per_lead ON calls (lead_id)
    WHERE status IN ('created', 'queued', 'initiated', 'ringing', 'in-progress');

CREATE TABLE IF NOT EXISTS call_status_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id  uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    status   text NOT NULL,
    source   text NOT NULL,
    detail   text,
    at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS call_status_events_call_idx ON call_status_events (call_id, id);

CREATE TABLE IF NOT EXISTS call_events (
    call_id     uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    speaker     text,
    text        text,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX IF NOT EXISTS call_events_transcript_age_idx ON call_events (created_at) WHERE kind = 'transcript';

ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_status_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE callway_migrations ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON leads, calls, call_status_events, call_events, callway_migrations FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON leads, calls, call_status_events, call_events, callway_migrations FROM anon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON leads, calls, call_status_events, call_events, callway_migrations FROM authenticated;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON leads, calls, call_status_events, call_events TO service_role;
        GRANT SELECT ON callway_migrations TO service_role;
    END IF;
END
$$;
