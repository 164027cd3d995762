-- Callway control plane, schema 5 (embedded SQLite): the web conversation a call was asked from
-- (see the Postgres migration of the same number).
ALTER TABLE calls ADD COLUMN web_transcript TEXT;
