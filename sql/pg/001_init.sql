-- pg/001_init.sql: the platform's schema on PostgreSQL, version 1 (sql/001_init.sql's twin).
-- Applied once by common/migrate_pg.c, inside a transaction, under an advisory lock.
-- Same tables and column names as the SQLite schema. Timestamps stay UTC text
-- 'YYYY-MM-DD HH:MM:SS.SSS', as in SQLite: sortable, cast with ::timestamp where arithmetic
-- needs it, and the same strings for admin-fcgi and the tests whichever backend runs.
-- Several rtd nodes share one database: connections and daemon_status carry the node.

CREATE TABLE connections (
  id BIGSERIAL PRIMARY KEY,
  socket_id TEXT UNIQUE NOT NULL,
  platform TEXT DEFAULT 'unknown',
  user_id TEXT,
  connected_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'),
  disconnected_at TEXT,
  duration_ms BIGINT,
  status TEXT DEFAULT 'active',
  created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'),
  app_version TEXT,
  transport TEXT,
  remote_addr TEXT,
  user_agent TEXT,
  last_seen_at TEXT,
  node_id TEXT NOT NULL DEFAULT 'local'
);
CREATE INDEX idx_connections_created_at ON connections(created_at);
CREATE INDEX idx_connections_active ON connections(id) WHERE status = 'active';
-- a node's start closes its own rows only
CREATE INDEX idx_connections_node_active ON connections(node_id) WHERE status = 'active';
CREATE INDEX idx_connections_platform_id ON connections(platform, id);
CREATE INDEX idx_connections_user_id ON connections(user_id, id);

-- ids come from the sequence: unique across every node writing here.
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  socket_id TEXT NOT NULL,
  sender TEXT NOT NULL,
  message_text TEXT NOT NULL,
  platform TEXT DEFAULT 'web',
  created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'),
  room TEXT
);
CREATE INDEX idx_messages_socket_id ON messages(socket_id);
CREATE INDEX idx_messages_created_at ON messages(created_at, id);
CREATE INDEX idx_messages_room_id ON messages(room, id);
CREATE INDEX idx_messages_platform_id ON messages(platform, id);
CREATE INDEX idx_messages_sender_id ON messages(sender, id);

-- Counters kept by every node's writer in the same transaction as its rows (upserts that add,
-- so concurrent writers never lose an update).
CREATE TABLE message_counts (
  hour TEXT NOT NULL,
  platform TEXT NOT NULL,
  count BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, platform)
);

CREATE TABLE connection_counts (
  hour TEXT NOT NULL,
  platform TEXT NOT NULL,
  count BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, platform)
);

CREATE TABLE totals (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL DEFAULT 0
);
INSERT INTO totals(name, value) VALUES
  ('connections_total', 0), ('messages_total', 0), ('sessions_closed', 0),
  ('session_ms_total', 0), ('session_ms_max', 0);

-- One row per node (node_id: --node-id, by default host:port), rewritten by its heartbeat.
CREATE TABLE daemon_status (
  id BIGSERIAL PRIMARY KEY,
  node_id TEXT NOT NULL UNIQUE,
  pid INTEGER,
  version TEXT,
  started_at TEXT,
  updated_at TEXT,
  stopped_at TEXT,
  connections BIGINT NOT NULL DEFAULT 0,
  messages_in BIGINT NOT NULL DEFAULT 0,
  messages_out BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE subscribers (
  id BIGSERIAL PRIMARY KEY,
  email TEXT NOT NULL,
  created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
);
CREATE UNIQUE INDEX idx_subscribers_email ON subscribers(lower(email));

CREATE TABLE admin_users (
  id BIGSERIAL PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
  updated_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
);

CREATE TABLE admin_sessions (
  token_hash TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
  expires_at TEXT NOT NULL
);
CREATE INDEX idx_admin_sessions_expires ON admin_sessions(expires_at);

CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  failures INTEGER NOT NULL DEFAULT 0,
  window_start TEXT NOT NULL,
  locked_until TEXT
);
