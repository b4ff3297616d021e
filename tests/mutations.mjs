// mutations.mjs: the limits and refusals that tests/mutate.sh removes one at a time. Each entry
// names the check (id), the file, an exact piece of its text (`from`, found exactly once) and
// what replaces it (`to`: the check removed or made ineffective), the suites that must notice
// (`tests`: { check: [make check TESTS] } or { node: [files under tests/], grep: name pattern }),
// and why the check exists. A new limit or refusal gets an entry here with its test.

const PLATFORM = (grep) => ({ node: ["platform/"], grep });

export const MUTATIONS = [
  // ---- the platform's payload checks (rtd/validate.c) --------------------------------------
  {
    id: "sender-length",
    file: "rtd/validate.c",
    from: "utf8_chars(out->sender, out->sender_len) > VALIDATE_MAX_SENDER_CHARS",
    to: "false",
    why: "sender at most 100 characters",
    tests: [PLATFORM("sender")],
  },
  {
    id: "text-length",
    file: "rtd/validate.c",
    from: "if (out->text_len > max_text_bytes)",
    to: "if (false)",
    why: "--max-message-bytes",
    tests: [PLATFORM("max-message-bytes|too long|text_too_long")],
  },
  {
    id: "text-utf8",
    file: "rtd/validate.c",
    from: "if (get_string(arg, \"text\", &out->text, &out->text_len) <= 0 || out->text_len == 0 ||\n        !valid_text(out->text, out->text_len))",
    to: "if (get_string(arg, \"text\", &out->text, &out->text_len) <= 0 || out->text_len == 0)",
    why: "text is valid UTF-8 without NUL",
    tests: [{ node: ["platform/events.test.mjs"], grep: "invalid send-message" }],
  },
  {
    id: "room-length",
    file: "rtd/validate.c",
    from: "return len > 0 && len <= VALIDATE_MAX_ROOM_BYTES && valid_text(room, len);",
    to: "return len > 0 && valid_text(room, len);",
    why: "rooms of 1 to 128 bytes",
    tests: [PLATFORM("room")],
  },
  {
    id: "history-limit",
    file: "rtd/validate.c",
    from: "if (limit < 1 || limit > VALIDATE_HISTORY_MAX)",
    to: "if (limit < 1)",
    why: "get-messages limit 1 to 200",
    tests: [PLATFORM("get-messages|history|limit")],
  },
  // ---- the platform's per-socket limits (rtd/platform.c) -----------------------------------
  {
    id: "rate-limit",
    file: "rtd/platform.c",
    from: "    if (c->tokens >= 1) {\n        c->tokens -= 1;",
    to: "    if (true) {\n        c->tokens -= 1;",
    why: "--rate-limit and --rate-burst",
    tests: [{ node: ["platform/limits.test.mjs"], grep: "rate" }],
  },
  {
    id: "flood-disconnect",
    file: "rtd/platform.c",
    from: "if (++c->violations > p->cfg.rate_burst) {",
    to: "if (++c->violations > 1000000) {",
    why: "a client flooding past a burst of refusals is disconnected",
    tests: [{ node: ["platform/limits.test.mjs"], grep: "flooding" }],
  },
  {
    id: "max-rooms",
    file: "rtd/platform.c",
    from: "sio_socket_room_count(s) >= p->cfg.max_rooms",
    to: "false",
    why: "--max-rooms",
    tests: [PLATFORM("max-rooms|too_many_rooms|too many rooms")],
  },
  {
    id: "shutting-down",
    file: "rtd/platform.c",
    from: "    if (!c->p->quiesced)\n        return false;",
    to: "    return false;",
    why: "sends after SIGTERM are refused (shutting_down)",
    tests: [{ node: ["platform/lifecycle.test.mjs"], grep: "commit waits" }],
  },
  // ---- the store (rtd/store/) --------------------------------------------------------------
  {
    id: "store-queue-items",
    file: "rtd/store/store.c",
    from: "if (st->wstop || st->depth >= st->max_queue ||",
    to: "if (st->wstop ||",
    why: "at most 100 000 writes wait for the database",
    tests: [{ check: ["tests/unit/test_store"] }],
  },
  {
    id: "store-queue-bytes",
    file: "rtd/store/store.c",
    from: "        it->size > st->max_queue_bytes - st->depth_bytes) {",
    to: "        false) {",
    why: "--store-queue-bytes",
    tests: [{ check: ["tests/unit/test_store"] }, { node: ["platform/limits.test.mjs"], grep: "store-queue-bytes" }],
  },
  {
    id: "wal-checkpointer-reads",
    file: "rtd/store/sqlite.c",
    from: "exec_sql(b->cdb, \"SELECT count(*) FROM sqlite_schema\", err) < 0)",
    to: "false)",
    why: "the WAL is bounded: the checkpointer's connection must have opened the WAL",
    tests: [{ check: ["tests/unit/test_store"] }],
  },
  {
    id: "wal-restart-pause",
    file: "rtd/store/checkpoint.c",
    from: "        if (rc != SQLITE_OK || log < RESTART_PAGES ||",
    to: "        if (true || rc != SQLITE_OK || log < RESTART_PAGES ||",
    why: "the WAL is bounded under steady load: the writer pauses for a restart",
    tests: [{ check: ["tests/unit/test_store"] }],
  },
  // ---- output bounds (rtd/engine/) -------------------------------------------------------
  {
    id: "ws-max-buffered",
    file: "rtd/engine/wsconn.c",
    from: "if (bounded && c->out_bytes > c->srv->cfg.max_buffered) {",
    to: "if (false) {",
    why: "--max-buffered for a WebSocket client that stops reading",
    tests: [{ node: ["platform/bounds.test.mjs"], grep: "stops reading" }],
  },
  {
    id: "polling-max-buffered",
    file: "rtd/engine/eio_polling.c",
    from: "if (pktq_push(&s->queue, p, s->srv->cfg.max_buffered) < 0)",
    to: "if (pktq_push(&s->queue, p, 0) < 0)",
    why: "--max-buffered for a long-polling client that stops polling",
    tests: [{ node: ["platform/bounds.test.mjs"], grep: "stops polling" }],
  },
];
