-- 003_recovery_sessions.sql: what rtd needs to restore a socket for connection-state
-- recovery (--recovery-window; rtd/recovery.c): one row per private id (pid), written when
-- the socket connects and updated as it joins, leaves and identifies, so that a SIGKILL
-- leaves it too. left_at_ms is NULL while the socket is connected; a restart marks such
-- rows left at its start. since_id is the newest message id then: where a client that got
-- no event resumes. rooms is a JSON array of room names.
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
