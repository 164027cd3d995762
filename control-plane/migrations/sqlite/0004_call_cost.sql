-- Callway control plane, schema 4 (embedded SQLite): what a call's cost is computed from (see
-- the Postgres migration of the same number).
ALTER TABLE calls ADD COLUMN input_audio_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN input_cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN input_cached_audio_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN output_audio_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN live_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN engine_api TEXT;
ALTER TABLE calls ADD COLUMN engine_model TEXT;
CREATE INDEX IF NOT EXISTS calls_created_at_idx ON calls (created_at);

UPDATE calls SET
    engine_api = (SELECT json_extract(e.payload, '$.api') FROM call_events e
                  WHERE e.call_id = calls.id AND e.kind = 'engine' ORDER BY e.seq LIMIT 1),
    engine_model = (SELECT json_extract(e.payload, '$.model') FROM call_events e
                    WHERE e.call_id = calls.id AND e.kind = 'engine' ORDER BY e.seq LIMIT 1)
WHERE engine_model IS NULL AND EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = calls.id AND e.kind = 'engine');
UPDATE calls SET
    live_seconds = (SELECT max(CAST(json_extract(e.payload, '$.seconds') AS REAL)) FROM call_events e
                    WHERE e.call_id = calls.id AND e.kind = 'live_usage')
WHERE EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = calls.id AND e.kind = 'live_usage');
