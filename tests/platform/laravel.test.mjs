// --laravel-config: rtd reading laravel-echo-server.json (keys and defaults of
// laravel-echo-server 1.6.3), serving Laravel Echo's subscribe/unsubscribe on "/" and
// Laravel's RedisBroadcaster messages from Redis.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { describe, it } from "node:test";
import io2 from "sio2";
import { connectSocket, eventually, makeClient, metrics, query, runRtd, sleep, startRtd, TESTS_DIR, withTempDir } from "./lib.mjs";
import { startRedis } from "./redis.mjs";

function config(dir, obj, name = "laravel-echo-server.json") {
  const f = path.join(dir, name);
  writeFileSync(f, typeof obj === "string" ? obj : JSON.stringify(obj));
  return f;
}

describe("--laravel-config", () => {
  it("refuses bad values at start with a message naming the key", () => withTempDir(async (dir) => {
    const db = path.join(dir, "x.db");
    for (const [cfg, re] of [
      ["{nope", /cannot read/],
      [[1], /expected a JSON object/],
      [{ protocol: "ftp" }, /protocol: 'ftp'/],
      [{ protocol: "https" }, /https is not served/],
      [{ port: "abc" }, /port: expected a port/],
      [{ authHost: 5 }, /authHost/],
      [{ authHost: "localhost" }, /authHost: 'localhost' is not an http/],
      [{ clients: [{ appId: "a" }] }, /clients\[0\]/],
      [{ devMode: "yes" }, /devMode: expected true or false/],
      [{ databaseConfig: { redis: { port: [] } } }, /databaseConfig.redis.port/],
      [{ database: "mysql" }, /database: 'mysql'/],
    ]) {
      const r = await runRtd(["--db", db, "--laravel-config", config(dir, cfg)]);
      assert.notEqual(r.code, 0, JSON.stringify(cfg));
      assert.match(r.stderr, re, JSON.stringify(cfg));
    }
    const r = await runRtd(["--db", db, "--laravel-config", path.join(dir, "missing.json")]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /missing\.json/);
  }));

  it("warns about unknown keys; LARAVEL_ECHO_SERVER_* override the file; --port wins", () => withTempDir(async (dir) => {
    const db = path.join(dir, "x.db");
    const f = config(dir, { port: "http://example:61/", bogus: true, databaseConfig: { redis: { zz: 1 } }, subscribers: { redis: false } });
    // the environment is read after the file: a bad port there is refused
    const bad = await runRtd(["--db", db, "--laravel-config", f], { env: { LARAVEL_ECHO_SERVER_PORT: "x" } });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /LARAVEL_ECHO_SERVER_PORT/);
    const viaVar = await runRtd(["--db", db, "--laravel-config", f], { env: { LARAVEL_ECHO_SERVER_PROTO: "${MY_PROTO}", MY_PROTO: "gopher" } });
    assert.match(viaVar.stderr, /protocol: 'gopher'/);
    // startRtd gives --port and --bind: they win over the file's port 61
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    try {
      const r = await fetch(`${rtd.url}/health`);
      assert.equal(r.status, 200);
      assert.match(rtd.stderr, /Unknown key in the Laravel config: ignored \{"key":"bogus"\}/);
      assert.match(rtd.stderr, /"key":"databaseConfig.redis.zz"/);
    } finally {
      await rtd.stop();
    }
  }));
});

describe("--laravel-config and rtd's own presence events", () => {
  it("no user-connected/user-disconnected for Laravel clients unless --presence on is given", () => withTempDir(async (dir) => {
    const f = config(dir, { subscribers: { redis: false } });
    for (const [args, want] of [[[], false], [["--presence", "on"], true]]) {
      const rtd = await startRtd({ args: ["--laravel-config", f, ...args] });
      const a = await connectSocket(makeClient(rtd));
      const got = [];
      a.onAny((e) => got.push(e));
      const b = await connectSocket(makeClient(rtd));
      b.close();
      if (want) await eventually(() => assert.deepEqual(got, ["user-connected", "user-disconnected"]));
      else {
        await sleep(300);
        assert.deepEqual(got, [], "laravel-echo-server sends no such events");
      }
      a.close();
      await rtd.stop();
    }
  }));
});

// Everything a client gets, in order, as [event, ...args].
function record(s) {
  s.all = [];
  // rtd's own presence events (--presence) are not Laravel's
  s.onAny((...a) => { if (!/^user-(dis)?connected$/.test(a[0])) s.all.push(a); });
  return s;
}

describe("Laravel channels and the Redis subscriber", () => {
  it("public channels: subscribe, events as (event, channel, data), toOthers, unsubscribe, bad messages", async () => {
    const redis = await startRedis();
    const cleanups = [() => redis.stop()];
    try {
      const prefix = "laravel_database_";
      const f = config(redis.dir, { clients: [], databaseConfig: { redis: { host: "127.0.0.1", port: redis.port, keyPrefix: prefix } } });
      const rtd = await startRtd({ args: ["--laravel-config", f, "--allow-eio3"] });
      cleanups.unshift(() => rtd.stop());
      // rtd's PSUBSCRIBE laravel_database_*
      await eventually(async () => assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 1), { timeout: 10000, what: "rtd's PSUBSCRIBE" });
      const a = record(await connectSocket(makeClient(rtd)));
      const b = record(await connectSocket(makeClient(rtd, { kind: "polling" })));
      // socket.io-client 2.x, as laravel-echo-server's users have it, on the same port
      const c2 = io2(rtd.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
      cleanups.unshift(() => c2.close());
      c2.all = [];
      const realOnevent = c2.onevent;
      c2.onevent = function (packet) { c2.all.push(packet.data); return realOnevent.call(this, packet); };
      await new Promise((res, rej) => { c2.once("connect", res); c2.once("connect_error", rej); });
      cleanups.unshift(() => { a.close(); b.close(); });
      for (const s of [a, b, c2]) s.emit("subscribe", { channel: "orders", auth: { headers: {} } });
      a.emit("subscribe", { channel: "other" });
      await sleep(200);
      const pub = (ch, msg) => redis.command(["PUBLISH", prefix + ch, typeof msg === "string" ? msg : JSON.stringify(msg)]);
      await pub("orders", { event: "App\\Events\\OrderShipped", data: { id: 1, name: "é" }, socket: null });
      await eventually(() => {
        for (const s of [a, b, c2]) assert.deepEqual(s.all.at(-1), ["App\\Events\\OrderShipped", "orders", { id: 1, name: "é" }]);
      }, { what: "the event on every subscriber" });
      // toOthers: the socket named by "socket" is left out
      await pub("orders", { event: "Two", data: [1], socket: a.id });
      await eventually(() => {
        assert.deepEqual(b.all.at(-1), ["Two", "orders", [1]]);
        assert.deepEqual(c2.all.at(-1), ["Two", "orders", [1]]);
      });
      // bad messages are dropped; nothing else is affected; other channels don't leak
      await pub("orders", "not json");
      await pub("orders", { data: 1 });
      await pub("orders", '{"event":"x"');
      await pub("nobody", { event: "Lost", data: {} });
      await pub("other", { event: "OnlyA", data: {} });
      b.emit("unsubscribe", { channel: "orders" });
      await sleep(200);
      await pub("orders", { event: "Three", data: null });
      await eventually(() => assert.deepEqual(c2.all.at(-1), ["Three", "orders", null]));
      await eventually(() => assert.deepEqual(a.all.at(-1), ["Three", "orders", null]));
      assert.deepEqual(a.all.map((e) => e[0]), ["App\\Events\\OrderShipped", "OnlyA", "Three"]);
      assert.deepEqual(b.all.map((e) => e[0]), ["App\\Events\\OrderShipped", "Two"]);
      // a private channel without the auth callout is refused with subscription_error
      a.emit("subscribe", { channel: "private-orders.1", auth: { headers: {} } });
      await eventually(() => assert.deepEqual(a.all.at(-1), ["subscription_error", "private-orders.1", 0]));
      assert.equal(rtd.exit, null, "rtd still runs");
    } finally {
      for (const f of cleanups) await f();
    }
  });
});

describe("Laravel: the Redis subscriber with database \"sqlite\"", () => {
  it("runs whatever the database, as the original's; members stay on the node (no rtd keys in Redis)", async () => {
    const redis = await startRedis();
    const f = config(redis.dir, { database: "sqlite", databaseConfig: { redis: { host: "127.0.0.1", port: redis.port, keyPrefix: "p_" } } });
    const rtd = await startRtd({ args: ["--laravel-config", f] });
    const a = record(await connectSocket(makeClient(rtd)));
    try {
      await eventually(async () => assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 1), { timeout: 10000, what: "its PSUBSCRIBE" });
      a.emit("subscribe", { channel: "orders" });
      await sleep(200);
      await redis.command(["PUBLISH", "p_orders", JSON.stringify({ event: "E", data: { n: 1 } })]);
      await eventually(() => assert.deepEqual(a.all.at(-1), ["E", "orders", { n: 1 }]));
      await sleep(500);
      assert.deepEqual(await redis.command(["KEYS", "*rtd:*"]), []);
    } finally {
      a.close();
      await rtd.stop();
      await redis.stop();
    }
  });
});

describe("Laravel private and presence channels, whisper", () => {
  it("the auth callout (POST authHost+authEndpoint), 200 joins, others answer subscription_error; client events", async () => {
    const seen = [];
    // a stand-in for Laravel's /broadcasting/auth: 200 for private-ok.*, 403 otherwise; one slow
    const auth = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        const ch = new URLSearchParams(body).get("channel_name");
        if (ch === "private-slow") return setTimeout(() => res.writeHead(200).end("{}"), 300);
        if (ch === "private-redirect") return res.writeHead(302, { Location: "/login" }).end();
        if (ch?.startsWith("presence-")) {
          const who = req.headers.authorization; // "Bearer <id>": Laravel's answer for that user
          if (!who) return res.writeHead(403).end();
          const id = Number(who.slice(7));
          const channel_data = { user_id: id, user_info: { name: `u${id}` } };
          // Laravel's RedisBroadcaster answers channel_data as an object; Pusher's as a string
          return res.writeHead(200).end(JSON.stringify({ channel_data: id === 2 ? JSON.stringify(channel_data) : channel_data }));
        }
        res.writeHead(ch?.startsWith("private-ok") ? 200 : 403, { "Content-Type": "application/json" }).end("{}");
      });
    });
    await new Promise((r) => auth.listen(0, "127.0.0.1", r));
    const dir = (await import("./lib.mjs")).tempDir();
    const f = config(dir, { authHost: `http://127.0.0.1:${auth.address().port}`, authEndpoint: "/broadcasting/auth", subscribers: { redis: false } });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    const a = record(await connectSocket(makeClient(rtd)));
    const b = record(await connectSocket(makeClient(rtd, { kind: "polling" })));
    try {
      a.emit("subscribe", { channel: "private-ok.1", auth: { headers: { "X-CSRF-TOKEN": "tok", Authorization: "Bearer abc", Cookie: "laravel_session=s1" } } });
      b.emit("subscribe", { channel: "private-ok.1", auth: { headers: {} } });
      a.emit("subscribe", { channel: "private-denied", auth: { headers: {} } });
      a.emit("subscribe", { channel: "private-redirect", auth: { headers: {} } });
      // the loop is not blocked while a callout is slow: a public subscribe still works
      b.emit("subscribe", { channel: "private-slow", auth: { headers: {} } });
      await eventually(() => {
        assert.ok(a.all.some((e) => e[0] === "subscription_error" && e[1] === "private-denied" && e[2] === 403), JSON.stringify(a.all));
        assert.ok(a.all.some((e) => e[0] === "subscription_error" && e[1] === "private-redirect" && e[2] === 302), JSON.stringify(a.all));
      }, { timeout: 5000 });
      await eventually(() => assert.equal(seen.length, 5));
      const first = seen.find((r) => r.body === "channel_name=private-ok.1" && r.headers["x-csrf-token"]);
      assert.equal(first.method, "POST");
      assert.equal(first.url, "/broadcasting/auth");
      assert.equal(first.headers["content-type"], "application/x-www-form-urlencoded");
      assert.equal(first.headers["x-requested-with"], "XMLHttpRequest");
      assert.equal(first.headers.authorization, "Bearer abc");
      assert.equal(first.headers.cookie, "laravel_session=s1");
      assert.equal(first.headers.accept, undefined);
      await sleep(500); // the slow one answered 200 meanwhile
      // whisper: to the others in the channel, only client-* events on private channels
      a.emit("client event", { channel: "private-ok.1", event: "client-typing", data: { name: "ann" } });
      await eventually(() => assert.deepEqual(b.all.at(-1), ["client-typing", "private-ok.1", { name: "ann" }]));
      a.emit("client event", { channel: "private-ok.1", event: "typing", data: {} });
      a.emit("client event", { channel: "private-slow", event: "client-x", data: {} }); // not a member
      b.emit("client event", JSON.stringify({ channel: "private-slow", event: "client-y", data: 2 }));
      await sleep(200);
      assert.ok(!a.all.some((e) => e[0] === "client-y"), "the sender is not in private-slow... and b has no one else");
      assert.deepEqual(b.all.filter((e) => e[0].startsWith("client-") || e[0] === "typing").map((e) => e[0]), ["client-typing"]);
      assert.ok(!a.all.some((e) => e[0] === "client-typing"), "not back to the sender");
      // presence: two tabs of user 1 (a, a2) and user 2 (b)
      const a2 = record(await connectSocket(makeClient(rtd)));
      const join = async (s, id) => {
        s.emit("subscribe", { channel: "presence-room", auth: { headers: { Authorization: `Bearer ${id}` } } });
        await eventually(() => assert.ok(s.all.some((e) => e[0] === "presence:subscribed"), JSON.stringify(s.all)));
        return s.all.find((e) => e[0] === "presence:subscribed")[2];
      };
      const m1 = { user_id: 1, user_info: { name: "u1" } };
      const m2 = { user_id: 2, user_info: { name: "u2" } };
      assert.deepEqual(await join(a, 1), [{ ...m1, socketId: a.id }]);
      assert.deepEqual(await join(b, 2), [{ ...m2, socketId: b.id }, { ...m1, socketId: a.id }]);
      await eventually(() => assert.deepEqual(a.all.at(-1), ["presence:joining", "presence-room", { ...m2, socketId: b.id }]));
      // the second tab: the newest entry per user, no joining for the others
      assert.deepEqual(await join(a2, 1), [{ ...m1, socketId: a2.id }, { ...m2, socketId: b.id }]);
      await sleep(200);
      assert.equal(b.all.filter((e) => e[0] === "presence:joining").length, 0);
      assert.equal(a.all.filter((e) => e[0] === "presence:joining").length, 1);
      // one tab goes: nothing; the last tab goes: leaving, without socketId
      a2.close();
      await sleep(200);
      assert.ok(!b.all.some((e) => e[0] === "presence:leaving"));
      a.emit("unsubscribe", { channel: "presence-room" });
      await eventually(() => assert.deepEqual(b.all.at(-1), ["presence:leaving", "presence-room", m1]));
      assert.ok(!a.all.some((e) => e[0] === "presence:leaving"), "not to the one who left");
      // denied (no Authorization): subscription_error with Laravel's status
      const c = record(await connectSocket(makeClient(rtd)));
      c.emit("subscribe", { channel: "presence-room", auth: { headers: {} } });
      await eventually(() => assert.deepEqual(c.all.at(-1), ["subscription_error", "presence-room", 403]));
      c.close();
      // an auth host that is down: status 0
      auth.close();
      auth.closeAllConnections();
      await new Promise((r) => setTimeout(r, 100));
      a.emit("subscribe", { channel: "private-ok.2", auth: { headers: {} } });
      await eventually(() => assert.deepEqual(a.all.at(-1), ["subscription_error", "private-ok.2", 0]), { timeout: 12000 });
      assert.equal(rtd.exit, null);
    } finally {
      a.close();
      b.close();
      try { await rtd.stop(); } catch (e) { rtd.printStderr(); throw e; }
      auth.close();
    }
  });
});

describe("Laravel: the handshake's Cookie in the auth callout", () => {
  it("forwarded unless auth.headers has a Cookie; over polling too; one over 4096 bytes is not", async () => {
    const cookies = [];
    const auth = createServer((req, res) => {
      req.resume();
      req.on("end", () => { cookies.push(req.headers.cookie ?? null); res.writeHead(200).end("true"); });
    });
    await new Promise((r) => auth.listen(0, "127.0.0.1", r));
    const dir = (await import("./lib.mjs")).tempDir();
    const f = config(dir, { authHost: `http://127.0.0.1:${auth.address().port}`, subscribers: { redis: false } });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    const socks = [];
    try {
      const sub = async (cookie, opts, headers = {}) => {
        const s = record(await connectSocket(makeClient(rtd, { extraHeaders: { Cookie: cookie }, ...opts })));
        socks.push(s);
        const n = cookies.length;
        s.emit("subscribe", { channel: "private-x", auth: { headers } });
        await eventually(() => assert.equal(cookies.length, n + 1));
        return cookies.at(-1);
      };
      assert.equal(await sub("laravel_session=abc; XSRF-TOKEN=t"), "laravel_session=abc; XSRF-TOKEN=t");
      assert.equal(await sub("laravel_session=poll", { kind: "polling" }), "laravel_session=poll");
      assert.equal(await sub("laravel_session=hs", {}, { Cookie: "laravel_session=mine" }), "laravel_session=mine");
      assert.equal(await sub("a=" + "x".repeat(4094)), "a=" + "x".repeat(4094)); // 4096 bytes: kept
      assert.equal(await sub("a=" + "x".repeat(4095)), null); // 4097: not kept, not forwarded
    } finally {
      for (const s of socks) s.close();
      await rtd.stop();
      auth.close();
    }
  });
});

describe("Laravel presence: the member's user_id is bounded", () => {
  it("a user_id over 200 bytes or with a tab is refused with subscription_error(channel, 0); 200 bytes joins", async () => {
    const ids = { "presence-long": "x".repeat(201), "presence-tab": "a\tb", "presence-ok": "y".repeat(200) };
    const auth = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const ch = new URLSearchParams(body).get("channel_name");
        res.writeHead(200).end(JSON.stringify({ channel_data: { user_id: ids[ch], user_info: {} } }));
      });
    });
    await new Promise((r) => auth.listen(0, "127.0.0.1", r));
    const dir = (await import("./lib.mjs")).tempDir();
    const rtd = await startRtd({ args: ["--laravel-config", config(dir, { authHost: `http://127.0.0.1:${auth.address().port}`, subscribers: { redis: false } })], dir });
    const a = record(await connectSocket(makeClient(rtd)));
    try {
      for (const ch of Object.keys(ids)) a.emit("subscribe", { channel: ch });
      await eventually(() => {
        assert.deepEqual(a.all.filter((e) => e[0] === "subscription_error").map((e) => e[1]).sort(), ["presence-long", "presence-tab"]);
        assert.deepEqual(a.all.find((e) => e[0] === "presence:subscribed")?.[2], [{ user_id: ids["presence-ok"], user_info: {}, socketId: a.id }]);
      });
      assert.ok(a.all.every((e) => e[0] !== "subscription_error" || e[2] === 0));
      assert.equal((await metrics(rtd)).samples.get('rtd_laravel_refused_total{kind="member_data"}'), 2);
    } finally {
      a.close();
      await rtd.stop();
      auth.close();
    }
  });
});

describe("Laravel metrics on /metrics", () => {
  it("rtd_laravel_*: broadcasts by source, deliveries, auth callouts by result, refusals by kind", async () => {
    const crypto = await import("node:crypto");
    const redis = await startRedis();
    const auth = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const ch = new URLSearchParams(body).get("channel_name");
        if (ch === "presence-nodata") return res.writeHead(200).end("{}");
        res.writeHead(ch === "private-ok" ? 200 : 403).end("{}");
      });
    });
    await new Promise((r) => auth.listen(0, "127.0.0.1", r));
    const prefix = "p_";
    const f = config(redis.dir, {
      authHost: `http://127.0.0.1:${auth.address().port}`, clients: [{ appId: "a", key: "k", secret: "s" }],
      databaseConfig: { redis: { host: "127.0.0.1", port: redis.port, keyPrefix: prefix } },
    });
    const rtd = await startRtd({ args: ["--laravel-config", f, "--max-payload", "20000"] });
    const socks = [];
    try {
      await eventually(async () => assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 1), { timeout: 10000 });
      const a = record(await connectSocket(makeClient(rtd)));
      const b = record(await connectSocket(makeClient(rtd)));
      socks.push(a, b);
      for (const s of [a, b]) s.emit("subscribe", { channel: "orders" });
      a.emit("subscribe", { channel: "private-ok" });
      a.emit("subscribe", { channel: "private-no" });
      a.emit("subscribe", { channel: "presence-nodata" });
      a.emit("subscribe", { nochannel: 1 });
      await eventually(() => assert.equal(a.all.filter((e) => e[0] === "subscription_error").length, 2));
      await redis.command(["PUBLISH", prefix + "orders", JSON.stringify({ event: "E", data: 1 })]);
      await redis.command(["PUBLISH", prefix + "orders", "nope"]);
      const api = (p, body, q = "") => fetch(`${rtd.url}/apps/a/${p}${q}`, { method: "POST", body, headers: { Authorization: "Bearer k" } });
      assert.equal((await api("events", JSON.stringify({ channel: "orders", name: "H", data: 2 }))).status, 200);
      assert.equal((await api("events", "{bad")).status, 400);
      assert.equal((await api("events", JSON.stringify({ channel: "orders", name: "H", data: "x".repeat(30000) }))).status, 413);
      assert.equal((await fetch(`${rtd.url}/apps/a/channels`, { headers: { Authorization: "Bearer wrong" } })).status, 403);
      const body = JSON.stringify({ channel: "orders", name: "P", data: "{}" });
      const q = { auth_key: "k", auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: "1.0", body_md5: crypto.createHash("md5").update(body).digest("hex") };
      const sig = crypto.createHmac("sha256", "s").update(`POST\n/apps/a/events\n${Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join("&")}`).digest("hex");
      assert.equal((await fetch(`${rtd.url}/apps/a/events?${new URLSearchParams({ ...q, auth_signature: sig })}`, { method: "POST", body })).status, 200);
      await eventually(() => assert.deepEqual(b.all.map((e) => e[0]), ["E", "H", "P"]));
      const m = (await metrics(rtd)).samples;
      const get = (k) => m.get(`rtd_laravel_${k}`);
      assert.deepEqual([get('broadcasts_received_total{source="redis"}'), get('broadcasts_received_total{source="http"}'), get('broadcasts_received_total{source="pusher"}')], [2, 1, 1]);
      assert.equal(get("broadcasts_total"), 3);
      assert.equal(get("deliveries_total"), 6);
      assert.deepEqual([get('auth_callouts_total{result="ok"}'), get('auth_callouts_total{result="denied"}'), get('auth_callouts_total{result="failed"}')], [2, 1, 0]);
      assert.equal(get('refused_total{kind="redis_message"}'), 1);
      assert.equal(get('refused_total{kind="client_payload"}'), 1);
      assert.equal(get('refused_total{kind="member_data"}'), 1);
      assert.equal(get('refused_total{kind="unauthorized"}'), 1);
      assert.equal(get('refused_total{kind="bad_request"}'), 1);
      assert.equal(get('refused_total{kind="too_large"}'), 1);
      assert.equal(get("api_requests_total"), 5);
    } finally {
      for (const s of socks) s.close();
      await rtd.stop();
      auth.close();
      await redis.stop();
    }
  });
});

describe("Laravel figures in the heartbeat (daemon_status.laravel, for admin-fcgi)", () => {
  it("broadcasts, deliveries and each channel's subscribers, rewritten with the heartbeat", { timeout: 30000 }, async () => {
    const dir = (await import("./lib.mjs")).tempDir();
    const f = config(dir, { clients: [{ appId: "a", key: "k" }], subscribers: { redis: false } });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    const socks = [];
    try {
      for (let i = 0; i < 3; i++) socks.push(record(await connectSocket(makeClient(rtd))));
      for (const s of socks) s.emit("subscribe", { channel: "orders" });
      socks[0].emit("subscribe", { channel: 'news"<x>' });
      await sleep(200);
      const r = await fetch(`${rtd.url}/apps/a/events`, { method: "POST", headers: { Authorization: "Bearer k" },
        body: JSON.stringify({ channel: "orders", name: "E", data: { n: 1 } }) });
      assert.equal(r.status, 200);
      await eventually(async () => {
        const [row] = await query(rtd.db, "SELECT laravel FROM daemon_status");
        assert.deepEqual(JSON.parse(row.laravel), { broadcasts: 1, deliveries: 3, channels: { orders: 3, 'news"<x>': 1 } });
      }, { timeout: 20000, interval: 500, what: "the heartbeat's Laravel figures" });
    } finally {
      for (const s of socks) s.close();
      await rtd.stop();
    }
    // without --laravel-config the column stays NULL
    const plain = await startRtd({ db: rtd.db, dir });
    try {
      await sleep(5500);
      const [row] = await query(plain.db, "SELECT laravel FROM daemon_status");
      assert.equal(row.laravel, null);
    } finally {
      await plain.stop();
    }
  });
});

describe("Laravel figures in the heartbeat: bounded", () => {
  it("channels past 16 KiB of JSON are left out; the row is still written, valid", { timeout: 30000 }, async () => {
    const dir = (await import("./lib.mjs")).tempDir();
    const rtd = await startRtd({ args: ["--laravel-config", config(dir, { subscribers: { redis: false } })], dir });
    const socks = [];
    try {
      // 5 sockets x 100 channels (the per-socket limit) x ~45 bytes of JSON each: over 16 KiB
      for (let i = 0; i < 5; i++) {
        const s = record(await connectSocket(makeClient(rtd)));
        socks.push(s);
        for (let j = 0; j < 100; j++) s.emit("subscribe", { channel: `orders.${i}.${j}.${"z".repeat(24)}` });
      }
      await eventually(async () => {
        const [row] = await query(rtd.db, "SELECT laravel FROM daemon_status");
        assert.ok(row.laravel, "written");
        const n = Object.keys(JSON.parse(row.laravel).channels).length;
        assert.ok(n > 100 && n < 500, `${n} channels`);
        assert.ok(row.laravel.length < 16384);
      }, { timeout: 20000, interval: 500, what: "a bounded heartbeat" });
    } finally {
      for (const s of socks) s.close();
      await rtd.stop();
    }
  });
});

describe("Laravel HTTP API and HTTP subscriber", () => {
  it("apps/:appId status, channels, users, events with the clients' keys; 400/403 bodies", async () => {
    const dir = (await import("./lib.mjs")).tempDir();
    const f = config(dir, {
      clients: [{ appId: "app1", key: "k1" }], subscribers: { redis: false },
      apiOriginAllow: { allowCors: true, allowOrigin: "http://app.test", allowMethods: "GET, POST", allowHeaders: "Authorization" },
      headers: { "X-Extra": "1" },
    });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    const a = record(await connectSocket(makeClient(rtd)));
    const b = record(await connectSocket(makeClient(rtd)));
    try {
      a.emit("subscribe", { channel: "orders" });
      b.emit("subscribe", { channel: "orders" });
      b.emit("subscribe", { channel: "news" });
      await sleep(200);
      const api = async (p, { method = "GET", key = "k1", body, bearer = true } = {}) => {
        const url = `${rtd.url}/apps/${p}${!bearer && key ? (p.includes("?") ? "&" : "?") + "auth_key=" + key : ""}`;
        const r = await fetch(url, { method, headers: bearer && key ? { Authorization: `Bearer ${key}` } : {}, body });
        return { status: r.status, body: await r.text(), headers: r.headers };
      };
      const unauth = await api("app1/channels", { key: "bad" });
      assert.equal(unauth.status, 403);
      assert.equal(unauth.body, '{"error":"Unauthorized"}');
      assert.equal((await api("nope/channels")).status, 403);
      assert.equal((await api("app1/channels", { key: null })).status, 403);
      const ch = await api("app1/channels");
      assert.equal(ch.status, 200);
      assert.deepEqual(JSON.parse(ch.body), { channels: { orders: { subscription_count: 2, occupied: true }, news: { subscription_count: 1, occupied: true } } });
      assert.equal(ch.headers.get("access-control-allow-origin"), "http://app.test");
      assert.equal(ch.headers.get("x-extra"), "1");
      assert.deepEqual(JSON.parse((await api("app1/channels?filter_by_prefix=ne", { bearer: false })).body), { channels: { news: { subscription_count: 1, occupied: true } } });
      assert.deepEqual(JSON.parse((await api("app1/channels/orders")).body), { subscription_count: 2, occupied: true });
      assert.deepEqual(JSON.parse((await api("app1/channels/none")).body), { subscription_count: 0, occupied: false });
      assert.deepEqual(JSON.parse((await api("app1/channels/presence-x")).body), { subscription_count: 0, occupied: false, user_count: 0 });
      assert.deepEqual(JSON.parse((await api("app1/channels/presence-x/users")).body), { users: [] });
      const nu = await api("app1/channels/orders/users");
      assert.equal(nu.status, 400);
      assert.equal(nu.body, '{"error":"User list is only possible for Presence Channels"}');
      const st = JSON.parse((await api("app1/status")).body);
      assert.equal(st.subscription_count, 2);
      assert.equal(typeof st.uptime, "number");
      assert.ok(st.memory_usage.rss > 0);
      // the HTTP subscriber: data as JSON text (Pusher SDKs) or object; socket_id excluded
      const ev = await api("app1/events", { method: "POST", body: JSON.stringify({ channels: ["orders", "news"], name: "Shipped", data: '{"id":7}', socket_id: b.id }) });
      assert.equal(ev.status, 200);
      assert.equal(ev.body, '{"message":"ok"}');
      await eventually(() => {
        assert.deepEqual(a.all.at(-1), ["Shipped", "orders", { id: 7 }]);
        assert.ok(!b.all.some((e) => e[0] === "Shipped"));
      });
      await api("app1/events", { method: "POST", body: JSON.stringify({ channel: "news", name: "N", data: { x: 1 } }) });
      await eventually(() => assert.deepEqual(b.all.at(-1), ["N", "news", { x: 1 }]));
      for (const body of [JSON.stringify({ channel: "news", name: "N" }), JSON.stringify({ channel: "news", name: "N", data: "" }), JSON.stringify({ name: "N", data: 1 })]) {
        const r = await api("app1/events", { method: "POST", body });
        assert.equal(r.status, 400, body);
        assert.equal(r.body, '{"error":"Event must include channel, event name and data"}');
      }
      const bad = await api("app1/events", { method: "POST", body: "{nope" });
      assert.equal(bad.status, 400);
      assert.equal((await api("app1/events", { method: "POST", key: "bad", body: "{}" })).status, 403);
      assert.equal(rtd.exit, null, "malformed JSON does not crash rtd");
    } finally {
      a.close();
      b.close();
      await rtd.stop();
    }
  });
});

describe("Pusher's signed HTTP publish API", () => {
  it("POST /apps/:id/events and batch_events signed with the client's secret; bad, stale and replayed signatures refused", async () => {
    const crypto = await import("node:crypto");
    const dir = (await import("./lib.mjs")).tempDir();
    const f = config(dir, { clients: [{ appId: "42", key: "pk", secret: "s3cret" }, { appId: "43", key: "nosecret" }], subscribers: { redis: false } });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    const a = record(await connectSocket(makeClient(rtd)));
    // what pusher-http-php / pusher-http-node do
    const signed = (method, p, body, { key = "pk", secret = "s3cret", ts = Math.floor(Date.now() / 1000), extra = {} } = {}) => {
      const q = { auth_key: key, auth_timestamp: String(ts), auth_version: "1.0", ...extra };
      if (body) q.body_md5 = crypto.createHash("md5").update(body).digest("hex");
      const s = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join("&");
      q.auth_signature = crypto.createHmac("sha256", secret).update(`${method}\n${p}\n${s}`).digest("hex");
      return `${rtd.url}${p}?${new URLSearchParams(q)}`;
    };
    try {
      a.emit("subscribe", { channel: "orders" });
      await sleep(200);
      const body = JSON.stringify({ name: "App\\Events\\Paid", data: JSON.stringify({ n: 1 }), channels: ["orders"] });
      const url = signed("POST", "/apps/42/events", body);
      let r = await fetch(url, { method: "POST", body, headers: { "Content-Type": "application/json" } });
      assert.equal(r.status, 200);
      assert.equal(await r.text(), "{}");
      await eventually(() => assert.deepEqual(a.all.at(-1), ["App\\Events\\Paid", "orders", { n: 1 }]));
      // the same request again is a replay
      assert.equal((await fetch(url, { method: "POST", body })).status, 403);
      // wrong secret, body changed after signing, stale timestamp, client without a secret
      assert.equal((await fetch(signed("POST", "/apps/42/events", body, { secret: "x" }), { method: "POST", body })).status, 403);
      assert.equal((await fetch(signed("POST", "/apps/42/events", body), { method: "POST", body: body.replace("Paid", "Pai") })).status, 403);
      assert.equal((await fetch(signed("POST", "/apps/42/events", body, { ts: Math.floor(Date.now() / 1000) - 3600 }), { method: "POST", body })).status, 403);
      assert.equal((await fetch(signed("POST", "/apps/43/events", body, { key: "nosecret" }), { method: "POST", body })).status, 403);
      // batch_events
      const batch = JSON.stringify({ batch: [{ channel: "orders", name: "B1", data: "{}" }, { channel: "orders", name: "B2", data: "[2]" }] });
      r = await fetch(signed("POST", "/apps/42/batch_events", batch), { method: "POST", body: batch });
      assert.equal(r.status, 200);
      await eventually(() => assert.deepEqual(a.all.slice(-2), [["B1", "orders", {}], ["B2", "orders", [2]]]));
      const badBatch = JSON.stringify({ batch: [{ channel: "orders", name: "B3" }] });
      assert.equal((await fetch(signed("POST", "/apps/42/batch_events", badBatch), { method: "POST", body: badBatch })).status, 400);
      // a signed GET
      r = await fetch(signed("GET", "/apps/42/channels", null, { extra: { filter_by_prefix: "ord" } }));
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { channels: { orders: { subscription_count: 1, occupied: true } } });
    } finally {
      a.close();
      await rtd.stop();
    }
  });
});

describe("Laravel's own RedisBroadcaster (PHP, Debian's php-illuminate-broadcasting)", () => {
  it("broadcast() from PHP reaches Echo subscribers as (event, channel, data); socket excluded", async () => {
    const { execFileSync } = await import("node:child_process");
    const redis = await startRedis();
    const dir = redis.dir;
    const prefix = "laravel_database_";
    const f = config(dir, { databaseConfig: { redis: { host: "127.0.0.1", port: redis.port, keyPrefix: prefix } } });
    const rtd = await startRtd({ args: ["--laravel-config", f], dir: (await import("./lib.mjs")).tempDir() });
    const a = record(await connectSocket(makeClient(rtd)));
    const b = record(await connectSocket(makeClient(rtd)));
    try {
      await eventually(async () => assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 1), { timeout: 10000 });
      a.emit("subscribe", { channel: "orders.1" });
      b.emit("subscribe", { channel: "orders.1" });
      await sleep(200);
      const php = (event, payload) => execFileSync("php", [path.join(TESTS_DIR, "laravel/publish.php"), "127.0.0.1", String(redis.port), prefix, "orders.1", event, JSON.stringify(payload)], { encoding: "utf8" });
      assert.equal(php("App\\Events\\OrderShipped", { order: { id: 1 } }).trim(), "ok");
      await eventually(() => {
        for (const s of [a, b]) assert.deepEqual(s.all.at(-1), ["App\\Events\\OrderShipped", "orders.1", { order: { id: 1 } }]);
      });
      // toOthers(): Laravel puts the X-Socket-ID in "socket"
      php("Again", { n: 2, socket: a.id });
      await eventually(() => assert.equal(b.all.at(-1)[0], "Again"));
      assert.deepEqual(b.all.at(-1)[2].n, 2);
      await sleep(200);
      assert.ok(!a.all.some((e) => e[0] === "Again"));
    } finally {
      a.close();
      b.close();
      await rtd.stop();
      await redis.stop();
    }
  });
});

describe("Laravel's own /broadcasting/auth (php -S, RedisBroadcaster::auth)", () => {
  it("private allowed and denied, presence here/joining/leaving from Laravel's channel_data", async () => {
    const { spawn } = await import("node:child_process");
    const { freePort } = await import("../js/lib/server.mjs");
    const { tryConnect } = await import("./lib.mjs");
    const port = await freePort();
    const php = spawn("php", ["-S", `127.0.0.1:${port}`, path.join(TESTS_DIR, "laravel/auth.php")], { stdio: ["ignore", "ignore", "pipe"] });
    let phpLog = "";
    php.stderr.setEncoding("utf8").on("data", (d) => (phpLog = (phpLog + d).slice(-5000)));
    const phpExit = new Promise((r) => php.once("exit", r));
    const dir = (await import("./lib.mjs")).tempDir();
    let rtd;
    const socks = [];
    try {
      await eventually(async () => assert.ok(await tryConnect(port)), { timeout: 10000, what: "php -S" });
      const f = config(dir, { authHost: `http://127.0.0.1:${port}`, subscribers: { redis: false } });
      rtd = await startRtd({ args: ["--laravel-config", f], dir });
      const sock = async (id) => {
        const s = record(await connectSocket(makeClient(rtd)));
        s.bearer = { Authorization: `Bearer ${id}` };
        socks.push(s);
        return s;
      };
      const u3 = await sock(3);
      const guest = record(await connectSocket(makeClient(rtd)));
      socks.push(guest);
      u3.emit("subscribe", { channel: "private-orders.1", auth: { headers: u3.bearer } });
      u3.emit("subscribe", { channel: "private-orders.2", auth: { headers: u3.bearer } });
      guest.emit("subscribe", { channel: "private-orders.1", auth: { headers: {} } });
      await eventually(() => {
        assert.ok(u3.all.some((e) => e[0] === "subscription_error" && e[1] === "private-orders.2" && e[2] === 403), JSON.stringify(u3.all));
        assert.ok(guest.all.some((e) => e[0] === "subscription_error" && e[1] === "private-orders.1" && e[2] === 403), JSON.stringify(guest.all));
      }, { timeout: 10000 });
      const ch = await (await fetch(`${rtd.url}/apps/x/channels`)).status;
      assert.equal(ch, 403); // no clients configured
      // presence from Laravel's {"channel_data":{"user_id","user_info"}}
      u3.emit("subscribe", { channel: "presence-room", auth: { headers: u3.bearer } });
      await eventually(() => assert.deepEqual(u3.all.find((e) => e[0] === "presence:subscribed"),
        ["presence:subscribed", "presence-room", [{ user_id: 3, user_info: { name: "u3" }, socketId: u3.id }]]), { timeout: 10000 });
      const u4 = await sock(4);
      u4.emit("subscribe", { channel: "presence-room", auth: { headers: u4.bearer } });
      await eventually(() => assert.deepEqual(u3.all.at(-1), ["presence:joining", "presence-room", { user_id: 4, user_info: { name: "u4" }, socketId: u4.id }]), { timeout: 10000 });
      u4.close();
      await eventually(() => assert.deepEqual(u3.all.at(-1), ["presence:leaving", "presence-room", { user_id: 4, user_info: { name: "u4" } }]));
    } finally {
      for (const s of socks) s.close();
      if (rtd) await rtd.stop();
      php.kill("SIGKILL");
      await phpExit;
    }
  });
});
