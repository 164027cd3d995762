-- Callway control plane, schema 1 (embedded SQLite). Same tables as Postgres; no roles here.
CREATE TABLE IF NOT EXISTS leads (
    id            BLOB PRIMARY KEY,
    session_id    BLOB,
    first_name    TEXT NOT NULL CHECK (length(first_name) BETWEEN 1 AND 80),
    last_name     TEXT NOT NULL CHECK (length(last_name) BETWEEN 1 AND 80),
    phone_e164    TEXT NOT NULL CHECK (phone_e164 GLOB '+[1-9]*'),
    source        TEXT NOT NULL DEFAULT 'web',
    consent_at    TEXT NOT NULL,
    consent_text  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_phone_e164_idx ON leads (phone_e164);

CREATE TABLE IF NOT EXISTS calls (
    id                 BLOB PRIMARY KEY,
    lead_id            BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    session_id         BLOB,
    call_sid           TEXT UNIQUE,
    status             TEXT NOT NULL,
    status_rank        INTEGER NOT NULL DEFAULT 0,
    summary            TEXT NOT NULL,
    stream_nonce       TEXT NOT NULL UNIQUE,
    token_expires_at   TEXT NOT NULL,
    token_redeemed_at  TEXT,
    end_reason         TEXT,
    end_side           TEXT,
    duration_ms        INTEGER,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_lead_id_idx ON calls (lead_id);
CREATE UNIQUE INDEX IF NOT EXISTS calls_one_active_per_lead ON calls (lead_id)
    WHERE status IN ('created', 'queued', 'initiated', 'ringing', 'in-progress');

CREATE TABLE IF NOT EXISTS call_status_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id  BLOB NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    status   TEXT NOT NULL,
    source   TEXT NOT NULL,
    detail   TEXT,
    at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_status_events_call_idx ON call_status_events (call_id, id);

CREATE TABLE IF NOT EXISTS call_events (
    call_id     BLOB NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    speaker     TEXT,
    text        TEXT,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX IF NOT EXISTS call_events_transcript_age_idx ON call_events (created_at) WHERE kind = 'transcript';
