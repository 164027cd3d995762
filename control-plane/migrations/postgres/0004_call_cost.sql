-- Callway control plane, schema 4 (Postgres / Supabase): what a call's cost is computed from
-- (issue 13, item 4; control-plane/src/cost). Summed on the call's row as the gateway's events
-- are stored, like input_tokens / output_tokens:
-- - the Realtime token split (each a subset of the totals: text = total - audio, uncached =
--   total - cached), 0 for events from gateways that do not report it;
-- - the GPT-Live billed seconds (the largest cumulative `live_usage` reported: the last one);
-- - the engine and model the call used (its `engine` event).
-- Calls stored before this migration get their engine and Live seconds from their events; their
-- tokens have no split (priced at the model's input and output prices, as before).
-- Grants follow the table's (migration 1): service_role already has UPDATE on calls.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS input_audio_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS input_cached_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS input_cached_audio_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS output_audio_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS live_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS engine_api text;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS engine_model text;
CREATE INDEX IF NOT EXISTS calls_created_at_idx ON calls (created_at);

UPDATE calls c SET
    engine_api = (SELECT e.payload::jsonb ->> 'api' FROM call_events e
                  WHERE e.call_id = c.id AND e.kind = 'engine' ORDER BY e.seq LIMIT 1),
    engine_model = (SELECT e.payload::jsonb ->> 'model' FROM call_events e
                    WHERE e.call_id = c.id AND e.kind = 'engine' ORDER BY e.seq LIMIT 1)
WHERE c.engine_model IS NULL AND EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind = 'engine');
UPDATE calls c SET
    live_seconds = (SELECT max((e.payload::jsonb ->> 'seconds')::double precision) FROM call_events e
                    WHERE e.call_id = c.id AND e.kind = 'live_usage')
WHERE EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND e.kind = 'live_usage');
