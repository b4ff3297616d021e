-- tools/admin-bench-pg.sql: 1 000 000 messages, 20 000 connections (200 open), two nodes'
-- daemon_status rows and every counter, in a PostgreSQL database admin-fcgi has migrated
-- (docs/BENCHMARKS.md, "admin-fcgi on PostgreSQL"). Ids grow with created_at, as rtd writes them.
BEGIN;
INSERT INTO connections(socket_id, platform, user_id, connected_at, disconnected_at, duration_ms,
    status, created_at, transport, remote_addr, user_agent, node_id)
SELECT 'sock-' || i, (ARRAY['web','flutter','laravel','ios','android'])[i % 5 + 1], 'user-' || (i % 1000),
    to_char(t, 'YYYY-MM-DD HH24:MI:SS.MS'), CASE WHEN i > 200 THEN to_char(t + interval '5 minutes', 'YYYY-MM-DD HH24:MI:SS.MS') END,
    CASE WHEN i > 200 THEN 300000 END, CASE WHEN i > 200 THEN 'disconnected' ELSE 'active' END,
    to_char(t, 'YYYY-MM-DD HH24:MI:SS.MS'), 'websocket', '10.0.' || (i % 250) || '.1', 'bench agent',
    'node-' || (i % 2)
FROM (SELECT i, now() AT TIME ZONE 'UTC' - ((20000 - i) * interval '2 minutes') AS t
      FROM generate_series(1, 20000) i) s;
INSERT INTO messages(socket_id, sender, message_text, platform, created_at, room)
SELECT 'sock-' || (i % 20000 + 1), 'user-' || (i % 1000),
    CASE WHEN i % 50 = 0 THEN 'invoice ' || i || ' is ready' ELSE 'message number ' || i || ' with some ordinary text' END,
    (ARRAY['web','flutter','laravel','ios','android'])[i % 5 + 1],
    to_char(now() AT TIME ZONE 'UTC' - ((1000000 - i) * interval '2.5 seconds'), 'YYYY-MM-DD HH24:MI:SS.MS'),
    CASE WHEN i % 3 = 0 THEN 'room-' || (i % 50) END
FROM generate_series(1, 1000000) i;
UPDATE totals SET value = 1000000 WHERE name = 'messages_total';
UPDATE totals SET value = 20000 WHERE name = 'connections_total';
INSERT INTO message_counts(hour, platform, count)
SELECT substr(created_at, 1, 13) || ':00:00', platform, count(*) FROM messages GROUP BY 1, 2;
INSERT INTO connection_counts(hour, platform, count)
SELECT substr(created_at, 1, 13) || ':00:00', platform, count(*) FROM connections GROUP BY 1, 2;
INSERT INTO daemon_status(node_id, pid, version, started_at, updated_at, connections, messages_in, messages_out)
SELECT 'node-' || n, 1000 + n, 'bench', to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD HH24:MI:SS.MS'),
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), 100, 500000, 500000
FROM generate_series(0, 1) n;
COMMIT;
VACUUM ANALYZE;
