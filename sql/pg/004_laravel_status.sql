-- pg/004_laravel_status.sql: sql/004_laravel_status.sql on PostgreSQL (one daemon_status row
-- per node, each with its own Laravel figures).
ALTER TABLE daemon_status ADD COLUMN laravel TEXT;
