-- 004_laravel_status.sql: rtd's heartbeat also carries its Laravel mode's figures
-- (--laravel-config), for admin-fcgi's dashboard and connections page: a JSON object
-- {"broadcasts", "deliveries", "channels": {"<name>": <sockets>, ...}} of the node, NULL
-- without Laravel mode. Rewritten with every heartbeat.
ALTER TABLE daemon_status ADD COLUMN laravel TEXT;
