// --admin-ui in a cluster (--redis): two rtd nodes on a real Redis, and a Node.js socket.io
// 4.8 node with @socket.io/redis-adapter and @socket.io/admin-ui's instrument(). The admin
// logged in on node A sees every node: server_stats from each (each node broadcasts its own
// to /admin through the adapter, as instrument() does), all_sockets with every node's sockets
// (fetchSockets), and join, leave and _disconnect act on sockets of node B.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe } from "node:test";
import { instrument } from "@socket.io/admin-ui";
import { io } from "socket.io-client";
import { RTD_BIN, connectSocket, eventually, nextEvent, rtdTest } from "./lib.mjs";
import { startNodeNode, startRedis, waitRedisUp } from "./redis.mjs";

const SLOW = process.env.RTD_VALGRIND ? 4 : 1;
const ADMIN_BIN = process.env.ADMIN_BIN ?? path.resolve(path.dirname(RTD_BIN), "../admin-fcgi/admin-fcgi");
const PASSWORD = "cluster admin password";

function createAdmin(db) {
  execFileSync(ADMIN_BIN, ["--db", db, "--create-admin", "ops"], { input: `${PASSWORD}\n`, stdio: ["pipe", "ignore", "ignore"] });
}

function record(s) {
  s.seen = [];
  s.onAny((...a) => s.seen.push(a));
  return s;
}

describe("--admin-ui in a cluster", () => {
  rtdTest("the admin of node A sees every node's stats and sockets; the commands act on node B", { start: false, timeout: 90000 * SLOW }, async (ctx) => {
    const redis = await startRedis();
    let node;
    try {
      const args = ["--redis", redis.url, "--admin-ui", "development"];
      const { startRtd } = await import("./lib.mjs");
      ctx.rtd = await startRtd({ args, readyTimeout: 10000 * SLOW });
      const b = await ctx.startExtra({ args, readyTimeout: 10000 * SLOW });
      node = await startNodeNode(redis);
      instrument(node.io, { auth: false, mode: "development" });
      await waitRedisUp(ctx.rtd);
      await waitRedisUp(b);
      createAdmin(ctx.rtd.db);

      const uA = await ctx.client({}, ctx.rtd);
      const uB = await ctx.client({}, b);
      const uN = io(node.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
      ctx.track(uN);
      await connectSocket(uN);

      const admin = record(io(`${ctx.rtd.url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { username: "ops", password: PASSWORD } }));
      ctx.track(admin);
      const all = nextEvent(admin, "all_sockets", 10000 * SLOW);
      await connectSocket(admin);
      const [sockets] = await all;
      const ids = sockets.map((s) => s.id);
      for (const u of [uA, uB, uN]) assert.ok(ids.includes(u.id), `all_sockets has ${u.id}: ${JSON.stringify(ids)}`);
      const fromNode = sockets.find((s) => s.id === uN.id);
      assert.equal(fromNode.nsp, "/");
      assert.equal(fromNode.transport, "websocket"); // from the instrument()ed node's data._admin
      assert.equal(fromNode.clientId, uN.io.engine.id.slice(0, 12));
      assert.deepEqual(fromNode.data, {});
      assert.ok(fromNode.rooms.includes(uN.id));
      const fromB = sockets.find((s) => s.id === uB.id);
      assert.equal(fromB.nsp, "/");
      assert.equal(typeof fromB.handshake.address, "string");

      // server_stats from the three nodes, each with its own serverId
      await eventually(() => {
        const stats = admin.seen.filter((a) => a[0] === "server_stats").map((a) => a[1]);
        const pids = new Set(stats.map((s) => s.pid));
        assert.ok(pids.has(ctx.rtd.proc.pid) && pids.has(b.proc.pid) && pids.has(process.pid), JSON.stringify([...pids]));
        assert.equal(new Set(stats.map((s) => s.serverId)).size, 3);
      }, { timeout: 15000 * SLOW, what: "server_stats from every node" });

      // node B's development-mode events reach the admin of node A once B counted it
      await eventually(async () => {
        const before = admin.seen.length;
        admin.emit("join", "/", "team", uB.id);
        await new Promise((r) => setTimeout(r, 200 * SLOW));
        assert.ok(admin.seen.slice(before).some((a) => a[0] === "room_joined" && a[2] === "team" && a[3] === uB.id), "room_joined of node B's socket");
      }, { timeout: 15000 * SLOW, what: "join acting on node B" });
      const left = admin.seen.length;
      admin.emit("leave", "/", "team");
      await eventually(() => assert.ok(admin.seen.slice(left).some((a) => a[0] === "room_left" && a[2] === "team" && a[3] === uB.id)), { timeout: 10000 * SLOW, what: "leave acting on node B" });

      // _disconnect: node B's and the Node.js node's sockets go, node A's stays
      const gone = [uB, uN].map((u) => new Promise((r) => u.once("disconnect", r)));
      admin.emit("_disconnect", "/", false, uB.id);
      admin.emit("_disconnect", "/", false, uN.id);
      assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect"]);
      assert.ok(uA.connected);
      admin.close();
    } finally {
      if (node) {
        // instrument() keeps its 2 s server_stats timer (no handle to stop it): it would
        // publish on the closed Redis client
        node.io.of("/admin").adapter.broadcast = () => {};
        await node.close();
      }
      await redis.stop();
    }
  });
  // The other way round: the UI logged into the Node.js node (instrument(), no auth) sees the
  // rtd nodes' server_stats and, through its fetchSockets, their sockets, and its join acts
  // on an rtd node's socket.
  rtdTest("the admin of the instrument()ed Node.js node sees the rtd nodes", { start: false, timeout: 90000 * SLOW }, async (ctx) => {
    const redis = await startRedis();
    let node;
    try {
      const args = ["--redis", redis.url, "--admin-ui", "development"];
      const { startRtd } = await import("./lib.mjs");
      ctx.rtd = await startRtd({ args, readyTimeout: 10000 * SLOW });
      node = await startNodeNode(redis);
      instrument(node.io, { auth: false, mode: "development" });
      await waitRedisUp(ctx.rtd);
      const u = await ctx.client({}, ctx.rtd);
      const admin = record(io(`${node.url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"] }));
      ctx.track(admin);
      const all = nextEvent(admin, "all_sockets", 10000 * SLOW);
      await connectSocket(admin);
      const [sockets] = await all;
      const mine = sockets.find((s) => s.id === u.id);
      assert.ok(mine, `all_sockets has rtd's socket: ${JSON.stringify(sockets.map((s) => s.id))}`);
      assert.equal(mine.nsp, "/");
      assert.ok(mine.rooms.includes(u.id));
      // rtd's fetchSockets reply carries data._admin, as instrument() sets it on its own sockets
      assert.equal(mine.clientId, u.io.engine.id.slice(0, 12));
      assert.equal(mine.transport, u.io.engine.transport.name);
      assert.equal(mine.data._admin, undefined, "the UI's own field is not shown as data");
      await eventually(() => {
        const pids = new Set(admin.seen.filter((a) => a[0] === "server_stats").map((a) => a[1].pid));
        assert.ok(pids.has(ctx.rtd.proc.pid) && pids.has(process.pid), JSON.stringify([...pids]));
      }, { timeout: 15000 * SLOW, what: "server_stats from rtd and Node.js" });
      await eventually(async () => {
        const before = admin.seen.length;
        admin.emit("join", "/", "team", u.id);
        await new Promise((r) => setTimeout(r, 200 * SLOW));
        assert.ok(admin.seen.slice(before).some((a) => a[0] === "room_joined" && a[2] === "team" && a[3] === u.id));
      }, { timeout: 15000 * SLOW, what: "room_joined from the rtd node" });
      admin.close();
    } finally {
      if (node) {
        // instrument() keeps its 2 s server_stats timer (no handle to stop it): it would
        // publish on the closed Redis client
        node.io.of("/admin").adapter.broadcast = () => {};
        await node.close();
      }
      await redis.stop();
    }
  });
});
