-- Callway control plane, schema 5 (Postgres / Supabase): the web conversation a call was asked
-- from, as the visitor's page saw it (JSON text: [{"speaker": "agent"|"caller", "text": …}],
-- at most 64 lines and 8000 characters; NULL when the call was not asked from a conversation).
-- GPT-Live starts the phone session with it; the call's record shows it. Cleared with the
-- transcripts after TRANSCRIPT_RETENTION_DAYS (`callway-control purge`), deleted with the call
-- when the lead is erased. Grants follow the table's (migration 1).
ALTER TABLE calls ADD COLUMN IF NOT EXISTS web_transcript text;
