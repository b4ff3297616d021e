// --admin-ui: the /admin namespace of @socket.io/admin-ui 0.5, driven with socket.io-client 4.8
// as the UI drives it. Logins are admin-fcgi's admins (made with --create-admin); the events'
// shapes are compared with Node.js socket.io 4.8 running @socket.io/admin-ui's instrument().

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { describe } from "node:test";
import { instrument } from "@socket.io/admin-ui";
import { Server } from "socket.io";
import { Manager, io } from "socket.io-client";
import { HOST, RTD_BIN, connectError, connectSocket, eventually, makeClient, nextEvent as nextArgs, pgCreateDb, pgServerSync, query, rtdTest } from "./lib.mjs";

const nextEvent = async (e, ev, ms) => (await nextArgs(e, ev, ms))[0];

const ADMIN_BIN = process.env.ADMIN_BIN ?? path.resolve(path.dirname(RTD_BIN), "../admin-fcgi/admin-fcgi");
const PASSWORD = "admin ui password";

function createAdmin(db, name = "ops", password = PASSWORD) {
  execFileSync(ADMIN_BIN, ["--db", db, "--create-admin", name], { input: `${password}\n`, stdio: ["pipe", "ignore", "ignore"] });
}

// An /admin socket as the UI opens it (App.vue), not yet connected.
function adminClient(url, auth, opts = {}) {
  return io(`${url}/admin`, { forceNew: true, reconnection: false, autoConnect: false, withCredentials: true, transports: ["websocket"], auth, ...opts });
}

// What the UI gets on connecting: the session id (basic auth only), config and server_stats.
async function login(ctx, url, auth) {
  const s = adminClient(url, auth);
  ctx.track(s);
  const session = nextEvent(s, "session");
  const config = nextEvent(s, "config");
  const stats = nextEvent(s, "server_stats");
  await connectSocket(s);
  return { s, session: await session, config: await config, stats: await stats };
}

// The type of every key, recursively, with arrays reduced to their first element's shape.
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape(v[k])]));
  return typeof v;
}

describe("--admin-ui", () => {
  rtdTest("off by default: no /admin namespace", async (ctx) => {
    createAdmin(ctx.rtd.db);
    const s = adminClient(ctx.rtd.url, { username: "ops", password: PASSWORD });
    const err = await connectError(s);
    s.close();
    assert.equal(err.message, "Invalid namespace");
  });

  rtdTest("a wrong password is refused with invalid credentials; failures are throttled", { args: ["--admin-ui", "production"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    for (const auth of [{ username: "ops", password: "wrong" }, { username: "nobody", password: PASSWORD }, {}, { sessionId: "0123456789abcdef" }]) {
      const s = adminClient(ctx.rtd.url, auth);
      const err = await connectError(s);
      s.close();
      assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
    }
    // three more wrong passwords make five from this address: the right one then waits
    for (let i = 0; i < 3; i++) {
      const s = adminClient(ctx.rtd.url, { username: "ops", password: `wrong${i}` });
      const err = await connectError(s);
      s.close();
      assert.equal(err.message, "invalid credentials");
    }
    const s = adminClient(ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.match((await connectError(s)).message, /too many failed logins/);
    s.close();
  });

  rtdTest("login, session reconnect, config and server_stats every 2 s", { args: ["--admin-ui", "production"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const user = await connectSocket(makeClient(ctx.rtd, { kind: "polling" }));
    const { s, session, config, stats } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.match(session, /^[0-9a-f]{16}$/);
    assert.deepEqual(config, { supportedFeatures: ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"] });
    assert.equal(stats.pid, ctx.rtd.proc.pid);
    assert.equal(stats.clientsCount, 2);
    assert.equal(stats.pollingClientsCount, 1);
    assert.ok(stats.uptime > 0 && stats.uptime < 30);
    assert.deepEqual(new Set(stats.namespaces.map((n) => `${n.name}=${n.socketsCount}`)), new Set(["/=1", "/admin=1"]));
    const t0 = Date.now();
    const next = await nextEvent(s, "server_stats", 4000);
    assert.ok(Date.now() - t0 <= 2600, "the next server_stats within ~2 s");
    assert.equal(next.serverId, stats.serverId);
    // the bytes since the last server_stats, as the UI sums them
    await user.timeout(3000).emitWithAck("identify", { userId: "u1", platform: "web" });
    const later = await nextEvent(s, "server_stats", 4000);
    const types = later.aggregatedEvents.map((e) => e.type);
    assert.ok(types.includes("bytesIn") && types.includes("bytesOut"), JSON.stringify(later.aggregatedEvents));
    for (const e of later.aggregatedEvents) {
      assert.equal(e.timestamp % 1000, 0);
      assert.ok(e.count > 0);
    }
    s.close();
    // the UI's reload: auth {sessionId}
    const again = adminClient(ctx.rtd.url, { sessionId: session });
    const cfg = nextEvent(again, "config");
    await connectSocket(again);
    assert.deepEqual(await cfg, config);
    again.close();
    user.close();
  });

  rtdTest("the payloads have the shapes of Node.js socket.io with instrument()", { args: ["--admin-ui", "production", "--admin-ui-readonly"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const http = createServer();
    const ref = new Server(http);
    instrument(ref, { auth: false, mode: "production", readonly: true });
    await new Promise((r) => http.listen(0, HOST, r));
    try {
      const refUrl = `http://${HOST}:${http.address().port}`;
      const a = adminClient(refUrl, {});
      const [rc, rs] = [nextEvent(a, "config"), nextEvent(a, "server_stats")];
      await connectSocket(a);
      const refConfig = await rc;
      let refStats = await rs;
      // the reference's first server_stats may predate the admin's own namespace entry
      refStats = await nextEvent(a, "server_stats", 4000);
      a.close();
      const mine = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
      mine.s.close();
      assert.deepEqual(mine.config, refConfig); // readonly: AGGREGATED_EVENTS only
      const norm = (st) => ({ ...shape(st), aggregatedEvents: "array" });
      assert.deepEqual(norm(mine.stats), norm(refStats));
      assert.deepEqual(shape(mine.stats.namespaces), shape(refStats.namespaces));
    } finally {
      ref.close();
    }
  });

  // Node.js socket.io 4.8 with instrument() in development mode, "/" answering like rtd's
  // platform for identify and join (ack {ok:true}).
  async function devReference(opts = {}) {
    const http = createServer();
    const ref = new Server(http);
    instrument(ref, { auth: false, mode: "development", ...opts });
    ref.on("connection", (socket) => {
      socket.on("identify", (p, ack) => {
        const v = { socketId: socket.id, userId: p.userId, platform: p.platform };
        socket.emit("identified", v);
        ack?.(v);
      });
      socket.on("join", (p, ack) => {
        socket.join(p.room);
        ack?.({ ok: true });
      });
    });
    await new Promise((r) => http.listen(0, HOST, r));
    return { url: `http://${HOST}:${http.address().port}`, close: () => ref.close() };
  }

  // What one admin sees while a user connects, identifies, joins a room and disconnects.
  async function devTranscript(url, auth) {
    const admin = adminClient(url, auth);
    const names = ["all_sockets", "socket_connected", "room_joined", "event_received", "event_sent", "socket_disconnected"];
    const seen = {};
    for (const n of names) admin.on(n, (...args) => (seen[n] ??= []).push(args));
    const all = nextEvent(admin, "all_sockets");
    await connectSocket(admin);
    await all;
    const user = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await connectSocket(user);
    await user.timeout(3000).emitWithAck("identify", { userId: "u1", platform: "web" });
    await user.timeout(3000).emitWithAck("join", { room: "lobby" });
    const userId = user.id;
    user.close();
    const t0 = Date.now();
    while (!seen.socket_disconnected?.some((a) => a[1] === userId) && Date.now() - t0 < 4000) await new Promise((r) => setTimeout(r, 20));
    admin.close();
    return { seen, userId };
  }

  const loose = (v) => {
    const sh = shape(v);
    const fix = (o) => {
      if (o && typeof o === "object" && !Array.isArray(o) && o.handshake) o.handshake = { ...o.handshake, headers: "object", query: "object" };
      if (o && typeof o === "object" && !Array.isArray(o) && "data" in o) o.data = "object";
      return o;
    };
    return Array.isArray(sh) ? sh.map(fix) : fix(sh);
  };

  rtdTest("development mode: the events the UI gets, with the reference's shapes", { args: ["--admin-ui", "development"], timeout: 30000 }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const ref = await devReference();
    try {
      const want = await devTranscript(ref.url, {});
      const got = await devTranscript(ctx.rtd.url, { username: "ops", password: PASSWORD });
      for (const name of ["socket_connected", "room_joined", "event_received", "event_sent", "socket_disconnected"]) {
        const pick = (t) => t.seen[name]?.find((args) => JSON.stringify(args).includes(t.userId) && (name !== "room_joined" || args[1] === "lobby"));
        const w = pick(want), g = pick(got);
        assert.ok(w, `the reference sent ${name}`);
        assert.ok(g, `rtd sent ${name}: ${JSON.stringify(got.seen[name])}`);
        assert.deepEqual(g.map(loose), w.map(loose), name);
      }
      const ev = got.seen.event_received.find((a) => a[1] === got.userId && a[2][0] === "join");
      assert.deepEqual(ev.slice(0, 3), ["/", got.userId, ["join", { room: "lobby" }]]);
      assert.ok(got.seen.event_sent.some((a) => a[1] === got.userId && a[2][0] === "identified"));
      const conn = got.seen.socket_connected.find((a) => a[0].id === got.userId)[0];
      assert.equal(conn.nsp, "/");
      assert.equal(conn.transport, "websocket");
      assert.ok(conn.rooms.includes(got.userId));
      assert.deepEqual(got.seen.all_sockets[0][0].map((x) => x.nsp), ["/admin"]);
    } finally {
      ref.close();
    }
  });

  rtdTest("the commands join, leave and _disconnect act; --admin-ui-readonly drops them", { args: ["--admin-ui", "development"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const { s: admin, config } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.ok(config.supportedFeatures.includes("ALL_EVENTS"));
    const u1 = await ctx.client(), u2 = await ctx.client();
    const joined = nextArgs(admin, "room_joined");
    admin.emit("join", "/", "team", u1.id);
    assert.deepEqual((await joined).slice(0, 3), ["/", "team", u1.id]);
    const left = nextArgs(admin, "room_left");
    admin.emit("leave", "/", "team");
    assert.deepEqual((await left).slice(0, 3), ["/", "team", u1.id]);
    const gone = new Promise((r) => u2.once("disconnect", r));
    admin.emit("_disconnect", "/", false, u2.id);
    assert.equal(await gone, "io server disconnect");
    assert.ok(u1.connected);
    admin.close();
  });

  rtdTest("--admin-ui-readonly: no commands", { args: ["--admin-ui", "development", "--admin-ui-readonly"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const { s: admin, config } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.deepEqual(config.supportedFeatures, ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
    const u = await ctx.client();
    admin.emit("_disconnect", "/", true, u.id);
    admin.emit("join", "/", "team", u.id);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(u.connected);
    admin.close();
  });
  // The password check (yescrypt, tens of ms) and the admins lookup run on a worker thread:
  // on one connection, an ack asked for right after the /admin CONNECT comes back before the
  // login's answer (on the loop thread, the CONNECT would be answered first, packets being
  // read in order). An ordering, not a timing.
  // (Under valgrind, which runs one thread at a time, the worker may finish first: the
  // PostgreSQL test below holds the lookup itself.)
  rtdTest("a login does not hold up the loop: an ack sent after it is answered first", { args: ["--admin-ui", "production"], skip: process.env.RTD_VALGRIND ? "under valgrind threads run one at a time; see the PostgreSQL lock test" : false }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const m = new Manager(ctx.rtd.url, { reconnection: false, transports: ["websocket"] });
    const root = m.socket("/");
    ctx.track(root);
    await connectSocket(root);
    for (const password of [PASSWORD, "wrong"]) {
      m.nsps = {}; // a new /admin socket each time, not the manager's cached one
      const admin = m.socket(`/admin`, { auth: { username: "ops", password }, autoConnect: false });
      const order = [];
      const answered = new Promise((resolve) => {
        admin.once("connect", () => resolve(order.push("connect")));
        admin.once("connect_error", (e) => resolve(order.push(e.message)));
      });
      admin.connect();
      const ack = root.timeout(10000).emitWithAck("join", { room: "r" }).then((a) => order.push("ack") && a);
      assert.deepEqual(await ack, { ok: true });
      await answered;
      assert.deepEqual(order, ["ack", password === PASSWORD ? "connect" : "invalid credentials"]);
      admin.disconnect();
    }
    root.close();
  });

  // A client that goes away while its login is checked: the answer finds no socket, nothing
  // leaks (valgrind's run of this file), and the next login works.
  rtdTest("a client gone while its login is checked; a second CONNECT meanwhile gets the same one answer", { args: ["--admin-ui", "production"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    for (let i = 0; i < 3; i++) {
      const s = adminClient(ctx.rtd.url, { username: "ops", password: PASSWORD });
      s.connect();
      await new Promise((r) => s.io.engine.once("open", r));
      s.io.engine.close(); // right after the CONNECT went out
    }
    // two CONNECTs to /admin on one connection before the first is answered (the client's
    // connect() called twice): one answer, and the connection stays
    const m = new Manager(ctx.rtd.url, { reconnection: false, autoConnect: false, transports: ["websocket"] });
    const got = [];
    await new Promise((r) => m.open(r));
    m.engine.on("packet", (p) => p.type === "message" && got.push(p.data));
    const twice = `0/admin,${JSON.stringify({ username: "ops", password: PASSWORD })}`;
    m.engine.write(twice);
    m.engine.write(twice);
    m.engine.write("0");
    await eventually(() => assert.ok(got.some((d) => d.startsWith("0/admin,{\"sid\"")) && got.some((d) => d.startsWith("0{")), JSON.stringify(got)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.filter((d) => d.startsWith("0/admin,") || d.startsWith("4/admin,")).length, 1, JSON.stringify(got));
    assert.equal(m.engine.readyState, "open");
    m.engine.close();
    await new Promise((r) => setTimeout(r, 1100)); // a new second of the token bucket
    const { s, session } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.match(session, /^[0-9a-f]{16}$/);
    s.close();
  });

  // On PostgreSQL: the admins are admin-fcgi's, in the admin_users table of the same
  // database rtd writes to; the worker opens its own libpq connection.
  let pgSkip = false;
  try {
    if (!pgServerSync()) pgSkip = "SKIP: PostgreSQL is not installed";
  } catch {
    pgSkip = false;
  }
  // While another session holds admin_users locked (ACCESS EXCLUSIVE: readers wait), a
  // login's lookup waits in the worker; the loop goes on answering, and the login completes
  // once the lock goes. With the lookup on the loop thread the ack would wait for the lock.
  rtdTest("on PostgreSQL: a login waiting for a locked admin_users holds up nothing", { start: false, skip: pgSkip, timeout: 60000 }, async (ctx) => {
    const { startRtd } = await import("./lib.mjs");
    const { spawn } = await import("node:child_process");
    const db = pgCreateDb();
    ctx.rtd = await startRtd({ db, args: ["--admin-ui", "production"] });
    createAdmin(db);
    const root = await ctx.client();
    const psql = spawn("psql", ["-X", "-q", "-A", "-t", "-d", db], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    psql.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    const exited = new Promise((r) => psql.once("exit", r));
    psql.stdin.write("BEGIN;\nLOCK TABLE admin_users IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n");
    try {
      await eventually(() => assert.ok(out.includes("locked")), { what: "psql to lock admin_users" });
      const admin = adminClient(ctx.rtd.url, { username: "ops", password: PASSWORD });
      let answered = null;
      admin.once("connect", () => (answered = "connect"));
      admin.once("connect_error", (e) => (answered = e.message));
      admin.connect();
      await eventually(async () => {
        const rows = await query(db, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
        assert.ok(rows[0].n >= 1);
      }, { timeout: 20000, what: "the login's lookup to wait for the lock" });
      for (let i = 0; i < 3; i++) assert.deepEqual(await root.timeout(10000).emitWithAck("join", { room: `r${i}` }), { ok: true });
      assert.equal(answered, null, "the login waits for the lock");
      psql.stdin.end("COMMIT;\n\\q\n");
      await eventually(() => assert.equal(answered, "connect"), { timeout: 20000, what: "the login once the lock went" });
      admin.close();
    } finally {
      psql.stdin.end();
      await exited;
    }
  });

  rtdTest("--store on PostgreSQL: an admin made by --create-admin logs in; a wrong password is refused", { start: false, skip: pgSkip, timeout: 60000 }, async (ctx) => {
    const { startRtd } = await import("./lib.mjs");
    const db = pgCreateDb();
    ctx.rtd = await startRtd({ db, args: ["--admin-ui", "development"] });
    createAdmin(db);
    const rows = await query(db, "SELECT username, password_hash FROM admin_users");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].username, "ops");
    assert.match(rows[0].password_hash, /^\$y\$/);
    const { s, session, config } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.match(session, /^[0-9a-f]{16}$/);
    assert.ok(config.supportedFeatures.includes("ALL_EVENTS"));
    s.close();
    for (const auth of [{ username: "ops", password: "wrong" }, { username: "nobody", password: PASSWORD }]) {
      const bad = adminClient(ctx.rtd.url, auth);
      assert.equal((await connectError(bad)).message, "invalid credentials");
      bad.close();
    }
    // a password reset with --create-admin is seen by the next login (no cache)
    createAdmin(db, "ops", "another password");
    await new Promise((r) => setTimeout(r, 1100));
    const old = adminClient(ctx.rtd.url, { username: "ops", password: PASSWORD });
    assert.equal((await connectError(old)).message, "invalid credentials");
    old.close();
    const again = await login(ctx, ctx.rtd.url, { username: "ops", password: "another password" });
    again.s.close();
  });
  // Development mode shows at most 1 000 event_received/event_sent a second (the rest are
  // counted and logged): 3 000 events sent in a burst are not all shown. The bound is
  // checked against the burst's own duration, so a slow run (valgrind) only loosens it.
  rtdTest("development mode: at most 1 000 events a second go to the admins", { args: ["--admin-ui", "development", "--rate-limit", "0"], timeout: 60000 }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const { s: admin } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD });
    const u = await ctx.client();
    let shown = 0;
    admin.on("event_received", (nsp, id) => id === u.id && shown++);
    const t0 = Date.now();
    for (let i = 0; i < 3000; i++) u.emit("noise", i);
    await u.timeout(30000).emitWithAck("join", { room: "after" });
    const seconds = Math.ceil((Date.now() - t0) / 1000);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(shown >= 1, "some events are shown");
    assert.ok(shown <= 1000 * (seconds + 1), `${shown} events shown in ${seconds} s`);
    if (seconds <= 1) assert.ok(shown < 3001, `${shown} of 3 001 shown within a second`);
    await eventually(() => assert.match(ctx.rtd.stderr, /events not shown/), { what: "the drops logged" });
    admin.close();
  });
  // aggregatedEvents as instrument() makes them: per second (timestamp rounded down), type
  // rawConnection, rawDisconnection (subType: the close reason), packetsIn/bytesIn and
  // packetsOut/bytesOut (Engine.IO packets with data and their data bytes), one entry per
  // (second, type, subType) in a server_stats.
  async function aggregated(url, auth) {
    const admin = adminClient(url, auth);
    const stats = [];
    admin.on("server_stats", (st) => stats.push(st));
    await connectSocket(admin);
    await eventually(() => assert.ok(stats.length >= 1), { timeout: 5000, what: "a first server_stats" });
    const from = stats.length;
    const user = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await connectSocket(user);
    await user.timeout(3000).emitWithAck("identify", { userId: "u1", platform: "web" });
    user.close();
    const events = () => stats.slice(from).flatMap((st) => st.aggregatedEvents);
    await eventually(() => assert.ok(events().some((e) => e.type === "rawDisconnection")), { timeout: 8000, what: "rawDisconnection" });
    admin.close();
    for (const st of stats.slice(from)) {
      const keys = st.aggregatedEvents.map((e) => `${e.timestamp};${e.type};${e.subType}`);
      assert.equal(new Set(keys).size, keys.length, `one entry per (second, type, subType): ${keys}`);
    }
    return events();
  }

  rtdTest("aggregatedEvents: the reference's types, buckets and shapes", { args: ["--admin-ui", "production"], timeout: 40000 }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    const ref = await devReference({ mode: "production" });
    try {
      const want = await aggregated(ref.url, {});
      const got = await aggregated(ctx.rtd.url, { username: "ops", password: PASSWORD });
      const kinds = (evs) => [...new Set(evs.map((e) => (e.subType === undefined ? e.type : `${e.type}/${e.subType}`)))].sort();
      assert.deepEqual(kinds(got), kinds(want));
      assert.deepEqual(kinds(got), ["bytesIn", "bytesOut", "packetsIn", "packetsOut", "rawConnection", "rawDisconnection/transport close"]);
      for (const e of got) {
        assert.deepEqual(Object.keys(e).sort(), Object.keys(want.find((w) => w.type === e.type)).sort(), e.type);
        assert.equal(e.timestamp % 1000, 0);
        assert.ok(Number.isInteger(e.count) && e.count > 0);
        assert.ok(Math.abs(Date.now() - e.timestamp) < 30000);
      }
      const sum = (evs, t) => evs.filter((e) => e.type === t).reduce((n, e) => n + e.count, 0);
      assert.equal(sum(got, "rawConnection"), sum(want, "rawConnection")); // the user's session
      assert.ok(sum(got, "bytesIn") >= sum(got, "packetsIn"));
    } finally {
      ref.close();
    }
  });
  // Names over 256 bytes and passwords over 1 024 are nobody's: refused before any check
  // (the worker's buffers are of those sizes), and not counted as failures.
  rtdTest("over-long names and passwords are refused with invalid credentials", { args: ["--admin-ui", "production"] }, async (ctx) => {
    createAdmin(ctx.rtd.db);
    for (let i = 0; i < 6; i++) {
      const auth = i % 2 ? { username: "x".repeat(257 + i), password: PASSWORD } : { username: "ops", password: "p".repeat(1025 + i * 1000) };
      const s = adminClient(ctx.rtd.url, auth);
      assert.equal((await connectError(s)).message, "invalid credentials");
      s.close();
    }
    await new Promise((r) => setTimeout(r, 1100));
    const { s } = await login(ctx, ctx.rtd.url, { username: "ops", password: PASSWORD }); // not throttled
    s.close();
  });
});
