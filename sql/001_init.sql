-- 001_init.sql: the platform's schema, version 1.
-- Applied once by common/migrate.c when PRAGMA user_version < 1, inside a transaction.
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' (sortable, understood by SQLite's
-- date functions and by the guide's queries such as created_at > datetime('now','-1 hour')).

-- The guide's connections table, with its column names; the extra columns follow them.
CREATE TABLE connections (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  socket_id TEXT UNIQUE NOT NULL,
  platform TEXT DEFAULT 'unknown',
  user_id TEXT,
  connected_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  disconnected_at DATETIME,
  duration_ms INTEGER,
  status TEXT DEFAULT 'active',
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  app_version TEXT,
  transport TEXT,
  remote_addr TEXT,
  user_agent TEXT,
  last_seen_at DATETIME
);
CREATE INDEX idx_connections_socket_id ON connections(socket_id);
CREATE INDEX idx_connections_created_at ON connections(created_at);
-- "who is connected now" without scanning the log.
CREATE INDEX idx_connections_active ON connections(id) WHERE status = 'active';
CREATE INDEX idx_connections_platform_id ON connections(platform, id);
CREATE INDEX idx_connections_user_id ON connections(user_id, id);

-- The guide's messages table, plus the room a message was sent to (NULL: everyone).
CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  socket_id TEXT NOT NULL,
  sender TEXT NOT NULL,
  message_text TEXT NOT NULL,
  platform TEXT DEFAULT 'web',
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  room TEXT,
  FOREIGN KEY (socket_id) REFERENCES connections(socket_id)
);
CREATE INDEX idx_messages_socket_id ON messages(socket_id);
CREATE INDEX idx_messages_created_at ON messages(created_at);
-- Keyset pagination per room, platform and sender: WHERE x = ? AND id < ? ORDER BY id DESC.
CREATE INDEX idx_messages_room_id ON messages(room, id);
CREATE INDEX idx_messages_platform_id ON messages(platform, id);
CREATE INDEX idx_messages_sender_id ON messages(sender, id);

-- Counters kept by rtd's writer in the same transaction as the rows they count, so the
-- dashboard never scans messages or connections. hour is 'YYYY-MM-DD HH:00:00' UTC.
CREATE TABLE message_counts (
  hour TEXT NOT NULL,
  platform TEXT NOT NULL,
  count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, platform)
) WITHOUT ROWID;

CREATE TABLE connection_counts (
  hour TEXT NOT NULL,
  platform TEXT NOT NULL,
  count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, platform)
) WITHOUT ROWID;

-- Whole-history totals; one row per name.
--   connections_total, messages_total, sessions_closed, session_ms_total, session_ms_max
CREATE TABLE totals (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO totals(name, value) VALUES
  ('connections_total', 0), ('messages_total', 0), ('sessions_closed', 0),
  ('session_ms_total', 0), ('session_ms_max', 0);

-- rtd's heartbeat: one row, rewritten every few seconds while it runs, read by the dashboard.
CREATE TABLE daemon_status (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER,
  version TEXT,
  started_at DATETIME,
  updated_at DATETIME,
  stopped_at DATETIME,
  connections INTEGER NOT NULL DEFAULT 0,
  messages_in INTEGER NOT NULL DEFAULT 0,
  messages_out INTEGER NOT NULL DEFAULT 0
);

-- The landing page's subscription form.
CREATE TABLE subscribers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);

-- The admin suite's users and sessions. Passwords are yescrypt hashes; session tokens are
-- stored as SHA-256 hex digests, never in clear.
CREATE TABLE admin_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE admin_sessions (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  expires_at DATETIME NOT NULL
) WITHOUT ROWID;
CREATE INDEX idx_admin_sessions_expires ON admin_sessions(expires_at);

-- Failed logins per client address and per user name, for throttling.
CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  failures INTEGER NOT NULL DEFAULT 0,
  window_start DATETIME NOT NULL,
  locked_until DATETIME
) WITHOUT ROWID;
