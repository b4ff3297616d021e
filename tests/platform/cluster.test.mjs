// --redis: rtd nodes in one cluster with a Node.js socket.io 4.8 node running
// @socket.io/redis-adapter 8.3.0, @socket.io/redis-emitter 5.1.0 and PHP-style publishers,
// all on Debian's redis-server started here on a free port. Clients of every node over
// WebSocket and long-polling.
//
// "Exactly once" is checked without waiting for a while: after the broadcasts under test,
// each publisher sends a last one; Redis delivers one publisher's messages in order, so once
// every client has the last ones, any duplicate of an earlier one would have arrived.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { emitAck, eventually, rtdTest, sleep } from "./lib.mjs";
import { health, startNodeNode, startRedis, waitRedisUp } from "./redis.mjs";

const SLOW = process.env.RTD_VALGRIND ? 4 : 1;
const T = 60000 * SLOW;

// Every event a client gets, in order, as [name, ...args].
function record(s) {
  s.all = [];
  s.disconnects = [];
  s.onAny((...a) => s.all.push(a));
  s.on("disconnect", (why) => s.disconnects.push(why));
  return s;
}

function named(s, name) {
  return s.all.filter((a) => a[0] === name);
}

async function waitFor(clients, pred, what) {
  await eventually(() => {
    for (const c of clients) assert.ok(pred(c), `${c.label}: ${what}; has ${JSON.stringify(c.all).slice(0, 400)}`);
  }, { timeout: 10000 * SLOW, what });
}

// A cluster: Redis, two rtd nodes (ctx.rtd and ctx.extra[0]) and a Node.js node.
async function cluster(ctx, { key, nodeOpts = {} } = {}) {
  const redis = await startRedis();
  ctx.cleanups = [() => redis.stop()];
  const args = ["--redis", redis.url, ...(key ? ["--redis-key", key] : [])];
  const { startRtd } = await import("./lib.mjs");
  ctx.rtd = await startRtd({ args, readyTimeout: 10000 * SLOW });
  const b = await ctx.startExtra({ args, readyTimeout: 10000 * SLOW });
  const node = await startNodeNode(redis, { ...(key ? { key } : {}), ...nodeOpts });
  ctx.cleanups.unshift(() => node.close());
  node.io.on("connection", (s) => {
    s.on("join", (room) => s.join(room));
  });
  await waitRedisUp(ctx.rtd);
  await waitRedisUp(b);
  return { redis, a: ctx.rtd, b, node };
}

async function client(ctx, server, kind, label) {
  const s = await ctx.client({ kind }, server);
  s.label = label;
  return record(s);
}

async function cleanup(ctx) {
  for (const f of ctx.cleanups ?? []) {
    try {
      await f();
    } catch (e) {
      process.stderr.write(`(cleanup: ${e.message})\n`);
    }
  }
}

// rtdTest with the cluster's own cleanups (Node.js node, Redis) after the test body.
function clusterTest(name, fn) {
  rtdTest(name, { start: false, timeout: 2 * T }, async (ctx) => {
    try {
      await fn(ctx);
    } catch (e) {
      process.stderr.write(`(test body: ${e.stack})\n`);
      throw e;
    } finally {
      ctx.closeClients();
      await cleanup(ctx);
    }
  });
}

// A tiny msgpack writer for the PHP emitters' shapes (empty arrays for maps, type 5).
function mp(v) {
  if (v === null) return Buffer.from([0xc0]);
  if (typeof v === "number") return Buffer.from([v]); // small positive ints only
  if (typeof v === "string") {
    const b = Buffer.from(v);
    return Buffer.concat([Buffer.from([0xd9, b.length]), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from([0x90 | v.length]), ...v.map(mp)]);
  const keys = Object.keys(v);
  return Buffer.concat([Buffer.from([0x80 | keys.length]), ...keys.flatMap((k) => [mp(k), mp(v[k])])]);
}

describe("cluster over Redis (--redis)", () => {
  clusterTest("every broadcast reaches every client of every node exactly once", async (ctx) => {
    const { a, b, node } = await cluster(ctx);
    const clients = [];
    for (const [server, name] of [[a, "A"], [b, "B"], [node, "N"]])
      for (const kind of ["websocket", "polling"]) clients.push(await client(ctx, server, kind, `${name}/${kind}`));
    const [aws, , , bpoll] = clients;
    const m1 = await emitAck(aws, "send-message", { sender: "a", text: "from A" });
    assert.equal(m1.ok ?? true, true);
    await emitAck(bpoll, "send-message", { sender: "b", text: "from B" });
    node.io.emit("node-hello", "x", Buffer.from([1, 2, 3]), { n: 1.5 });
    // the last ones
    await emitAck(aws, "send-message", { sender: "a", text: "end A" });
    await emitAck(bpoll, "send-message", { sender: "b", text: "end B" });
    node.io.emit("end-N");
    const texts = (c) => named(c, "receive-message").map((e) => e[1].text);
    await waitFor(clients, (c) => texts(c).includes("end A") && texts(c).includes("end B") && named(c, "end-N").length === 1,
      "the last broadcasts");
    for (const c of clients) {
      assert.deepEqual(texts(c).sort(), ["end A", "end B", "from A", "from B"], `${c.label} receive-message`);
      const hello = named(c, "node-hello");
      assert.equal(hello.length, 1, `${c.label} node-hello`);
      assert.equal(hello[0][1], "x");
      assert.deepEqual([...hello[0][2]], [1, 2, 3], `${c.label} got the Buffer`);
      assert.deepEqual(hello[0][3], { n: 1.5 });
      assert.deepEqual(c.disconnects, []);
    }
    // each message was stored by the node that received it, once
    const ha = await health(a);
    const hb = await health(b);
    assert.ok(ha.published >= 2 && hb.published >= 2, JSON.stringify({ ha, hb }));
    assert.equal(ha.dropped, 0);
    assert.equal(hb.dropped, 0);
  });

  clusterTest("rooms and except span the nodes", async (ctx) => {
    const { a, b, node } = await cluster(ctx);
    const a1 = await client(ctx, a, "websocket", "a1");
    const a2 = await client(ctx, a, "polling", "a2 (no room)");
    const b1 = await client(ctx, b, "polling", "b1");
    const n1 = await client(ctx, node, "websocket", "n1");
    await emitAck(a1, "join", { room: "r" });
    await emitAck(b1, "join", "r");
    n1.emit("join", "r");
    await eventually(async () => assert.ok((await node.io.in("r").fetchSockets()).length === 3), { what: "three sockets in r" });
    await emitAck(b1, "send-message", { sender: "b", text: "to r", room: "r" });
    node.io.to("r").except(b1.id).emit("not-b1", 1);
    node.io.to(a2.id).emit("just-a2");
    node.io.emit("end");
    await waitFor([a1, a2, b1, n1], (c) => named(c, "end").length === 1, "the last broadcast");
    const texts = (c) => named(c, "receive-message").map((e) => e[1].text);
    assert.deepEqual(texts(a1), ["to r"]);
    assert.deepEqual(texts(b1), ["to r"]);
    assert.deepEqual(texts(n1), ["to r"]);
    assert.deepEqual(texts(a2), []);
    assert.equal(named(a1, "not-b1").length, 1);
    assert.equal(named(n1, "not-b1").length, 1);
    assert.equal(named(b1, "not-b1").length, 0);
    assert.equal(named(a2, "not-b1").length, 0);
    assert.equal(named(a2, "just-a2").length, 1);
    assert.equal(named(a1, "just-a2").length, 0);
  });

  clusterTest("the emitter and PHP-style publishers reach rtd's sockets", async (ctx) => {
    const { redis, a, b } = await cluster(ctx);
    const pub = createClient({ url: redis.url });
    await pub.connect();
    ctx.cleanups.unshift(() => pub.isOpen && pub.quit());
    const em = new Emitter(pub);
    const a1 = await client(ctx, a, "websocket", "a1");
    const a2 = await client(ctx, a, "polling", "a2");
    const b1 = await client(ctx, b, "polling", "b1");
    await emitAck(a1, "join", "p1");
    await emitAck(a1, "join", "p2");
    await emitAck(b1, "join", "p2");
    em.emit("em-all", { a: 1 });
    em.to("p2").except(b1.id).emit("em-p2-not-b1", "x");
    em.volatile.emit("em-volatile", 2);
    em.emit("em-bin", Buffer.from([0, 255]));
    // a PHP emitter's multi-room emit: one publish per room, each with every room, type 5,
    // flags as an empty array and no except
    for (const room of ["p1", "p2"]) {
      await pub.publish(`socket.io#/#${room}#`, mp(["emitter", { type: 5, data: ["php", "hi"], nsp: "/" }, { rooms: ["p1", "p2"], flags: [] }]));
    }
    await pub.publish("socket.io#/#", mp(["emitter", { type: 2, data: ["php-all"] }, []]));
    em.emit("end");
    const all = [a1, a2, b1];
    await waitFor(all, (c) => named(c, "end").length === 1, "the last broadcast");
    for (const c of all) assert.equal(named(c, "em-all").length, 1, c.label);
    assert.equal(named(a1, "em-p2-not-b1").length, 1);
    assert.equal(named(b1, "em-p2-not-b1").length, 0);
    assert.equal(named(a2, "em-p2-not-b1").length, 0);
    for (const c of all) assert.equal(named(c, "em-volatile").length, 1, c.label);
    assert.deepEqual([...named(b1, "em-bin")[0][1]], [0, 255]);
    assert.deepEqual(named(a1, "php"), [["php", "hi"]], "a1 is in both rooms: once");
    assert.deepEqual(named(b1, "php"), [["php", "hi"]]);
    assert.deepEqual(named(a2, "php"), []);
    for (const c of all) assert.equal(named(c, "php-all").length, 1, c.label);
    // socketsJoin / socketsLeave / disconnectSockets
    em.in(b1.id).socketsJoin("e1");
    await sleep(50);
    em.to("e1").emit("in-e1");
    em.emit("end2");
    await waitFor(all, (c) => named(c, "end2").length === 1, "the second last broadcast");
    assert.equal(named(b1, "in-e1").length, 1);
    assert.equal(named(a1, "in-e1").length, 0);
    em.in("e1").socketsLeave("e1");
    em.in("p1").disconnectSockets(true);
    await waitFor([a1], (c) => c.disconnects.length === 1, "a1 disconnected by the emitter");
    em.to("e1").emit("in-e1");
    em.emit("end3");
    await waitFor([a2, b1], (c) => named(c, "end3").length === 1, "the third last broadcast");
    assert.equal(named(b1, "in-e1").length, 1, "b1 left e1");
    assert.deepEqual(b1.disconnects, []);
    assert.deepEqual(a2.disconnects, []);
    const h = await health(a);
    assert.equal(h.dropped, 0, JSON.stringify(h));
  });

  for (const specific of [false, true]) {
    clusterTest(`Node.js's requests act on rtd's sockets (publishOnSpecificResponseChannel ${specific}, custom key)`, async (ctx) => {
      const { redis, a, b, node } = await cluster(ctx, { key: "rtdkey", nodeOpts: { publishOnSpecificResponseChannel: specific } });
      const a1 = await client(ctx, a, "websocket", "a1");
      const b1 = await client(ctx, b, "polling", "b1");
      const n1 = await client(ctx, node, "websocket", "n1");
      for (const c of [a1, b1, n1]) c.on("ask", (x, cb) => cb({ from: c.label, x }));
      assert.equal((await redis.command(["PUBSUB", "NUMSUB", "rtdkey-request#/#"]))[1], 3);
      const socks = await node.io.fetchSockets();
      const ids = socks.map((s) => s.id).sort();
      assert.deepEqual(ids, [a1.id, b1.id, n1.id].sort());
      const ra = socks.find((s) => s.id === a1.id);
      assert.equal(ra.id.length, 20);
      assert.ok(ra.rooms.has(a1.id));
      assert.equal(ra.handshake.address, "127.0.0.1");
      assert.deepEqual(ra.data, {});
      await emitAck(b1, "identify", { userId: "u-b1", platform: "web", appVersion: "1" });
      const rb = (await node.io.in(b1.id).fetchSockets())[0];
      assert.deepEqual(rb.data, { socketId: b1.id, userId: "u-b1", platform: "web" }, "socket.data is the identity");
      await node.io.in(a1.id).socketsJoin("j");
      await eventually(async () => assert.ok((await node.io.of("/").adapter.allRooms()).has("j")), { what: "j in allRooms" });
      node.io.to("j").emit("in-j");
      const acks = await node.io.timeout(3000 * SLOW).emitWithAck("ask", 5);
      assert.deepEqual(acks.map((x) => x.from).sort(), ["a1", "b1", "n1"]);
      const sse = await node.io.serverSideEmitWithAck("rtd:connections");
      assert.equal(sse.length, 2);
      for (const r of sse) assert.deepEqual(Object.keys(r).sort(), ["connections", "uid"]);
      assert.deepEqual(sse.map((r) => r.connections).sort(), [1, 1]);
      node.io.in("j").socketsLeave("j");
      await eventually(async () => assert.ok(!(await node.io.of("/").adapter.allRooms()).has("j")), { what: "j gone" });
      node.io.in(b1.id).disconnectSockets();
      await waitFor([b1], (c) => c.disconnects.length === 1, "b1 disconnected by Node.js");
      assert.equal(named(a1, "in-j").length, 1);
      assert.deepEqual(a1.disconnects, []);
      const h = await health(a);
      assert.ok(h.requests >= 5, JSON.stringify(h));
      assert.equal(h.dropped, 0);
    });
  }

  clusterTest("presence: user-connected and user-disconnected count every node's sockets", async (ctx) => {
    const { a, b, node } = await cluster(ctx);
    const a1 = await client(ctx, a, "websocket", "a1");
    const n1 = await client(ctx, node, "polling", "n1");
    const b1 = await client(ctx, b, "polling", "b1");
    // a1, n1 and b1: b1's arrival is counted by B with A's and Node.js's sockets
    await waitFor([a1, n1], (c) => named(c, "user-connected").some((e) => e[1].socketId === b1.id), "b1's user-connected");
    for (const c of [a1, n1]) {
      const e = named(c, "user-connected").find((x) => x[1].socketId === b1.id);
      assert.deepEqual(e[1], { socketId: b1.id, totalConnections: 3 }, c.label);
    }
    assert.equal(named(b1, "user-connected").filter((e) => e[1].socketId === b1.id).length, 0, "not told of itself");
    const b1id = b1.id;
    b1.disconnect();
    await waitFor([a1, n1], (c) => named(c, "user-disconnected").length === 1, "b1's user-disconnected");
    for (const c of [a1, n1]) assert.deepEqual(named(c, "user-disconnected")[0][1], { socketId: b1id, totalConnections: 2 }, c.label);
    // a1 saw one user-connected per arrival after its own, once
    assert.deepEqual(named(a1, "user-connected").map((e) => e[1].socketId), [b1id]);
  });

  clusterTest("Redis stopped and started again: no client lost, broadcasts resume", async (ctx) => {
    const { redis, a, b } = await cluster(ctx);
    const a1 = await client(ctx, a, "websocket", "a1");
    const b1 = await client(ctx, b, "polling", "b1");
    await emitAck(a1, "send-message", { sender: "a", text: "before" });
    await waitFor([a1, b1], (c) => named(c, "receive-message").length === 1, "the first message");
    await redis.stop();
    await eventually(async () => assert.equal((await health(a)).state, "down"), { timeout: 10000 * SLOW, what: "A sees Redis down" });
    await eventually(async () => assert.equal((await health(b)).state, "down"), { timeout: 10000 * SLOW, what: "B sees Redis down" });
    // a node keeps serving its own clients
    const m = await emitAck(a1, "send-message", { sender: "a", text: "while down" });
    assert.equal(m.ok ?? true, true, JSON.stringify(m));
    await waitFor([a1], (c) => named(c, "receive-message").length === 2, "A's own delivery");
    assert.ok((await health(a)).publishFailed >= 1);
    await redis.start();
    const ua = await waitRedisUp(a, "A back up", 20000 * SLOW);
    const ub = await waitRedisUp(b, "B back up", 20000 * SLOW);
    assert.ok(ua.reconnects >= 1 && ub.reconnects >= 1, JSON.stringify({ ua, ub }));
    // both resubscribed: each its own response channel and the request channel, and the
    // broadcast pattern (the Node.js node's client resubscribes by itself or not)
    for (const u of [ua, ub]) assert.equal((await redis.command(["PUBSUB", "NUMSUB", `socket.io-response#/#${u.uid}#`]))[1], 1);
    assert.ok((await redis.command(["PUBSUB", "NUMSUB", "socket.io-request#/#"]))[1] >= 2);
    assert.equal(await redis.command(["PUBSUB", "NUMPAT"]), 1); // unique patterns: key#/#*
    await emitAck(b1, "send-message", { sender: "b", text: "after" });
    await waitFor([a1, b1], (c) => named(c, "receive-message").some((e) => e[1].text === "after"), "the message after the restart");
    assert.deepEqual(named(b1, "receive-message").map((e) => e[1].text), ["before", "after"]);
    assert.deepEqual(a1.disconnects, []);
    assert.deepEqual(b1.disconnects, []);
  });
});
