// Connection-state recovery against rtd AND the Node.js reference (platform/ref/recovery-ref.mjs,
// socket.io 4.8.4 with connectionStateRecovery): the official cases of socketio/socket.io
// packages/socket.io/test/connection-state-recovery.ts (and of the client's), ported to the
// platform's events and run with the same code on both servers, asserting the same observable
// results. Where rtd differs on purpose (README "Connection-state recovery"), the case says
// what each server does, and why.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Polling } from "../js/lib/http.mjs";
import crypto from "node:crypto";
import { connectError, connectSocket, Ctx, emitAck, HOST, makeClient, rtdTest, sleep, startRtd, tempDir, within } from "./lib.mjs";

const REF = path.join(path.dirname(fileURLToPath(import.meta.url)), "ref/recovery-ref.mjs");
const SECRET = "a-test-secret-of-more-than-16-bytes";

// An HS256 token (as auth.test.mjs makes them).
function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" }), body = b64(claims);
  return `${head}.${body}.${crypto.createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url")}`;
}

// Starts the Node.js reference; resolves to {url, port, kind, stop()}.
async function startRef(args) {
  const proc = spawn(process.execPath, [REF, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const port = await within(
    new Promise((resolve, reject) => {
      proc.stdout.setEncoding("utf8").on("data", (d) => {
        out += d;
        const m = /listening on [\d.]+:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      exited.then(() => reject(new Error(`recovery-ref exited: ${err}`)));
    }),
    10000,
    "the Node.js reference to listen",
  );
  return {
    kind: "node",
    port,
    url: `http://${HOST}:${port}`,
    async stop() {
      proc.kill("SIGTERM");
      const r = await within(exited, 5000, "the reference to exit");
      if (r.code !== 0) throw new Error(`recovery-ref ended with ${JSON.stringify(r)}: ${err}`);
    },
  };
}

// Declares the case twice: "[rtd] name" on rtd (args: rtd's flags) and "[node] name" on the
// reference (ref: its flags). fn(ctx, srv) with srv = ctx.rtd, srv.kind "rtd" or "node".
// auth: both get the same HS256 secret (rtd --auth-secret, the reference's middleware).
function bothTest(name, { rtd = [], ref = [], auth = false, timeout = 20000 }, fn) {
  let secretArgs = () => [];
  if (auth) {
    secretArgs = () => {
      const file = path.join(tempDir(), "secret");
      writeFileSync(file, `${SECRET}\n`);
      return ["--auth-secret", file];
    };
  }
  rtdTest(`[rtd] ${name}`, { timeout, start: false }, async (ctx) => {
    ctx.rtd = await startRtd({ args: [...rtd, ...secretArgs(), "--presence", "off"] });
    ctx.rtd.kind = "rtd";
    await fn(ctx, ctx.rtd);
  });
  it(`[node] ${name}`, { timeout }, async () => {
    const ctx = new Ctx();
    const srv = await startRef([...ref, ...secretArgs()]);
    ctx.rtd = srv;
    try {
      await fn(ctx, srv);
    } finally {
      ctx.closeClients();
      await srv.stop();
    }
  });
}

const ON = { rtd: ["--recovery-window", "5000"], ref: ["--window", "5000"] };
const FAST_PING = { rtd: [...ON.rtd, "--ping-interval", "300", "--ping-timeout", "200"], ref: [...ON.ref, "--ping-interval", "300", "--ping-timeout", "200"] };

// Drops a client's transport: "transport close" on the server, recoverable.
async function drop(s) {
  const gone = new Promise((resolve) => s.once("disconnect", resolve));
  s.io.engine.close();
  await gone;
  await sleep(150); // the server sees the close
}

// Reconnects s; resolves to {recovered, beforeConnect: the receive-message args seen before "connect"}.
async function back(s) {
  const before = s.got.messages.items.length;
  const connected = new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s.got.messages.items.length - before));
    s.once("connect_error", reject);
  });
  s.connect();
  const n = await within(connected, 5000, "the reconnection");
  return { recovered: s.recovered, beforeConnect: s.got.messages.items.slice(before, before + n) };
}

const texts = (items) => items.map(([m]) => m.text);

// A raw polling Socket.IO client: the official tests' eioHandshake / eioPush "40" / eioPoll.
async function rawConnect(srv, auth) {
  const p = new Polling(srv.port, "/socket.io/");
  await p.handshake();
  await p.send(auth ? `40${JSON.stringify(auth)}` : "40");
  return p;
}

// Receives until a CONNECT (40...) arrived; returns every packet up to and including it.
async function untilConnect(p) {
  const got = [];
  while (!got.some((x) => x.startsWith("40"))) got.push(...(await p.receive()));
  return got;
}

describe("connection-state recovery, rtd and the Node.js reference", () => {
  bothTest("is disabled by default: no pid in CONNECT", {}, async (ctx, srv) => {
    const p = await rawConnect(srv);
    const [c] = await untilConnect(p);
    const hs = JSON.parse(c.slice(2));
    assert.equal(typeof hs.sid, "string");
    assert.equal(hs.pid, undefined);
    await p.send("1");
  });

  // official: "should restore session and missed packets" (a broadcast, a room broadcast;
  // rtd stores no direct emits, see README), with its init(): an event gives the offset
  bothTest("on the wire: missed events first, then 40{sid, pid} with the same ids", ON, async (ctx, srv) => {
    const p1 = await rawConnect(srv);
    const [c] = await untilConnect(p1);
    const { sid, pid } = JSON.parse(c.slice(2));
    assert.equal(typeof pid, "string");
    await p1.send('42["join",{"room":"room1"}]');
    const b = await ctx.client();
    await sleep(100);
    await emitAck(b, "send-message", { sender: "b", text: "hello" });
    const [hello] = await p1.receive();
    const args = JSON.parse(hello.slice(2));
    assert.equal(args[0], "receive-message");
    assert.equal(args.length, 3);
    const offset = args[2];
    assert.equal(typeof offset, "string"); // the offset is the last element
    await p1.send("1");
    await sleep(150);
    await emitAck(b, "send-message", { sender: "b", text: "hello1" });
    await emitAck(b, "send-message", { sender: "b", text: "hello2", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "not mine", room: "room2" });
    await emitAck(b, "send-message", { sender: "b", text: "hello3" });
    const p2 = await rawConnect(srv, { pid, offset });
    const packets = await untilConnect(p2);
    assert.equal(packets.length, 4, JSON.stringify(packets));
    const evs = packets.slice(0, 3).map((x) => JSON.parse(x.slice(2)));
    assert.deepEqual(evs.map((e) => [e[0], e[1].text]), [["receive-message", "hello1"], ["receive-message", "hello2"], ["receive-message", "hello3"]]);
    for (const e of evs) assert.equal(typeof e[2], "string");
    assert.equal(packets[3], `40${JSON.stringify({ sid, pid })}`);
    await p2.send("1");
  });

  // official: "should restore rooms and data attributes", and the client's "should have an
  // accessible socket id equal to the server-side socket id", with the real client
  bothTest("restores id, rooms and identity; recovered false, then true; missed events once, in order", ON, async (ctx) => {
    const a = await ctx.client();
    assert.equal(a.recovered, false);
    await emitAck(a, "identify", { userId: "u1", platform: "flutter" });
    await emitAck(a, "join", { room: "room1" });
    await emitAck(a, "join", { room: "room2" });
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next();
    const id = a.id, pid = a._pid;
    await drop(a);
    await emitAck(b, "send-message", { sender: "b", text: "m1" });
    await emitAck(b, "send-message", { sender: "b", text: "m2", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "other", room: "room3" });
    await emitAck(b, "send-message", { sender: "b", text: "m3", room: "room2" });
    const r = await back(a);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.equal(a._pid, pid);
    assert.deepEqual(texts(r.beforeConnect), ["m1", "m2", "m3"]);
    // rooms back: live room messages arrive; identity back: its messages carry its platform
    await emitAck(b, "send-message", { sender: "b", text: "live1", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "live2", room: "room2" });
    await a.got.messages.waitCount(6);
    await emitAck(a, "send-message", { sender: "a", text: "mine" });
    const items = await b.got.messages.waitCount(3); // "seen", "m1", "mine"
    assert.equal(items[2][0].text, "mine");
    assert.equal(items[2][0].platform, "flutter");
    await sleep(150);
    assert.deepEqual(texts(a.got.messages.items), ["seen", "m1", "m2", "m3", "live1", "live2", "mine"]);
  });

  // official: "should fail to restore an unknown session"
  bothTest("fails to restore an unknown session: a new sid and a new pid", ON, async (ctx, srv) => {
    const p = await rawConnect(srv, { pid: "foo", offset: "bar" });
    const [c] = await untilConnect(p);
    const hs = JSON.parse(c.slice(2));
    assert.notEqual(hs.sid, "foo");
    assert.equal(typeof hs.pid, "string");
    assert.notEqual(hs.pid, "foo");
    await p.send("1");
  });

  // official (socket.io main): "should not restore session if the provided offset is not a string"
  bothTest("an offset that is not a string fails closed: a fresh session", ON, async (ctx, srv) => {
    const p1 = await rawConnect(srv);
    const [c] = await untilConnect(p1);
    const { sid, pid } = JSON.parse(c.slice(2));
    await p1.send('42["join",{"room":"room1"}]');
    await sleep(100);
    await p1.send("1");
    await sleep(150);
    const p2 = await rawConnect(srv, { pid, offset: 123 });
    const [c2] = await untilConnect(p2);
    const hs = JSON.parse(c2.slice(2));
    assert.notEqual(hs.sid, sid);
    assert.notEqual(hs.pid, pid);
    await p2.send("1");
  });

  // official (socket.io main): "should restore session even if the client did not receive any
  // event"; socket.io 4.8.4 requires an offset (socketio/socket.io#4888, #5538), rtd does not
  bothTest("no event before the drop (no offset): rtd recovers from the time it left, Node.js 4.8.4 does not", ON, async (ctx, srv) => {
    const a = await ctx.client();
    await emitAck(a, "join", { room: "room1" });
    const b = await ctx.client();
    const id = a.id;
    await drop(a);
    await emitAck(b, "send-message", { sender: "b", text: "while away", room: "room1" });
    const r = await back(a);
    if (srv.kind === "rtd") {
      assert.equal(r.recovered, true);
      assert.equal(a.id, id);
      assert.deepEqual(texts(r.beforeConnect), ["while away"]);
    } else {
      assert.equal(r.recovered, false);
      assert.notEqual(a.id, id);
      assert.deepEqual(r.beforeConnect, []);
    }
  });

  // RECOVERABLE_DISCONNECT_REASONS: "client namespace disconnect" is not one
  bothTest("the client's own disconnect (41) is not recoverable", ON, async (ctx) => {
    const a = await ctx.client();
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next();
    const id = a.id;
    a.disconnect();
    await sleep(150);
    await emitAck(b, "send-message", { sender: "b", text: "missed" });
    const r = await back(a);
    assert.equal(r.recovered, false);
    assert.notEqual(a.id, id);
    assert.deepEqual(r.beforeConnect, []);
  });

  // "ping timeout" is recoverable: a raw client that stops answering pings
  bothTest("a ping timeout is recoverable", FAST_PING, async (ctx, srv) => {
    const p1 = await rawConnect(srv);
    const [c] = await untilConnect(p1);
    const { sid, pid } = JSON.parse(c.slice(2));
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "hello" });
    const [hello] = await p1.receive();
    const offset = JSON.parse(hello.slice(2))[2];
    await sleep(1200); // no pong: the server times the session out
    await emitAck(b, "send-message", { sender: "b", text: "after timeout" });
    const p2 = await rawConnect(srv, { pid, offset });
    const packets = await untilConnect(p2);
    assert.equal(packets.length, 2, JSON.stringify(packets));
    assert.equal(JSON.parse(packets[0].slice(2))[1].text, "after timeout");
    assert.equal(packets[1], `40${JSON.stringify({ sid, pid })}`);
    await p2.send("1");
  });

  // official: "should not run middlewares upon recovery by default". rtd's only middleware is
  // --auth-secret; it is not skipped: a token that is no longer valid never gets back in,
  // recovered or not (README). With a valid token, both recover.
  bothTest("auth on recovery: a valid token recovers on both; an expired one recovers on Node.js (skipMiddlewares), is refused by rtd", { ...ON, auth: true }, async (ctx, srv) => {
    const token = jwt({ sub: "u1" });
    const a = await ctx.client({ auth: { token } });
    const b = await ctx.client({ auth: { token: jwt({ sub: "u2" }) } });
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next();
    const id = a.id;
    await drop(a);
    await emitAck(b, "send-message", { sender: "b", text: "m1" });
    let r = await back(a);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.deepEqual(texts(r.beforeConnect), ["m1"]);
    await drop(a);
    await emitAck(b, "send-message", { sender: "b", text: "m2" });
    a.auth = { token: jwt({ sub: "u1", exp: Math.floor(Date.now() / 1000) - 10 }) };
    if (srv.kind === "node") {
      r = await back(a);
      assert.equal(r.recovered, true);
      assert.deepEqual(texts(r.beforeConnect), ["m2"]);
    } else {
      assert.equal((await connectError(a)).message, "unauthorized");
      // a fresh token: the session is still there, the client recovers
      a.auth = { token };
      r = await back(a);
      assert.equal(r.recovered, true);
      assert.equal(a.id, id);
      assert.deepEqual(texts(r.beforeConnect), ["m2"]);
    }
  });

  // A Node.js flaw (socketio/socket.io#4880): the in-memory adapter does not delete a restored
  // session, so a second CONNECT with the same pid gets the same sid while the first is alive.
  // rtd keeps one live socket per pid: the newest connection has it, the other is closed.
  bothTest("the same pid twice: Node.js restores it twice; rtd keeps one live socket", ON, async (ctx, srv) => {
    const a = await ctx.client();
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "x" });
    const [, offset] = await a.got.messages.next();
    const id = a.id, pid = a._pid;
    await drop(a);
    const t1 = ctx.track(makeClient(srv, { auth: { pid, offset } }));
    await connectSocket(t1);
    assert.equal(t1.id, id);
    const gone = new Promise((resolve) => t1.once("disconnect", resolve));
    const t2 = ctx.track(makeClient(srv, { auth: { pid, offset } }));
    await connectSocket(t2);
    assert.equal(t2.id, id);
    if (srv.kind === "rtd") {
      assert.equal(await within(gone, 3000, "t1's disconnect"), "io server disconnect");
    } else {
      await sleep(300);
      assert.equal(t1.connected, true); // two live sockets with one sid
    }
  });
});
