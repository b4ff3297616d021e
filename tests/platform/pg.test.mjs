// rtd on PostgreSQL (a real PostgreSQL 15 started by tests/pg/lib.sh for this file): several
// nodes on one database (unique ids, shared history, one daemon_status row each, per-node
// closing of the rows a crash left, migrations applied once when nodes start together),
// PostgreSQL restarted in the middle of a flood (no acknowledged message lost, sends refused
// while it is down, /health 503 and back, counters equal to the rows) and --backup's refusal.
// Skipped, saying so, only when the PostgreSQL binaries are absent.

import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  emitAck,
  httpGet,
  pgCreateDb,
  pgHalt,
  pgResume,
  pgServerSync,
  query,
  rtdTest,
  runRtd,
  sleep,
  startRtd,
  waitConnectionRow,
  waitUntil,
} from "./lib.mjs";

let skip = false;
try {
  if (!pgServerSync()) skip = "SKIP: PostgreSQL (initdb, pg_ctl, psql) is not installed; scripts/install-deps.sh --test installs it";
} catch (e) {
  skip = false; // a broken install is a failure, not a skip: the first test reports it
}
if (skip) process.stdout.write(`# ${skip}\n`);

const FLOOD_ARGS = ["--rate-limit", "0", "--presence", "off"];

// Keeps `inFlight` unacknowledged messages per socket until stop(); acked: id -> text.
function flood(sockets, { inFlight = 8, tag = "" } = {}) {
  const acked = new Map();
  const refused = [];
  let sent = 0;
  let stopped = false;
  const pending = new Set();
  sockets.forEach((s, c) => {
    const pump = () => {
      if (stopped || !s.connected) return;
      const text = `${tag}client ${c} message ${sent++}`;
      const p = new Promise((resolve) => {
        s.timeout(15000).emit("send-message", { sender: `c${c}`, text }, (err, ack) => {
          if (!err && ack && ack.ok === true) acked.set(ack.id, text);
          else if (!err && ack) refused.push(ack);
          resolve();
          pump();
        });
      });
      pending.add(p);
      p.then(() => pending.delete(p));
    };
    for (let i = 0; i < inFlight; i++) pump();
  });
  return {
    acked,
    refused,
    get sent() {
      return sent;
    },
    async stop() {
      stopped = true;
      await Promise.all([...pending]);
    },
  };
}

async function countersMatch(db) {
  const [t] = await query(
    db,
    "SELECT (SELECT value FROM totals WHERE name = 'messages_total') AS counted, " +
      "(SELECT count(*) FROM messages) AS rows, " +
      "(SELECT coalesce(sum(count), 0) FROM message_counts) AS hourly",
  );
  assert.equal(Number(t.counted), Number(t.rows), `totals.messages_total matches the rows ${JSON.stringify(t)}`);
  assert.equal(Number(t.hourly), Number(t.rows), `message_counts matches the rows ${JSON.stringify(t)}`);
  return Number(t.rows);
}

describe("PostgreSQL: several nodes on one database", { skip }, () => {
  rtdTest("two nodes started at once: one migration, unique ids, shared history, a status row each", { start: false, timeout: 60000 }, async (ctx) => {
    const db = pgCreateDb();
    const [a, b] = await Promise.all([
      startRtd({ db, args: [...FLOOD_ARGS, "--node-id", "node-a"] }),
      startRtd({ db, args: [...FLOOD_ARGS, "--node-id", "node-b"] }),
    ]);
    ctx.extra.push(a, b);
    assert.deepEqual(
      (await query(db, "SELECT version FROM schema_migrations ORDER BY version")).map((r) => r.version),
      [1, 2, 3, 4],
      "each migration applied once",
    );
    const sa = [await ctx.client({}, a), await ctx.client({ kind: "polling" }, a)];
    const sb = [await ctx.client({}, b), await ctx.client({ kind: "polling" }, b)];
    const fa = flood(sa, { tag: "a " });
    const fb = flood(sb, { tag: "b " });
    await waitUntil(() => fa.acked.size >= 300 && fb.acked.size >= 300, { timeout: 30000, what: "300 acks on each node" });
    await fa.stop();
    await fb.stop();
    const ids = [...fa.acked.keys(), ...fb.acked.keys()];
    assert.equal(new Set(ids).size, ids.length, "message ids are unique across the nodes");

    // history is the cluster's: node b pages through what node a stored too
    const page = await emitAck(sb[0], "get-messages", { limit: 200 });
    const [maxRow] = await query(db, "SELECT max(id) AS id FROM messages WHERE room IS NULL");
    assert.equal(page[0].id, Number(maxRow.id), "newest first, from either node");
    const seen = new Set();
    let before;
    for (;;) {
      const p = await emitAck(sb[1], "get-messages", before ? { limit: 200, before } : { limit: 200 });
      if (!p.length) break;
      for (const m of p) seen.add(m.id);
      before = p[p.length - 1].id;
    }
    for (const [id, text] of fa.acked) assert.ok(seen.has(id), `node b's history has node a's message ${id} ${text}`);

    const rows = await query(db, "SELECT id, message_text FROM messages");
    const stored = new Map(rows.map((r) => [Number(r.id), r.message_text]));
    for (const [id, text] of [...fa.acked, ...fb.acked]) assert.equal(stored.get(id), text, `message ${id}`);
    await countersMatch(db);

    const st = await query(db, "SELECT node_id, pid, connections, stopped_at FROM daemon_status ORDER BY node_id");
    assert.deepEqual(st.map((r) => [r.node_id, r.pid, r.stopped_at]), [
      ["node-a", a.proc.pid, null],
      ["node-b", b.proc.pid, null],
    ]);
    const conns = await query(db, "SELECT node_id, count(*) AS n FROM connections GROUP BY node_id ORDER BY node_id");
    assert.deepEqual(conns.map((r) => [r.node_id, Number(r.n)]), [
      ["node-a", 2],
      ["node-b", 2],
    ]);
  });

  rtdTest("after SIGKILL a node's restart closes only its own rows", { start: false, timeout: 40000 }, async (ctx) => {
    const db = pgCreateDb();
    const a = await ctx.startExtra({ db, args: ["--node-id", "node-a"] });
    const b = await ctx.startExtra({ db, args: ["--node-id", "node-b"] });
    const ca = await ctx.client({}, a);
    const cb = await ctx.client({}, b);
    await waitConnectionRow(db, ca.id, (r) => r.status === "active");
    await waitConnectionRow(db, cb.id, (r) => r.status === "active");
    const [ida, idb] = [ca.id, cb.id];
    a.signal("SIGKILL");
    assert.equal((await a.waitExit(5000)).signal, "SIGKILL");
    ctx.extra.splice(ctx.extra.indexOf(a), 1);
    ca.disconnect();
    const a2 = await ctx.startExtra({ db, dir: a.dir, args: ["--node-id", "node-a"] });
    void a2;
    const rows = await query(db, "SELECT socket_id, node_id, status, disconnected_at FROM connections ORDER BY node_id");
    assert.deepEqual(rows.map((r) => [r.socket_id, r.node_id, r.status]), [
      [ida, "node-a", "disconnected"],
      [idb, "node-b", "active"],
    ]);
    assert.notEqual(rows[0].disconnected_at, null);
    const [{ n }] = await query(db, "SELECT count(*) AS n FROM daemon_status");
    assert.equal(Number(n), 2, "the restarted node reuses its daemon_status row");
  });
});

describe("PostgreSQL: restarted during a flood", { skip }, () => {
  rtdTest("no acknowledged message is lost, sends are refused while it is down, /health 503 and back", { start: false, timeout: 90000 }, async (ctx) => {
    const db = pgCreateDb();
    const r = await ctx.startExtra({ db, args: FLOOD_ARGS });
    const sockets = [];
    for (const kind of ["websocket", "websocket", "polling", "upgrade"]) sockets.push(await ctx.client({ kind }, r));
    const f = flood(sockets);
    await waitUntil(() => f.acked.size >= 300, { timeout: 20000, what: "300 acks before the restart" });

    await pgHalt();
    const ackedAtHalt = f.acked.size;
    await waitUntil(() => f.refused.length > 0, { timeout: 20000, what: "a send refused while PostgreSQL is down" });
    assert.ok(f.refused.every((a) => a.code === "storage_failed"), JSON.stringify(f.refused.slice(0, 3)));
    await waitUntil(async () => (await httpGet(r, "/health")).status === 503, { timeout: 10000, what: "/health 503" });
    const down = JSON.parse((await httpGet(r, "/health")).text);
    assert.equal(down.database.ok, false);
    await sleep(300);

    await pgResume();
    await waitUntil(async () => (await httpGet(r, "/health")).status === 200, { timeout: 20000, what: "/health 200 again" });
    const afterResume = f.acked.size;
    await waitUntil(() => f.acked.size >= afterResume + 200, { timeout: 20000, what: "acks after the restart" });
    await f.stop();
    assert.ok(ackedAtHalt > 0 && f.refused.length > 0);

    const rows = await query(db, "SELECT id, message_text FROM messages");
    const stored = new Map(rows.map((x) => [Number(x.id), x.message_text]));
    let missing = 0;
    for (const [id, text] of f.acked) if (stored.get(id) !== text) missing++;
    assert.equal(missing, 0, `${missing} of ${f.acked.size} acknowledged messages are missing`);
    await countersMatch(db);
    assert.ok(r.logLines(/PostgreSQL connection restored/).length >= 1, r.stderr.slice(-2000));
  });
});

describe("PostgreSQL: --backup", { skip }, () => {
  rtdTest("--backup with a PostgreSQL --db says to use pg_dump", { start: false }, async () => {
    const db = pgCreateDb();
    const res = await runRtd(["--db", db, "--backup", "/tmp/never-written.db"]);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /pg_dump/);
  });
});
