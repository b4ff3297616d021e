// Connection-state recovery across nodes: two rtd nodes on one real PostgreSQL (tests/pg/lib.sh)
// and one Redis (Debian's redis-server), with the real socket.io-client 4.8. A session is a row
// of the shared recovery_sessions; a node that does not have the pid live claims it there
// (DELETE ... RETURNING, one winner) and replays from the shared message log; a socket the old
// node still has for it is closed through the cluster. Skipped, saying so, only when the
// PostgreSQL binaries are absent.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { emitAck, eventually, makeClient, connectSocket, metrics, pgCreateDb, pgServerSync, query, rtdTest, sleep, startRtd, within } from "./lib.mjs";
import { startRedis, waitRedisUp } from "./redis.mjs";

let skip = false;
try {
  if (!pgServerSync()) skip = "SKIP: PostgreSQL (initdb, pg_ctl, psql) is not installed; scripts/install-deps.sh --test installs it";
} catch {
  skip = false; // a broken install is a failure, not a skip
}
if (skip) process.stdout.write(`# ${skip}\n`);

const SLOW = process.env.RTD_VALGRIND ? 4 : 1;
const T = 60000 * SLOW;

// Nodes A (ctx.rtd) and B (ctx.extra[0]) on one new database and one Redis.
async function twoNodes(ctx) {
  const redis = await startRedis();
  ctx.cleanups = [() => redis.stop()];
  const db = pgCreateDb();
  const args = ["--redis", redis.url, "--recovery-window", "20000", "--presence", "off"];
  ctx.rtd = await startRtd({ db, args, readyTimeout: 10000 * SLOW });
  const b = await ctx.startExtra({ db, args, readyTimeout: 10000 * SLOW });
  await waitRedisUp(ctx.rtd);
  await waitRedisUp(b);
  return { a: ctx.rtd, b };
}

function clusterTest(name, fn) {
  rtdTest(name, { start: false, timeout: 2 * T, skip }, async (ctx) => {
    try {
      await fn(ctx);
    } finally {
      ctx.closeClients();
      for (const f of ctx.cleanups ?? []) await f().catch((e) => process.stderr.write(`(cleanup: ${e.message})\n`));
    }
  });
}

// Reconnects s to server; resolves to {recovered, beforeConnect (receive-message args)}.
async function backOn(s, server) {
  s.io.uri = server.url; // the Manager opens its next engine on this URL
  const before = s.got.messages.items.length;
  const connected = new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s.got.messages.items.length - before));
    s.once("connect_error", reject);
  });
  s.connect();
  const n = await within(connected, 10000 * SLOW, "the reconnection");
  return { recovered: s.recovered, beforeConnect: s.got.messages.items.slice(before, before + n) };
}

const texts = (items) => items.map(([m]) => m.text);

describe("connection-state recovery across nodes (PostgreSQL + Redis)", () => {
  clusterTest("a client of node A, A killed: it comes back on node B, recovered, with what B sent meanwhile, once, in order", async (ctx) => {
    const { a: nodeA, b: nodeB } = await twoNodes(ctx);
    const a = await ctx.client({}, nodeA);
    await emitAck(a, "identify", { userId: "u1", platform: "flutter" });
    await emitAck(a, "join", { room: "room1" });
    const b = await ctx.client({}, nodeB);
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next(); // through Redis; its offset is the shared log's id
    const id = a.id, pid = a._pid;
    await sleep(300); // the session row is committed
    const gone = new Promise((resolve) => a.once("disconnect", resolve));
    nodeA.signal("SIGKILL");
    await nodeA.waitExit();
    await within(gone, 5000, "the client to notice");
    await emitAck(b, "send-message", { sender: "b", text: "m1" });
    await emitAck(b, "send-message", { sender: "b", text: "m2", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "other", room: "room2" });
    await emitAck(b, "send-message", { sender: "b", text: "m3" });
    const r = await backOn(a, nodeB);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.equal(a._pid, pid);
    assert.deepEqual(texts(r.beforeConnect), ["m1", "m2", "m3"]);
    // its room and identity came along to B
    await emitAck(b, "send-message", { sender: "b", text: "live", room: "room1" });
    await a.got.messages.waitCount(5);
    await emitAck(a, "send-message", { sender: "a", text: "mine" });
    const got = await b.got.messages.waitCount(4); // seen, m1, m3, mine
    assert.equal(got[3][0].text, "mine");
    assert.equal(got[3][0].platform, "flutter");
    await sleep(200);
    assert.deepEqual(texts(a.got.messages.items), ["seen", "m1", "m2", "m3", "live", "mine"]);
    const m = (await metrics(nodeB)).samples;
    assert.equal(m.get("rtd_recovery_claimed_total"), 1);
    assert.equal(m.get("rtd_recoveries_succeeded_total"), 1);
    assert.equal(m.get("rtd_recovery_replayed_total"), 3);
    // the claim took A's row for good: after a client disconnect (not recoverable) the pid
    // gives a fresh session, on either node
    const [, lastOffset] = a.got.messages.items[a.got.messages.items.length - 1];
    a.disconnect();
    await sleep(300);
    const again = ctx.track(makeClient(nodeB, { auth: { pid, offset: lastOffset } }));
    await connectSocket(again, { ms: 10000 * SLOW });
    assert.notEqual(again.id, id);
    assert.notEqual(again._pid, pid);
  });

  // a row still "connected" of a node that died: left at the node's last heartbeat
  clusterTest("a socket of a node that died longer than the window ago is not recovered", async (ctx) => {
    const { a: nodeA, b: nodeB } = await twoNodes(ctx);
    const a = await ctx.client({}, nodeA);
    const b = await ctx.client({}, nodeB);
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next();
    const id = a.id;
    await sleep(300);
    const gone = new Promise((resolve) => a.once("disconnect", resolve));
    nodeA.signal("SIGKILL");
    await nodeA.waitExit();
    await within(gone, 5000, "the client to notice");
    // node A's last heartbeat, an hour ago (as if it had died then)
    await query(nodeA.db, `UPDATE daemon_status SET updated_at = to_char((now() - interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') WHERE node_id = '${nodeA.args[nodeA.args.indexOf("--node-id") + 1]}'`);
    const r = await backOn(a, nodeB);
    assert.equal(r.recovered, false);
    assert.notEqual(a.id, id);
  });

  clusterTest("the old node still has the socket: B restores the session and A's socket is closed (one live socket per pid)", async (ctx) => {
    const { a: nodeA, b: nodeB } = await twoNodes(ctx);
    const a = await ctx.client({}, nodeA);
    await emitAck(a, "join", { room: "room1" });
    const b = await ctx.client({}, nodeB);
    await emitAck(b, "send-message", { sender: "b", text: "x" });
    const [, offset] = await a.got.messages.next();
    await sleep(300);
    const id = a.id;
    const kicked = new Promise((resolve) => a.once("disconnect", resolve));
    // the same pid from another tab, on B, while A still has it live
    const t = ctx.track(makeClient(nodeB, { auth: { pid: a._pid, offset } }));
    await connectSocket(t, { ms: 10000 * SLOW });
    assert.equal(t.id, id);
    assert.equal(await within(kicked, 5000 * SLOW, "A's socket to be closed"), "io server disconnect");
    await emitAck(b, "send-message", { sender: "b", text: "to room1", room: "room1" });
    assert.equal((await t.got.messages.next())[0].text, "to room1");
    await sleep(200);
    assert.equal(a.got.messages.items.length, 1);
  });

  clusterTest("two nodes asked for one session at once: one socket ends up with it", async (ctx) => {
    const { a: nodeA, b: nodeB } = await twoNodes(ctx);
    const a = await ctx.client({}, nodeA);
    const b = await ctx.client({}, nodeB);
    await emitAck(b, "send-message", { sender: "b", text: "x" });
    const [, offset] = await a.got.messages.next();
    const id = a.id, pid = a._pid;
    const gone = new Promise((resolve) => a.once("disconnect", resolve));
    a.io.engine.close();
    await gone;
    await sleep(300);
    const tabs = [nodeA, nodeB].map((n) => ctx.track(makeClient(n, { auth: { pid, offset } })));
    await Promise.all(tabs.map((t) => connectSocket(t, { ms: 10000 * SLOW })));
    assert.ok(tabs.some((t) => t.id === id), tabs.map((t) => t.id).join(" "));
    // if both got it (one claim after the other), the older socket has been closed
    await eventually(() => assert.equal(tabs.filter((t) => t.connected && t.id === id).length, 1),
      { timeout: 8000 * SLOW, what: "one live socket with the session" });
    await sleep(300);
    assert.equal(tabs.filter((t) => t.connected && t.id === id).length, 1);
  });
});
