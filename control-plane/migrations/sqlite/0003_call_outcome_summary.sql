-- Callway control plane, schema 3 (embedded SQLite): the end-of-call summary (see the Postgres
-- migration of the same number).
ALTER TABLE calls ADD COLUMN outcome_summary TEXT;
ALTER TABLE calls ADD COLUMN outcome_summary_at TEXT;
