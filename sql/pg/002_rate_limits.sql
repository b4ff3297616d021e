-- pg/002_rate_limits.sql: sql/002_rate_limits.sql on PostgreSQL.
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  hits INTEGER NOT NULL DEFAULT 0,
  window_start TEXT NOT NULL
);
