// The daemon's life: SIGTERM/SIGINT shutdown (clients closed cleanly, store flushed, rows closed,
// exit 0 within 5 s), a restart after SIGKILL that closes the rows the crash left active, the log
// format on stderr and SIGHUP reopening --log-file.

import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import { Polling } from "../js/lib/http.mjs";
import { RawWs } from "../js/lib/rawws.mjs";
import {
  connectionRow,
  count,
  dbTimeMs,
  emitAck,
  holdWriteLock,
  httpGet,
  query,
  rtdTest,
  sleep,
  startRtd,
  tempDir,
  tryConnect,
  waitConnectionRow,
  waitUntil,
  within,
} from "./lib.mjs";

const SHUTDOWN_LIMIT_MS = 5000;

// Lets the polling clients get back to a pending long-poll GET (what they do between
// exchanges), so that the server can answer it with a close packet: the client has sent its GET
// and has no POST in flight, and then one more HTTP round trip to rtd.
async function settle(rtd, sockets) {
  await waitUntil(
    () =>
      sockets.every((s) => {
        const t = s.io.engine?.transport;
        return !t || t.name !== "polling" || (t._polling === true && t.writable === true);
      }),
    { timeout: 3000, what: "the polling clients to be waiting on a long-poll" },
  );
  await httpGet(rtd, "/health");
}

// Three identified clients, one per platform and transport, each having sent a message.
async function threePlatforms(ctx) {
  const f = await ctx.identified("websocket", { userId: "f", platform: "flutter", appVersion: "1" });
  const l = await ctx.identified("polling", { userId: "l", platform: "laravel", appVersion: "1" });
  const w = await ctx.identified("upgrade", { userId: "w", platform: "web", appVersion: "1" });
  for (const s of [f, l, w]) await emitAck(s, "send-message", { sender: s.id, text: "before the signal" });
  for (const s of [f, l, w]) await s.got.messages.waitCount(3);
  return [f, l, w];
}

async function assertCleanShutdown(ctx, signal) {
  const { rtd } = ctx;
  const sockets = await threePlatforms(ctx);
  const ids = sockets.map((s) => s.id);
  for (const id of ids) await waitConnectionRow(rtd.db, id, (r) => r.platform !== "unknown", "identified");
  const reasons = sockets.map((s) => within(new Promise((resolve) => s.once("disconnect", resolve)), SHUTDOWN_LIMIT_MS + 1000, `the disconnect of ${s.id}`));

  // Messages in flight when the signal comes: whatever was acknowledged must be on disk.
  const acked = [];
  for (let i = 0; i < 10; i++) {
    sockets[0].emit("send-message", { sender: "late", text: `in flight ${i}` }, (ack) => {
      if (ack?.ok) acked.push(ack.id);
    });
  }
  await emitAck(sockets[0], "join", { room: "sync" }); // the server has read the ten
  await settle(rtd, sockets);

  const t0 = Date.now();
  rtd.signal(signal);
  const exit = await rtd.waitExit(SHUTDOWN_LIMIT_MS + 1000);
  const took = Date.now() - t0;
  assert.deepEqual(exit, { code: 0, signal: null }, `exit after ${signal}`);
  assert.ok(took < SHUTDOWN_LIMIT_MS, `exited ${took} ms after ${signal} (limit ${SHUTDOWN_LIMIT_MS} ms)`);

  // The WebSocket clients were closed by the server (a close frame), not cut off: socket.io-client
  // calls that "transport close". (The long-polling client: see the test of its own below.)
  const why = await Promise.all(reasons);
  assert.equal(why[0], "transport close", "disconnect reason of the WebSocket client");
  assert.equal(why[2], "transport close", "disconnect reason of the upgraded client");
  assert.ok(why[1] === "transport close" || why[1] === "transport error", `the polling client was disconnected (${why[1]})`);

  // Every row closed, with its time and duration; the acked messages are there.
  const rows = await query(rtd.db, "SELECT socket_id, status, disconnected_at, duration_ms, connected_at FROM connections ORDER BY id");
  assert.deepEqual(rows.map((r) => r.socket_id), ids);
  for (const r of rows) {
    assert.equal(r.status, "disconnected", JSON.stringify(r));
    assert.notEqual(r.disconnected_at, null, JSON.stringify(r));
    assert.equal(typeof r.duration_ms, "number", JSON.stringify(r));
    assert.ok(dbTimeMs(r.disconnected_at) >= dbTimeMs(r.connected_at));
  }
  const stored = new Set((await query(rtd.db, "SELECT id FROM messages")).map((r) => r.id));
  for (const id of acked) assert.ok(stored.has(id), `acked message ${id} is stored`);
  assert.ok(stored.size >= 3 + acked.length);
  const [ds] = await query(rtd.db, "SELECT stopped_at FROM daemon_status");
  assert.notEqual(ds.stopped_at, null, "daemon_status.stopped_at is set");
  assert.match(rtd.stderr, new RegExp(`\\[INFO\\] Shutting down \\{"signal":"${signal}"`));
}

describe("shutdown", () => {
  rtdTest("SIGTERM: clients closed cleanly, store flushed, every row closed, exit 0 within 5 s", async (ctx) => {
    await assertCleanShutdown(ctx, "SIGTERM");
  });

  rtdTest("SIGINT: the same", async (ctx) => {
    await assertCleanShutdown(ctx, "SIGINT");
  });

  // Regression (was a bug, now fixed): rtd stops its loop as soon as no WebSocket is open (main.c, shutdown_tick counts
  // eio_server_sockets_open only), before libmicrohttpd has sent the close packet queued for a
  // pending long-poll GET: the GET ends with a connection reset ("socket hang up") and
  // socket.io-client reports "transport error" instead of "transport close". Expected (the
  // contract: "close every client cleanly"): the pending GET is answered 200 with the Engine.IO
  // close packet "1" before rtd exits.
  rtdTest("SIGTERM answers a long-polling client's pending GET with a close packet", async (ctx) => {
    const { rtd } = ctx;
    const raw = new Polling(rtd.port, "/socket.io/");
    await raw.handshake();
    await raw.send("40");
    assert.match((await raw.receive())[0], /^40\{"sid":"/);
    const s = await ctx.client({ kind: "polling" });
    assert.match((await raw.receive())[0], /^42\["user-connected"/);
    const reason = within(new Promise((resolve) => s.once("disconnect", resolve)), 6000, "the polling client's disconnect");
    const pending = raw.startGet({ timeout: 6000 });
    await pending.sent;
    await settle(rtd, [s]);

    rtd.signal("SIGTERM");
    let answer;
    try {
      const res = await pending.response;
      answer = `HTTP ${res.status} ${JSON.stringify(res.text)}`;
    } catch (e) {
      answer = `no answer: ${e.message}`;
    }
    assert.deepEqual(await rtd.waitExit(SHUTDOWN_LIMIT_MS), { code: 0, signal: null });
    assert.equal(answer, 'HTTP 200 "1"', "the pending GET gets the close packet");
    assert.equal(await reason, "transport close", "socket.io-client over long-polling sees a clean close");
  });

  rtdTest("SIGTERM stops accepting at once and exits 0 within 5 s even when a client ignores the close", async (ctx) => {
    const { rtd } = ctx;
    // A raw WebSocket client that never answers the close frame.
    const ws = await RawWs.connect({ port: rtd.port, path: "/socket.io/?EIO=4&transport=websocket" });
    try {
      ws.eioAutoPong = true;
      assert.match(await ws.nextText(), /^0\{/);
      ws.text("40");
      assert.match(await ws.nextText(), /^40\{"sid":"/);
      const good = await ctx.client({ kind: "websocket" });
      const goodId = good.id;
      await waitConnectionRow(rtd.db, goodId);

      const t0 = Date.now();
      rtd.signal("SIGTERM");
      await waitUntil(() => /\[INFO\] Shutting down/.test(rtd.stderr), { timeout: 3000, what: "the shutdown log line" });
      const closeFrame = await ws.waitClose(3000);
      assert.ok(closeFrame, "the server sent a close frame");
      if (!rtd.exit) {
        // still running (waiting for the close handshake): new connections are refused
        assert.equal(await tryConnect(rtd.port, 500), false, "a new TCP connection is refused while shutting down");
      }
      const exit = await rtd.waitExit(SHUTDOWN_LIMIT_MS + 1000);
      const took = Date.now() - t0;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(took < SHUTDOWN_LIMIT_MS, `exited ${took} ms after SIGTERM`);
      assert.equal(await count(rtd.db, "connections", "status = 'active'"), 0);
      assert.equal(await count(rtd.db, "connections"), 2);
    } finally {
      ws.destroy();
    }
  });
  // A client whose message the writer holds while another process has the write lock, and
  // SIGTERM once it is held: fn(s, lock, sent) goes on from there; the lock ends in any case.
  async function sigtermDuringCommit(ctx, send, fn) {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket" });
    await waitConnectionRow(rtd.db, s.id);
    const lock = await holdWriteLock(rtd.db);
    try {
      const sent = send(s);
      await sleep(300); // the writer has it and waits for the lock
      rtd.signal("SIGTERM");
      await waitUntil(() => /\[INFO\] Shutting down/.test(rtd.stderr), { timeout: 3000, what: "the shutdown log line" });
      await fn(s, lock, sent);
    } finally {
      await lock.release();
    }
  }

  // Regression (issue 18.1): SIGTERM while a commit waits crashed rtd (exit 139): main.c freed
  // the platform before store_close, whose last completions ran on it.
  rtdTest("SIGTERM while a commit waits for a lock: the ack still goes out, later sends are refused, exit 0", async (ctx) => {
    const { rtd } = ctx;
    const send = (s) => emitAck(s, "send-message", { sender: "ada", text: "committed during shutdown" });
    await sigtermDuringCommit(ctx, send, async (s, lock, acked) => {
      const refused = await emitAck(s, "send-message", { sender: "ada", text: "too late" });
      assert.equal(refused.ok, false);
      assert.equal(refused.code, "shutting_down");
      await sleep(300);
      assert.equal(rtd.exit, null, "rtd waits for the commit before it closes the sockets");
      await lock.release();
      const ack = await within(acked, 5000, "the ack of the message sent before SIGTERM");
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.deepEqual(await rtd.waitExit(SHUTDOWN_LIMIT_MS + 6000), { code: 0, signal: null });
      assert.deepEqual(await query(rtd.db, "SELECT id, message_text FROM messages"), [{ id: ack.id, message_text: "committed during shutdown" }]);
    });
  });

  // The same with a second signal (do not wait): the commit completes in store_close, after
  // the platform is gone; its completion only frees its state (valgrind checks in the test
  // command) and the row is still written.
  rtdTest("a second SIGTERM while a commit waits: the row is still committed, exit 0", async (ctx) => {
    const { rtd } = ctx;
    const send = (s) => s.emit("send-message", { sender: "ada", text: "committed after the loop" });
    await sigtermDuringCommit(ctx, send, async (s, lock) => {
      rtd.signal("SIGTERM");
      await sleep(300);
      await lock.release();
      assert.deepEqual(await rtd.waitExit(SHUTDOWN_LIMIT_MS + 6000), { code: 0, signal: null });
      assert.equal(await count(rtd.db, "messages", "message_text = 'committed after the loop'"), 1);
      assert.equal(await count(rtd.db, "connections", "status = 'active'"), 0);
    });
  });
});

describe("crash recovery", () => {
  rtdTest("after SIGKILL, a restart closes the rows left active; the messages stay", { start: false }, async (ctx) => {
    const first = await ctx.startExtra({});
    const sockets = [];
    for (const kind of ["websocket", "polling", "upgrade"]) sockets.push(await ctx.client({ kind }, first));
    const ids = sockets.map((s) => s.id);
    const early = ids.shift(); // one closes normally before the crash
    sockets.shift().disconnect();
    await waitConnectionRow(first.db, early, (r) => r.status === "disconnected", "closed");
    const before = await connectionRow(first.db, early);
    const m = await emitAck(sockets[0], "send-message", { sender: "x", text: "survives the crash" });
    for (const id of ids) await waitConnectionRow(first.db, id, (r) => r.status === "active");

    first.signal("SIGKILL");
    const exit = await first.waitExit(5000);
    assert.equal(exit.signal, "SIGKILL");
    ctx.closeClients();
    assert.deepEqual(
      (await query(first.db, "SELECT status FROM connections ORDER BY id")).map((r) => r.status),
      ["disconnected", "active", "active"],
      "the crash left two rows active",
    );

    // Restart on the same database: by the time it accepts connections, the rows are closed.
    ctx.rtd = await startRtd({ dir: first.dir, db: first.db });
    const rows = await query(ctx.rtd.db, "SELECT * FROM connections ORDER BY id");
    assert.equal(rows.length, 3);
    for (const r of rows) {
      assert.equal(r.status, "disconnected", JSON.stringify(r));
      assert.notEqual(r.disconnected_at, null, JSON.stringify(r));
      assert.ok(dbTimeMs(r.disconnected_at) >= dbTimeMs(r.connected_at), JSON.stringify(r));
      if (r.duration_ms !== null) assert.ok(r.duration_ms >= 0);
    }
    assert.deepEqual(rows[0], before, "the row closed before the crash is untouched");
    assert.deepEqual(await query(ctx.rtd.db, "SELECT id, message_text FROM messages"), [{ id: m.id, message_text: "survives the crash" }]);

    // and it works: new connections, new rows, the old history
    const s = await ctx.client({ kind: "polling" });
    await waitConnectionRow(ctx.rtd.db, s.id, (r) => r.status === "active");
    assert.deepEqual((await emitAck(s, "get-messages", {})).map((x) => x.id), [m.id]);
    assert.equal(await count(ctx.rtd.db, "connections", "status = 'active'"), 1);
  });
});

const LINE_RE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] \[(ERROR|WARN|INFO|DEBUG)\] ([^{]+?)(?: (\{.*\}))?$/;

function parseLog(text) {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = LINE_RE.exec(l);
      assert.ok(m, `log line in the expected format: ${JSON.stringify(l)}`);
      assert.ok(!Number.isNaN(Date.parse(m[1])));
      return { time: m[1], level: m[2], msg: m[3], data: m[4] === undefined ? undefined : JSON.parse(m[4]) };
    });
}

describe("logs", () => {
  rtdTest('stderr lines look like [2024-11-08T12:00:00.000Z] [INFO] Client connected {"socketId":"…"}', async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket" });
    const id = s.id;
    s.disconnect();
    await waitUntil(() => rtd.stderr.includes(`Client disconnected {"socketId":"${id}"`), { what: "the disconnect log line" });
    const lines = parseLog(rtd.stderr);
    const conn = lines.find((l) => l.msg === "Client connected");
    assert.ok(conn, "a Client connected line");
    assert.equal(conn.level, "INFO");
    assert.equal(conn.data.socketId, id);
    assert.ok(Math.abs(Date.parse(conn.time) - Date.now()) < 60000, "UTC time, about now");
    const disc = lines.find((l) => l.msg === "Client disconnected");
    assert.equal(disc.level, "INFO");
    assert.equal(disc.data.socketId, id);
    assert.equal(rtd.stdout, "", "nothing on stdout");
  });

  rtdTest("--log-file: the log goes to the file; SIGHUP reopens it (log rotation)", { start: false }, async (ctx) => {
    const dir = tempDir();
    const log = path.join(dir, "rtd.log");
    ctx.rtd = await startRtd({ dir, args: ["--log-file", log] });
    const { rtd } = ctx;
    assert.equal(rtd.stderr, "", "nothing on stderr");
    await waitUntil(() => existsSync(log) && readFileSync(log, "utf8").includes("Socket.IO server running"), { what: "the start line in the log file" });
    const a = await ctx.client({ kind: "websocket" });
    await waitUntil(() => readFileSync(log, "utf8").includes(`"socketId":"${a.id}"`), { what: "a's line in the log file" });

    // rotate: move the file away, SIGHUP, and the next lines go to a new file at the same path
    const rotated = `${log}.1`;
    renameSync(log, rotated);
    rtd.signal("SIGHUP");
    await waitUntil(() => existsSync(log) && readFileSync(log, "utf8").includes("Log file reopened"), { what: "the new log file" });
    const b = await ctx.client({ kind: "polling" });
    await waitUntil(() => readFileSync(log, "utf8").includes(`"socketId":"${b.id}"`), { what: "b's line in the new log file" });
    assert.ok(!readFileSync(rotated, "utf8").includes(b.id), "nothing more in the rotated file");
    parseLog(readFileSync(log, "utf8"));
    parseLog(readFileSync(rotated, "utf8"));
    assert.equal(rtd.exit, null, "SIGHUP does not stop rtd");
    assert.equal(rtd.stderr, "");
  });
});
