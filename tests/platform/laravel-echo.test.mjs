// Laravel Echo (npm laravel-echo 2.5.0, broadcaster 'socket.io') against rtd --laravel-config
// and against npm laravel-echo-server 1.6.3, the server rtd replaces, as the reference: the
// same scenarios, with the same Laravel parts (Debian's RedisBroadcaster publishing through a
// real redis-server, RedisBroadcaster::auth under `php -S` for /broadcasting/auth).
// laravel-echo-server speaks socket.io 2 only, so socket.io-client 4.8 runs only against rtd,
// which serves both on one port (--allow-eio3). Where rtd deliberately differs from the
// reference (its crashes), the scenario runs against rtd only and says why.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import Echo from "laravel-echo";
import Pusher from "pusher";
import io2 from "sio2";
import { io as io4 } from "socket.io-client";
import { freePort } from "../js/lib/server.mjs";
import { eventually, HOST, metrics, sleep, startRtd, TESTS_DIR, tryConnect } from "./lib.mjs";
import { startRedis } from "./redis.mjs";

const PREFIX = "laravel_database_";
const APP = { appId: "app1", key: "k1", secret: "s1" };
const SLOW = { timeout: 15000 };

// php -S serving tests/laravel/auth.php: Laravel's RedisBroadcaster::auth with channel
// callbacks (orders.{id}: id 1 for anyone, any id for user 9; room: presence, {name: u<id>}).
async function startPhpAuth() {
  const port = await freePort();
  const proc = spawn("php", ["-S", `${HOST}:${port}`, path.join(TESTS_DIR, "laravel/auth.php")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (log = (log + d).slice(-5000)));
  const exited = new Promise((r) => proc.once("exit", r));
  await eventually(async () => assert.ok(await tryConnect(port)), { timeout: 10000, what: "php -S" });
  return { url: `http://${HOST}:${port}`, log: () => log, stop: async () => { proc.kill("SIGKILL"); await exited; } };
}

function echoConfig(redis, authUrl, extra = {}) {
  return {
    authHost: authUrl, authEndpoint: "/broadcasting/auth", clients: [{ appId: APP.appId, key: APP.key }],
    database: "redis", databaseConfig: { redis: { host: HOST, port: redis.port, keyPrefix: PREFIX } },
    devMode: !!process.env.LES_DEBUG, host: HOST, protocol: "http", subscribers: { http: true, redis: true }, ...extra,
  };
}

// laravel-echo-server 1.6.3 as a child process, its laravel-echo-server.json in a temp dir.
async function startReference(redis, authUrl) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "rtd-les-"));
  const port = await freePort();
  writeFileSync(path.join(dir, "laravel-echo-server.json"), JSON.stringify(echoConfig(redis, authUrl, { port })));
  const proc = spawn(process.execPath, [path.join(TESTS_DIR, "node_modules/laravel-echo-server/bin/server.js"), "start", "--dir", dir],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (d) => (log = (log + d).slice(-20000));
  proc.stdout.setEncoding("utf8").on("data", keep);
  proc.stderr.setEncoding("utf8").on("data", keep);
  const exited = new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  let exit = null;
  exited.then((e) => (exit = e));
  await eventually(async () => assert.ok(/Server ready/.test(log) && (await tryConnect(port))), { timeout: 15000, what: "laravel-echo-server" });
  // its Redis subscriber is up once its PSUBSCRIBE is
  await eventually(async () => assert.ok(await redis.command(["PUBSUB", "NUMPAT"]) >= 1), { timeout: 10000, what: "its PSUBSCRIBE" });
  return {
    url: `http://${HOST}:${port}`, log: () => log, alive: () => exit === null,
    stop: async () => { if (exit === null) proc.kill("SIGTERM"); await exited; rmSync(dir, { recursive: true, force: true }); },
  };
}

async function startRtdLaravel(redis, authUrl) {
  const rtd = await startRtd({ args: ["--allow-eio3", "--laravel-config", writeConfig(echoConfig(redis, authUrl, { clients: [APP] }))] });
  await eventually(async () => assert.ok(await redis.command(["PUBSUB", "NUMPAT"]) >= 1), { timeout: 10000, what: "rtd's PSUBSCRIBE" });
  return { url: rtd.url, log: () => rtd.stderr, alive: () => rtd.exit === null, stop: () => rtd.stop(), rtd };
}

function writeConfig(obj) {
  const f = path.join(mkdtempSync(path.join(os.tmpdir(), "rtd-lvcfg-")), "laravel-echo-server.json");
  writeFileSync(f, JSON.stringify(obj));
  return f;
}

const CLIENTS = { "socket.io-client 2.5": io2, "socket.io-client 4.8": io4 };
const TARGETS = [
  { name: "laravel-echo-server 1.6.3 (reference)", reference: true, start: startReference, clients: ["socket.io-client 2.5"] },
  { name: "rtd --laravel-config", reference: false, start: startRtdLaravel, clients: ["socket.io-client 2.5", "socket.io-client 4.8"] },
];

// The raw events each tab got in a scenario, socket ids replaced by tab names: rtd's must
// equal the reference's, frame for frame (filled by the reference's run, which comes first).
const FRAMES = new Map();
function rawEvents(e) {
  const s = e.connector.socket;
  s.raw = [];
  s.rawId = s.id; // a closed socket has no id any more
  if (s.onAny) s.onAny((...a) => s.raw.push(a));
  else { // socket.io-client 2 has no onAny
    const onevent = s.onevent;
    s.onevent = function (packet) { s.raw.push(packet.data); return onevent.call(this, packet); };
  }
}
// Records (before) or compares (after) a scenario's frames against the reference's.
function sameFrames(target, name, tabs) {
  const frames = normalized(tabs);
  if (target.reference) FRAMES.set(name, frames);
  else if (FRAMES.has(name)) assert.deepEqual(frames, FRAMES.get(name), `${name}: the same frames as laravel-echo-server`);
}
function normalized(tabs) {
  const names = new Map(Object.entries(tabs).map(([n, e]) => [e.connector.socket.rawId, n]));
  const fix = (v) => JSON.parse(JSON.stringify(v, (k, x) => (typeof x === "string" && names.has(x) ? `<${names.get(x)}>` : x)));
  return Object.fromEntries(Object.entries(tabs).map(([n, e]) => [n, fix(e.connector.socket.raw)]));
}

// Laravel's RedisBroadcaster::broadcast from PHP (tests/laravel/publish.php)
function phpPublish(redis, channel, event, payload) {
  return new Promise((resolve, reject) => {
    execFile("php", [path.join(TESTS_DIR, "laravel/publish.php"), HOST, String(redis.port), PREFIX, channel, event, JSON.stringify(payload)],
      { encoding: "utf8" }, (err, out) => (err ? reject(err) : resolve(out.trim())));
  });
}

for (const target of TARGETS) {
  for (const clientName of target.clients) {
    describe(`Laravel Echo 2.5 with ${clientName} against ${target.name}`, () => {
      let redis, php, server;
      const echos = [];
      before(async () => {
        redis = await startRedis();
        php = await startPhpAuth();
        server = await target.start(redis, php.url);
      });
      // every tab a test opened is closed after it, passed or failed
      afterEach(async () => {
        for (const e of echos.splice(0)) e.disconnect();
        await eventually(async () => assert.equal((await api("status")).json.subscription_count, 0), { timeout: 10000, what: "every tab gone" });
      });
      after(async () => {
        await sleep(100);
        const alive = server ? server.alive() : true;
        if (server) await server.stop();
        if (php) await php.stop();
        if (redis) await redis.stop();
        assert.ok(alive, `${target.name} died:\n${server?.log()}`);
      });

      // One browser tab: Echo with the client under test, its own connection (forceNew), its
      // own auth.headers (Echo's default one is shared by every Echo of a process, and it
      // writes the bearer token into it: one page has one Echo, a test has many).
      async function tab({ user, ...opts } = {}) {
        const e = new Echo({
          broadcaster: "socket.io", host: server.url, client: CLIENTS[clientName], transports: ["websocket"],
          auth: { headers: {} }, forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, bearerToken: user === undefined ? null : String(user), ...opts,
        });
        echos.push(e);
        const s = e.connector.socket;
        s.errors = [];
        s.on("subscription_error", (ch, status) => s.errors.push([ch, status]));
        if (!s.connected) await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
        return e;
      }
      const close = (e) => { e.disconnect(); echos.splice(echos.indexOf(e), 1); };
      const api = async (p, { method = "GET", body, key = APP.key } = {}) => {
        const r = await fetch(`${server.url}/apps/${APP.appId}/${p}`, { method, body, headers: key ? { Authorization: `Bearer ${key}` } : {} });
        const text = await r.text();
        return { status: r.status, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
      };
      const count = async (ch) => (await api(`channels/${encodeURIComponent(ch)}`)).json.subscription_count;
      const waitCount = (ch, n) => eventually(async () => assert.equal(await count(ch), n), { timeout: 10000, what: `${n} in ${ch}` });
      const redisPublish = (ch, msg) => redis.command(["PUBLISH", PREFIX + ch, JSON.stringify(msg)]);

      it("public channel: listen() with the namespace and with a leading dot; Redis, Laravel's RedisBroadcaster, the HTTP subscriber", SLOW, async () => {
        const a = await tab();
        const b = await tab();
        rawEvents(a);
        rawEvents(b);
        const got = { a: [], b: [], dot: [] };
        a.channel("orders").listen("OrderShipped", (d) => got.a.push(d)).listen(".order.paid", (d) => got.dot.push(d));
        b.channel("orders").listen("OrderShipped", (d) => got.b.push(d));
        b.channel("other").listen("OrderShipped", (d) => got.b.push({ wrong: d }));
        await waitCount("orders", 2);
        await redisPublish("orders", { event: "App\\Events\\OrderShipped", data: { id: 1 }, socket: null });
        assert.equal(await phpPublish(redis, "orders", "App\\Events\\OrderShipped", { order: { id: 2 } }), "ok");
        await redisPublish("orders", { event: "order.paid", data: { id: 3 }, socket: null });
        const r = await api("events", { method: "POST", body: JSON.stringify({ channel: "orders", name: "App\\Events\\OrderShipped", data: JSON.stringify({ id: 4 }) }) });
        assert.deepEqual([r.status, r.json], [200, { message: "ok" }]);
        await eventually(() => {
          for (const k of ["a", "b"]) assert.deepEqual(got[k], [{ id: 1 }, { order: { id: 2 } }, { id: 4 }]);
          assert.deepEqual(got.dot, [{ id: 3 }]);
        }, { timeout: 10000 });
        // leave(): no more events
        b.leave("orders");
        await waitCount("orders", 1);
        await redisPublish("orders", { event: "App\\Events\\OrderShipped", data: { id: 5 }, socket: null });
        await eventually(() => assert.equal(got.a.length, 4));
        await sleep(200);
        assert.equal(got.b.length, 3);
        sameFrames(target, "public", { a, b });
        close(a);
        close(b);
      });

      it("private channel: allowed by Laravel's channel callback, denied with subscription_error(channel, 403)", SLOW, async () => {
        const u3 = await tab({ user: 3 });
        const guest = await tab();
        rawEvents(u3);
        rawEvents(guest);
        const got = { ok: [], denied: [], guest: [] };
        u3.private("orders.1").listen("Paid", (d) => got.ok.push(d));
        u3.private("orders.2").listen("Paid", (d) => got.denied.push(d));
        guest.private("orders.1").listen("Paid", (d) => got.guest.push(d));
        await eventually(() => {
          assert.deepEqual(u3.connector.socket.errors, [["private-orders.2", 403]]);
          assert.deepEqual(guest.connector.socket.errors, [["private-orders.1", 403]]);
        }, { timeout: 10000 });
        await waitCount("private-orders.1", 1);
        assert.equal(await count("private-orders.2"), 0);
        await phpPublish(redis, "private-orders.1", "App\\Events\\Paid", { n: 1 });
        await phpPublish(redis, "private-orders.2", "App\\Events\\Paid", { n: 2 });
        await eventually(() => assert.deepEqual(got.ok, [{ n: 1 }]));
        await sleep(200);
        assert.deepEqual([got.denied, got.guest], [[], []]);
        sameFrames(target, "private", { u3, guest });
        close(u3);
        close(guest);
      });

      it("presence: here, joining, leaving over two tabs of one user (leaving only when the last tab goes); users API", SLOW, async () => {
        const seen = { a1: [], b: [] };
        const a1 = await tab({ user: 1 });
        rawEvents(a1);
        const here1 = new Promise((res) => a1.join("room").here(res).joining((u) => seen.a1.push(["joining", u])).leaving((u) => seen.a1.push(["leaving", u])));
        assert.deepEqual(await here1, [{ name: "u1" }]);
        const b = await tab({ user: 2 });
        rawEvents(b);
        const hereB = new Promise((res) => b.join("room").here(res).joining((u) => seen.b.push(["joining", u])).leaving((u) => seen.b.push(["leaving", u])));
        assert.deepEqual(await hereB, [{ name: "u2" }, { name: "u1" }]);
        await eventually(() => assert.deepEqual(seen.a1, [["joining", { name: "u2" }]]));
        // a second tab of user 1: its here() has both users, nobody sees joining again
        const a2 = await tab({ user: 1 });
        rawEvents(a2);
        const here2 = await new Promise((res) => a2.join("room").here(res));
        assert.deepEqual(here2.map((u) => u.name).sort(), ["u1", "u2"]);
        await waitCount("presence-room", 3);
        const users = await api("channels/presence-room/users");
        assert.equal(users.status, 200);
        assert.deepEqual(users.json.users.sort((x, y) => x.id - y.id), [{ id: 1, user_info: { name: "u1" } }, { id: 2, user_info: { name: "u2" } }]);
        assert.deepEqual((await api("channels/presence-room")).json, { subscription_count: 3, occupied: true, user_count: 2 });
        // the first tab of user 1 closes: user 1 is still there
        close(a1);
        await waitCount("presence-room", 2);
        await sleep(300);
        assert.deepEqual(seen.b, []);
        // the last one goes (leave()): leaving, once
        a2.leave("room");
        await eventually(() => assert.deepEqual(seen.b, [["leaving", { name: "u1" }]]), { timeout: 10000 });
        await sleep(200);
        assert.deepEqual(seen.b, [["leaving", { name: "u1" }]]);
        assert.deepEqual((await api("channels/presence-room/users")).json, { users: [{ id: 2, user_info: { name: "u2" } }] });
        sameFrames(target, "presence", { a1, a2, b });
        close(a2);
        close(b);
      });

      it("whisper: client events on a private channel reach the other members, not the sender nor non-members", SLOW, async () => {
        const a = await tab({ user: 3 });
        const b = await tab({ user: 4 });
        const c = await tab({ user: 5 });
        const got = { a: [], b: [], c: [] };
        a.private("orders.1").listenForWhisper("typing", (d) => got.a.push(d));
        b.private("orders.1").listenForWhisper("typing", (d) => got.b.push(d));
        c.channel("orders.1").listenForWhisper("typing", (d) => got.c.push(d)); // public "orders.1", another channel
        await waitCount("private-orders.1", 2);
        await waitCount("orders.1", 1);
        a.private("orders.1").whisper("typing", { name: "ann" });
        await eventually(() => assert.deepEqual(got.b, [{ name: "ann" }]));
        // from a socket that is not in the channel: dropped
        c.connector.socket.emit("client event", { channel: "private-orders.1", event: "client-typing", data: { name: "eve" } });
        await sleep(300);
        assert.deepEqual(got, { a: [], b: [{ name: "ann" }], c: [] });
        close(a);
        close(b);
        close(c);
      });

      it("toOthers(): the X-Socket-ID's socket is left out (RedisBroadcaster's socket, the HTTP subscriber's socket_id)", SLOW, async () => {
        const me = await tab();
        const other = await tab();
        rawEvents(me);
        rawEvents(other);
        const got = { me: [], other: [] };
        me.channel("orders").listen("Shipped", (d) => got.me.push(d.n));
        other.channel("orders").listen("Shipped", (d) => got.other.push(d.n));
        await waitCount("orders", 2);
        // what an axios request with Echo's X-Socket-Id interceptor makes Laravel publish
        await phpPublish(redis, "orders", "App\\Events\\Shipped", { n: 1, socket: me.socketId() });
        await api("events", { method: "POST", body: JSON.stringify({ channels: ["orders"], name: "App\\Events\\Shipped", data: { n: 2 }, socket_id: me.socketId() }) });
        // a socket id nobody has: everyone gets it
        await redisPublish("orders", { event: "App\\Events\\Shipped", data: { n: 3 }, socket: "nobody" });
        await eventually(() => assert.deepEqual(got.other, [1, 2, 3]));
        await sleep(200);
        assert.deepEqual(got.me, [3]);
        sameFrames(target, "toOthers", { me, other });
        close(me);
        close(other);
      });

      it("the HTTP API: status, channels, channel, users; 403 and 400 bodies", SLOW, async () => {
        const a = await tab({ user: 7 });
        const b = await tab();
        a.channel("news");
        b.channel("news");
        b.channel("sport");
        a.join("room");
        await waitCount("news", 2);
        await waitCount("presence-room", 1);
        const ch = await api("channels");
        assert.equal(ch.status, 200);
        assert.deepEqual(ch.json, { channels: { news: { subscription_count: 2, occupied: true }, sport: { subscription_count: 1, occupied: true }, "presence-room": { subscription_count: 1, occupied: true } } });
        assert.deepEqual((await api("channels?filter_by_prefix=presence-")).json, { channels: { "presence-room": { subscription_count: 1, occupied: true } } });
        assert.deepEqual((await api("channels/sport")).json, { subscription_count: 1, occupied: true });
        assert.deepEqual((await api("channels/nothing")).json, { subscription_count: 0, occupied: false });
        assert.deepEqual((await api("channels/presence-room/users")).json, { users: [{ id: 7, user_info: { name: "u7" } }] });
        const st = await api("status");
        assert.equal(st.status, 200);
        assert.deepEqual(Object.keys(st.json), ["subscription_count", "uptime", "memory_usage"]);
        assert.equal(st.json.subscription_count, 2);
        assert.equal(typeof st.json.uptime, "number");
        assert.deepEqual(Object.keys(st.json.memory_usage), ["rss", "heapTotal", "heapUsed", "external", "arrayBuffers"]);
        for (const v of Object.values(st.json.memory_usage)) assert.equal(typeof v, "number");
        // GET / (a load balancer's health check) and a channel name with a slash
        const root = await fetch(`${server.url}/`);
        assert.deepEqual([root.status, await root.text()], [200, "OK"]);
        assert.equal((await api("channels/news/users/x")).status, 404);
        const users = await api("channels/news/users");
        assert.deepEqual([users.status, users.text], [400, '{"error":"User list is only possible for Presence Channels"}']);
        for (const key of ["wrong", null]) {
          const r = await api("channels", { key });
          assert.deepEqual([r.status, r.text], [403, '{"error":"Unauthorized"}']);
        }
        const bad = await api("events", { method: "POST", body: JSON.stringify({ channel: "news", name: "X" }) });
        assert.deepEqual([bad.status, bad.text], [400, '{"error":"Event must include channel, event name and data"}']);
        close(a);
        close(b);
      });

      it("reconnect: Echo re-subscribes its channels on the new connection", SLOW, async () => {
        const e = await tab({ user: 3 });
        const got = [];
        e.channel("orders").listen("Shipped", (d) => got.push(d.n));
        e.private("orders.1").listen("Shipped", (d) => got.push(d.n));
        await waitCount("orders", 1);
        await waitCount("private-orders.1", 1);
        const s = e.connector.socket;
        const before = e.socketId();
        const reconnected = new Promise((r) => s.io.once("reconnect", r));
        s.io.engine.close(); // the connection drops; the client reconnects by itself
        await reconnected;
        assert.notEqual(e.socketId(), before);
        await waitCount("orders", 1);
        await waitCount("private-orders.1", 1);
        await redisPublish("orders", { event: "App\\Events\\Shipped", data: { n: 1 }, socket: null });
        await phpPublish(redis, "private-orders.1", "App\\Events\\Shipped", { n: 2 });
        await eventually(() => assert.deepEqual(got, [1, 2]));
        close(e);
      });

      it("the handshake's Cookie goes to /broadcasting/auth: Laravel's session cookie authenticates", SLOW, async () => {
        // no Authorization: only the laravel_session cookie of the connection's handshake says who it is
        const e = await tab({ extraHeaders: { Cookie: "laravel_session=user-9" } });
        const here = await new Promise((res) => e.join("room").here(res));
        assert.deepEqual(here, [{ name: "u9" }]);
        e.private("orders.2"); // orders.{id}: any id for user 9
        await waitCount("private-orders.2", 1);
        assert.deepEqual(e.connector.socket.errors, []);
        close(e);
      });

      if (!target.reference) {
        // laravel-echo-server has no Pusher API (it ignores the signature: anyone with the key
        // publishes); rtd checks Pusher's signature, so the `pusher` SDK (what Laravel's
        // pusher and reverb drivers are built like) broadcasts to Echo's Socket.IO clients.
        it("the Pusher server SDK (npm pusher 5.3) publishes, signed, to Echo's channels", SLOW, async () => {
          const e = await tab({ user: 1 });
          const got = [];
          e.channel("orders").listen("Shipped", (d) => got.push(["orders", d]));
          e.join("room").listen("Shipped", (d) => got.push(["room", d]));
          await waitCount("orders", 1);
          await waitCount("presence-room", 1);
          const u = new URL(server.url);
          const pusher = new Pusher({ appId: APP.appId, key: APP.key, secret: APP.secret, host: u.hostname, port: u.port, useTLS: false });
          let r = await pusher.trigger(["orders", "presence-room"], "App\\Events\\Shipped", { n: 1 });
          assert.equal(r.status, 200);
          r = await pusher.triggerBatch([{ channel: "orders", name: "App\\Events\\Shipped", data: { n: 2 } }]);
          assert.equal(r.status, 200);
          await eventually(() => assert.deepEqual(got.sort((x, y) => x[1].n - y[1].n || (x[0] < y[0] ? -1 : 1)),
            [["orders", { n: 1 }], ["room", { n: 1 }], ["orders", { n: 2 }]]));
          r = await pusher.get({ path: "/channels", params: { filter_by_prefix: "presence-" } });
          assert.deepEqual(await r.json(), { channels: { "presence-room": { subscription_count: 1, occupied: true } } });
          r = await pusher.get({ path: "/channels/presence-room/users" });
          assert.deepEqual(await r.json(), { users: [{ id: 1, user_info: { name: "u1" } }] });
          // a wrong secret is refused
          const wrong = new Pusher({ appId: APP.appId, key: APP.key, secret: "nope", host: u.hostname, port: u.port, useTLS: false });
          await assert.rejects(wrong.trigger("orders", "App\\Events\\Shipped", { n: 3 }), (err) => err.status === 403);
          close(e);
        });

        // laravel-echo-server crashes on these (an unhandled rejection on Node >= 15 for a
        // presence leave without a member, tlaverdure/laravel-echo-server#509; a throw in the
        // HTTP subscriber's 'end' handler on malformed JSON): rtd refuses them and goes on.
        it("input that crashes the reference: leaving a presence channel never joined, malformed JSON to the HTTP subscriber", SLOW, async () => {
          const e = await tab({ user: 1 });
          const got = [];
          e.channel("orders").listen("Shipped", (d) => got.push(d.n));
          await waitCount("orders", 1);
          e.connector.socket.emit("unsubscribe", { channel: "presence-room", auth: {} });
          const bad = await api("events", { method: "POST", body: "{not json" });
          assert.equal(bad.status, 400);
          await redis.command(["PUBLISH", PREFIX + "orders", "{not json"]);
          await redisPublish("orders", { event: "App\\Events\\Shipped", data: { n: 1 }, socket: null });
          await eventually(() => assert.deepEqual(got, [1]));
          assert.ok(server.alive());
          close(e);
        });
      }
    });
  }
}

// Two rtd nodes with the same laravel-echo-server.json (database "redis"): presence members
// are shared through Redis, so Echo users agree whichever node they are on. laravel-echo-server
// keeps members per process (its removeInactive drops other nodes' members), so this runs
// against rtd only.
describe("Laravel Echo presence across two rtd nodes sharing one Redis", () => {
  it("here/joining/leaving agree across nodes; leaving only when a user's last socket on any node goes; a dead node's members go", { timeout: 90000 }, async () => {
    const redis = await startRedis();
    const php = await startPhpAuth();
    const cfg = writeConfig(echoConfig(redis, php.url, { clients: [APP] }));
    const start = () => startRtd({ args: ["--allow-eio3", "--laravel-config", cfg, "--redis", redis.url] });
    const nodes = { A: await start(), B: await start() };
    await eventually(async () => assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 2), { timeout: 10000, what: "both PSUBSCRIBEs" });
    const echos = [];
    const tab = async (node, user, client = io4) => {
      const e = new Echo({ broadcaster: "socket.io", host: nodes[node].url, client, transports: ["websocket"], forceNew: true,
        reconnection: false, auth: { headers: {} }, bearerToken: String(user) });
      echos.push(e);
      const s = e.connector.socket;
      if (!s.connected) await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
      e.seen = [];
      e.here = new Promise((res) => e.join("room").here(res)
        .joining((u) => e.seen.push(["joining", u.name])).leaving((u) => e.seen.push(["leaving", u.name])));
      e.here.then((h) => (e.hereNames = h.map((u) => u.name)));
      await e.here;
      return e;
    };
    const users = async (node) => {
      const r = await fetch(`${nodes[node].url}/apps/${APP.appId}/channels/presence-room/users`, { headers: { Authorization: `Bearer ${APP.key}` } });
      assert.equal(r.status, 200);
      return (await r.json()).users.map((u) => u.id).sort();
    };
    try {
      const a1 = await tab("A", 1);
      assert.deepEqual(a1.hereNames, ["u1"]);
      // user 2 on node B sees user 1 of node A in here(); user 1 sees joining
      const b2 = await tab("B", 2, io2);
      assert.deepEqual(b2.hereNames, ["u2", "u1"]);
      await eventually(() => assert.deepEqual(a1.seen, [["joining", "u2"]]));
      // user 1's second tab, on node B: no joining anywhere
      const b1 = await tab("B", 1);
      assert.deepEqual(b1.hereNames.sort(), ["u1", "u2"]);
      const a3 = await tab("A", 3);
      assert.deepEqual(a3.hereNames.sort(), ["u1", "u2", "u3"]);
      await eventually(() => assert.deepEqual(b2.seen, [["joining", "u3"]]));
      assert.deepEqual(await users("A"), [1, 2, 3]);
      assert.deepEqual(await users("B"), [1, 2, 3]);
      const info = await (await fetch(`${nodes.B.url}/apps/${APP.appId}/channels/presence-room`, { headers: { Authorization: `Bearer ${APP.key}` } })).json();
      assert.deepEqual(info, { subscription_count: 2, occupied: true, user_count: 3 }); // sockets on B, users everywhere
      // user 1's tab on A goes: still on B, so nobody sees leaving
      a1.disconnect();
      await sleep(500);
      assert.deepEqual([b2.seen, a3.seen], [[["joining", "u3"]], []]);
      // the last one (on B) goes: leaving, on both nodes, once
      b1.leave("room");
      await eventually(() => {
        assert.deepEqual(b2.seen, [["joining", "u3"], ["leaving", "u1"]]);
        assert.deepEqual(a3.seen, [["leaving", "u1"]]);
      }, { timeout: 10000 });
      // the HTTP subscriber (and Pusher's API) of one node reaches every node's sockets, once
      const got = [];
      a3.join("room").listen("Shipped", (d) => got.push(["A", d.n]));
      b2.join("room").listen("Shipped", (d) => got.push(["B", d.n]));
      const r = await fetch(`${nodes.B.url}/apps/${APP.appId}/events`, { method: "POST", headers: { Authorization: `Bearer ${APP.key}` },
        body: JSON.stringify({ channel: "presence-room", name: "App\\Events\\Shipped", data: { n: 1 }, socket_id: b2.socketId() }) });
      assert.equal(r.status, 200);
      await eventually(() => assert.deepEqual(got, [["A", 1]]));
      await sleep(300);
      assert.deepEqual(got, [["A", 1]], "not to the excluded socket, not twice");
      const m = (await metrics(nodes.B)).samples;
      assert.equal(m.get('rtd_laravel_broadcasts_received_total{source="http"}'), 1);
      assert.equal(m.get('rtd_laravel_broadcasts_received_total{source="redis"}'), 0, "its own fan-out is not Laravel's");
      // node A dies (SIGKILL: no leave is sent): its user 3 goes once its liveness key expires
      await nodes.A.kill();
      await eventually(() => assert.deepEqual(b2.seen, [["joining", "u3"], ["leaving", "u1"], ["leaving", "u3"]]), { timeout: 30000, what: "the dead node's member leaving" });
      assert.deepEqual(await users("B"), [2]);
      // a new node joining later sees only the live members
      nodes.C = await start();
      const c4 = await tab("C", 4);
      assert.deepEqual(c4.hereNames, ["u4", "u2"]);
      await eventually(() => assert.deepEqual(b2.seen.at(-1), ["joining", "u4"]));
    } finally {
      for (const e of echos) e.disconnect();
      await sleep(100);
      for (const n of Object.values(nodes)) if (n.exit === null) await n.stop();
      await php.stop();
      await redis.stop();
    }
  });
});

// laravel-echo-server stores members with a GET, modify and SET of one JSON array with no
// lock, so joins at the same moment lose members (laravel.md §1.7); rtd's members are one
// hash field per socket, written by a Lua script: none is lost, across nodes too.
describe("Laravel presence: joins at the same moment on two rtd nodes", () => {
  it("20 users joining at once, 10 per node: every node's users API and the last one's here() list all 20", { timeout: 60000 }, async () => {
    const redis = await startRedis();
    const php = await startPhpAuth();
    const cfg = writeConfig(echoConfig(redis, php.url, { clients: [APP] }));
    const nodes = [];
    const echos = [];
    try {
      for (let i = 0; i < 2; i++) nodes.push(await startRtd({ args: ["--laravel-config", cfg] }));
      // both subscribers are up (one pattern, so NUMPAT says 1: count the connections)
      await eventually(async () => assert.equal((String(await redis.command(["CLIENT", "LIST"])).match(/ psub=1 /g) ?? []).length, 2),
        { timeout: 10000, what: "both nodes' PSUBSCRIBE" });
      const tabs = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const e = new Echo({ broadcaster: "socket.io", host: nodes[i % 2].url, client: io4, transports: ["websocket"], forceNew: true,
          reconnection: false, auth: { headers: {} }, bearerToken: String(100 + i) });
        echos.push(e);
        const s = e.connector.socket;
        if (!s.connected) await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
        return e;
      }));
      await Promise.all(tabs.map((e) => new Promise((res) => e.join("room").here(res))));
      const want = Array.from({ length: 20 }, (_, i) => 100 + i);
      for (const n of nodes) {
        const r = await fetch(`${n.url}/apps/${APP.appId}/channels/presence-room/users`, { headers: { Authorization: `Bearer ${APP.key}` } });
        assert.deepEqual((await r.json()).users.map((u) => u.id).sort((a, b) => a - b), want);
      }
      const late = new Echo({ broadcaster: "socket.io", host: nodes[0].url, client: io4, transports: ["websocket"], forceNew: true,
        reconnection: false, auth: { headers: {} }, bearerToken: "200" });
      echos.push(late);
      const here = await new Promise((res) => late.join("room").here(res));
      assert.equal(here.length, 21);
    } finally {
      for (const e of echos) e.disconnect();
      await sleep(100);
      for (const n of nodes) await n.stop();
      await php.stop();
      await redis.stop();
    }
  });
});

// authHost as an array: the handshake's Referer picks the entry (laravel-echo-server's
// authHost()/hasMatchingHost()). The first entry is a port nobody listens on; the second is
// the real /broadcasting/auth.
for (const target of TARGETS) {
  describe(`the Referer chooses the authHost, against ${target.name}`, () => {
    it("no Referer: the first entry; a matching one: its protocol//host; another: the last entry (the original's loop)", SLOW, async () => {
      const redis = await startRedis();
      const php = await startPhpAuth();
      const dead = `http://${HOST}:${await freePort()}`;
      const server = await target.start(redis, [dead, php.url]);
      const echos = [];
      try {
        const attempt = async (referer) => {
          const e = new Echo({ broadcaster: "socket.io", host: server.url, client: io2, transports: ["websocket"], forceNew: true,
            reconnection: false, auth: { headers: {} }, bearerToken: "3", ...(referer ? { extraHeaders: { Referer: referer } } : {}) });
          echos.push(e);
          const s = e.connector.socket;
          await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
          const errors = [];
          s.on("subscription_error", (ch, status) => errors.push(status));
          e.private("orders.1");
          const r = await Promise.race([
            new Promise((res) => s.once("subscription_error", (ch, status) => res(status))),
            eventually(async () => {
              const c = await fetch(`${server.url}/apps/${APP.appId}/channels/private-orders.1`, { headers: { Authorization: `Bearer ${APP.key}` } });
              assert.ok((await c.json()).subscription_count > 0);
            }, { timeout: 10000 }).then(() => "joined"),
          ]);
          e.disconnect();
          await sleep(200);
          return r;
        };
        assert.equal(await attempt(null), 0, "the first entry: nobody there");
        assert.equal(await attempt(`${php.url}/dashboard?x=1`), "joined", "the entry equal to the referer's protocol//host");
        assert.equal(await attempt("http://elsewhere.test/page"), "joined", "no entry matches: the last one");
        // rtd keeps at most 4096 bytes of a handshake header (the original keeps any size): a
        // longer Referer is not used, so the first entry is
        if (!target.reference) assert.equal(await attempt(`${php.url}/${"x".repeat(4100)}`), 0, "an oversize Referer is not kept");
        assert.ok(server.alive());
      } finally {
        for (const e of echos) e.disconnect();
        await server.stop();
        await php.stop();
        await redis.stop();
      }
    });
  });
}
