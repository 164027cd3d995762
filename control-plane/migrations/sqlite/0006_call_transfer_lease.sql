-- Callway control plane, schema 6 (embedded SQLite): the warm transfer's lease (see the Postgres
-- migration of the same number).
ALTER TABLE calls ADD COLUMN transfer_lease_until TEXT;
