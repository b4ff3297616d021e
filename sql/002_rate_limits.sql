-- 002_rate_limits.sql: admin-fcgi's per-client counters for its public forms (the landing
-- page's subscription form): requests per key within a fixed window that starts with the
-- key's first request. Keys are "subscribe:ADDR". Rows whose window is over are deleted by
-- admin-fcgi as it counts.
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  hits INTEGER NOT NULL DEFAULT 0,
  window_start DATETIME NOT NULL
) WITHOUT ROWID;
