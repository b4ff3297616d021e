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
import { io } from "socket.io-client";
import { HOST, RTD_BIN, connectError, connectSocket, makeClient, nextEvent as nextArgs, rtdTest } from "./lib.mjs";

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
    assert.deepEqual(config, { supportedFeatures: ["AGGREGATED_EVENTS"] });
    assert.equal(stats.pid, ctx.rtd.proc.pid);
    assert.equal(stats.clientsCount, 2);
    assert.equal(stats.pollingClientsCount, 1);
    assert.ok(stats.uptime > 0 && stats.uptime < 30);
    assert.deepEqual(new Set(stats.namespaces.map((n) => `${n.name}=${n.socketsCount}`)), new Set(["/=1", "/admin=1"]));
    const t0 = Date.now();
    const next = await nextEvent(s, "server_stats", 4000);
    assert.ok(Date.now() - t0 <= 2600, "the next server_stats within ~2 s");
    assert.equal(next.serverId, stats.serverId);
    s.close();
    // the UI's reload: auth {sessionId}
    const again = adminClient(ctx.rtd.url, { sessionId: session });
    const cfg = nextEvent(again, "config");
    await connectSocket(again);
    assert.deepEqual(await cfg, config);
    again.close();
    user.close();
  });

  rtdTest("the payloads have the shapes of Node.js socket.io with instrument()", { args: ["--admin-ui", "production"] }, async (ctx) => {
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
});
