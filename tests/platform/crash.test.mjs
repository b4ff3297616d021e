// Crash safety: clients flood send-message with acks from every transport, rtd is killed with
// SIGKILL in the middle, and a restart on the same database must show every acknowledged
// message with its text, PRAGMA integrity_check "ok", no connection row left 'active', and
// counters that still match the rows. Run with --sync normal and --sync full.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { emitAck, isPg, query, rtdTest, sleep, TEST_PG, waitUntil } from "./lib.mjs";

const CLIENTS = [
  ["websocket", 4],
  ["polling", 2],
  ["upgrade", 2],
];
const IN_FLIGHT = 8; // unacknowledged messages per client at any time

describe("crash safety", () => {
  for (const sync of ["normal", "full"]) {
    rtdTest(
      `SIGKILL during a flood loses no acknowledged message (--sync ${sync})`,
      { start: false, timeout: 40000 },
      async (ctx) => {
        const args = ["--sync", sync, "--rate-limit", "0", "--presence", "off"];
        const first = await ctx.startExtra({ args });
        const acked = new Map(); // id -> text
        let sent = 0;
        let killed = false;
        const sockets = [];
        for (const [kind, n] of CLIENTS)
          for (let i = 0; i < n; i++) sockets.push(await ctx.client({ kind }, first));

        // Each client keeps IN_FLIGHT messages outstanding until rtd dies.
        const pumps = sockets.map((s, c) => {
          const pump = () => {
            if (killed || !s.connected) return;
            const text = `client ${c} message ${sent++} ${"é".repeat(c)}`;
            s.timeout(10000).emit("send-message", { sender: `c${c}`, text }, (err, ack) => {
              if (!err && ack && ack.ok === true) acked.set(ack.id, text);
              pump();
            });
          };
          for (let i = 0; i < IN_FLIGHT; i++) pump();
        });
        void pumps;

        // Let the flood reach a few hundred committed messages, then pull the plug.
        await waitUntil(() => acked.size >= 400, { timeout: 20000, what: "400 acknowledged messages" });
        first.signal("SIGKILL");
        killed = true;
        // Every client keeps IN_FLIGHT messages outstanding: at the kill, some were not acked.
        const inFlightAtKill = sent - acked.size;
        const exit = await first.waitExit(5000);
        assert.equal(exit.signal, "SIGKILL");
        ctx.closeClients();
        await sleep(50);
        const ackedAtKill = new Map(acked); // acks that raced the kill are not promises we rely on

        // The restart closes what the crash left open.
        const second = await ctx.startExtra({ args, dir: first.dir, db: first.db });
        if (!isPg(second.db)) {
          const integrity = await query(second.db, "PRAGMA integrity_check");
          assert.deepEqual(integrity, [{ integrity_check: "ok" }]);
        }

        const rows = await query(second.db, "SELECT id, message_text FROM messages");
        const stored = new Map(rows.map((r) => [r.id, r.message_text]));
        let missing = 0;
        for (const [id, text] of ackedAtKill) {
          if (stored.get(id) !== text) missing++;
        }
        assert.equal(missing, 0, `${missing} of ${ackedAtKill.size} acknowledged messages are missing or changed`);
        assert.ok(stored.size >= ackedAtKill.size);

        const active = await query(second.db, "SELECT COUNT(*) AS n FROM connections WHERE status = 'active'");
        assert.equal(active[0].n, 0, "connection rows left active after the restart");
        const open = await query(second.db, "SELECT COUNT(*) AS n FROM connections WHERE disconnected_at IS NULL");
        assert.equal(open[0].n, 0);

        const totals = await query(
          second.db,
          "SELECT (SELECT value FROM totals WHERE name = 'messages_total') AS counted, " +
            "(SELECT COUNT(*) FROM messages) AS rows, " +
            "(SELECT COALESCE(SUM(count), 0) FROM message_counts) AS hourly",
        );
        assert.equal(totals[0].counted, totals[0].rows, "totals.messages_total matches the rows");
        assert.equal(totals[0].hourly, totals[0].rows, "message_counts matches the rows");
        assert.ok(inFlightAtKill > 0, "the kill came while messages were still in flight");
      },
    );
  }
});

describe("retention", () => {
  // SQLite's SQL seeds the old rows; on PostgreSQL, test_store_pg's test_retention covers it.
  rtdTest("--retention-days deletes older messages in the background and keeps the counters right", { start: false, skip: TEST_PG && "SQLite SQL (test_store_pg covers PostgreSQL)" }, async (ctx) => {
    // A database with 1 500 messages from ten days ago and 20 from now, counters consistent.
    const first = await ctx.startExtra({ args: ["--retention-days", "0"] });
    await first.stop();
    const old = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-10 days')";
    const now = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
    const sql =
      "BEGIN;" +
      "INSERT INTO connections(socket_id, platform, connected_at, status) VALUES ('s', 'web', " + old + ", 'disconnected');" +
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) " +
      "INSERT INTO messages(socket_id, sender, message_text, platform, created_at) " +
      "SELECT 's', 'old', 'old ' || i, 'web', " + old + " FROM n;" +
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) " +
      "INSERT INTO messages(socket_id, sender, message_text, platform, created_at) " +
      "SELECT 's', 'new', 'new ' || i, 'flutter', " + now + " FROM n;" +
      "INSERT INTO message_counts(hour, platform, count) " +
      "SELECT substr(created_at, 1, 13) || ':00:00', platform, COUNT(*) FROM messages GROUP BY 1, 2;" +
      "UPDATE totals SET value = (SELECT COUNT(*) FROM messages) WHERE name = 'messages_total';" +
      "COMMIT;";
    await query(first.db, sql);
    // --retention-days 0 keeps everything: the writer's first idle turn (a retention step when
    // retention is on) comes before it commits the message sent here.
    const keep = await ctx.startExtra({ args: ["--retention-days", "0"], dir: first.dir, db: first.db });
    const s = await ctx.client({ kind: "websocket" }, keep);
    assert.equal((await emitAck(s, "send-message", { sender: "new", text: "kept" })).ok, true);
    assert.equal((await query(keep.db, "SELECT COUNT(*) AS n FROM messages WHERE sender = 'old'"))[0].n, 1500, "--retention-days 0 deleted nothing");
    ctx.closeClients();
    await keep.stop();
    const second = await ctx.startExtra({ args: ["--retention-days", "3"], dir: first.dir, db: first.db });
    await waitUntil(async () => (await query(second.db, "SELECT COUNT(*) AS n FROM messages"))[0].n === 21, {
      timeout: 10000,
      what: "the old messages to be deleted",
    });
    const left = await query(second.db, "SELECT DISTINCT sender FROM messages");
    assert.deepEqual(left, [{ sender: "new" }]);
    const c = await query(
      second.db,
      "SELECT (SELECT value FROM totals WHERE name = 'messages_total') AS total, " +
        "(SELECT COALESCE(SUM(count), 0) FROM message_counts) AS hourly, " +
        "(SELECT COUNT(*) FROM message_counts WHERE platform = 'web') AS web_hours",
    );
    assert.deepEqual(c, [{ total: 21, hourly: 21, web_hours: 0 }]);
  });
});
