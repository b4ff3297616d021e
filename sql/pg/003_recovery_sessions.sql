-- pg/003_recovery_sessions.sql: sql/003_recovery_sessions.sql on PostgreSQL.
CREATE TABLE recovery_sessions (
  pid TEXT PRIMARY KEY,
  node_id TEXT NOT NULL DEFAULT 'local',
  socket_id TEXT NOT NULL,
  rooms TEXT NOT NULL DEFAULT '[]',
  user_id TEXT,
  platform TEXT,
  left_at_ms BIGINT,
  since_id BIGINT NOT NULL DEFAULT 0
);
