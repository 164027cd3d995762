-- Callway control plane, schema 3 (Postgres / Supabase): the end-of-call summary.
-- Written once the call has ended, by SUMMARY_MODEL through OpenAI's Responses API (goal,
-- information confirmed, objections, agreed next step); erased with the call. Grants follow the
-- table's (migration 1): service_role already has UPDATE on calls.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS outcome_summary text;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS outcome_summary_at timestamptz;
