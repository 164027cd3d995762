-- Callway control plane, schema 6 (Postgres / Supabase): one warm transfer at a time per call,
-- across every control plane. `transfer_to_human` takes this lease with a conditional UPDATE
-- (free, or expired: a control plane that died mid-transfer holds it 60 s at most) before it
-- dials, and gives it back once Twilio has answered; the `transfer-requested` line of the
-- call's timeline is what makes the transfer once per call. Grants follow the table's.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS transfer_lease_until timestamptz;
