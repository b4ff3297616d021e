// Connection-state recovery (--recovery-window), with the real socket.io-client 4.8: the
// official cases of socketio/socket.io packages/socket.io/test/connection-state-recovery.ts
// ported to rtd's platform events, and the Node.js flaws rtd fixes (no offset, one use per
// pid, capped replays). A client drops by closing its Engine.IO transport
// (socket.io.engine.close(), "transport close" on the server, which is recoverable) and comes
// back with socket.connect(), which sends {pid, offset} itself.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { Polling } from "../js/lib/http.mjs";
import { count, emitAck, eventually, makeClient, connectSocket, metrics, query, rtdTest, sleep, startRtd, waitConnectionRow } from "./lib.mjs";

const WINDOW = ["--recovery-window", "5000"];

async function drop(ctx, s) {
  const gone = new Promise((resolve) => s.once("disconnect", resolve));
  s.io.engine.close();
  await gone; // the client says "forced close"; the server sees "transport close"
  await sleep(100); // the server sees the close
}

// Reconnects s and resolves to what its handlers saw: the events before "connect" and
// whether "connect" said recovered.
async function back(s) {
  const before = s.got.messages.items.length;
  const connected = new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s.got.messages.items.length - before));
    s.once("connect_error", reject);
  });
  s.connect();
  const n = await connected;
  return { recovered: s.recovered, beforeConnect: s.got.messages.items.slice(before, before + n) };
}

const texts = (items) => items.map(([m]) => m.text);

describe("connection-state recovery", () => {
  rtdTest("is disabled by default: no pid, no offset argument", async (ctx) => {
    const a = await ctx.client();
    assert.equal(a._pid, undefined);
    await emitAck(a, "send-message", { sender: "a", text: "hi" });
    const got = await a.got.messages.next();
    assert.equal(got.length, 1);
  });

  rtdTest("offsets: receive-message carries its row id as a string, last", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    assert.equal(typeof a._pid, "string");
    const ack = await emitAck(a, "send-message", { sender: "a", text: "hi" });
    const [msg, offset] = await a.got.messages.next();
    assert.equal(offset, String(ack.id));
    assert.equal(msg.id, ack.id);
  });

  // Only stored events can be replayed, so only they carry an offset (README): the others'
  // last argument is an object, never a string socket.io-client would take for an offset.
  rtdTest("offsets: only receive-message has one; identified, presence and error events do not, and are not replayed", { args: [...WINDOW, "--presence", "on"] }, async (ctx) => {
    const a = await ctx.client();
    const raw = [];
    a.onAny((ev, ...args) => raw.push([ev, args]));
    await emitAck(a, "identify", { userId: "u1", platform: "web" });
    const b = await ctx.client(); // user-connected to a
    a.emit("no-such-event"); // an error event
    await emitAck(b, "send-message", { sender: "b", text: "hi" });
    await a.got.messages.next();
    await a.got.errors.next();
    const byName = Object.fromEntries(raw.map(([ev, args]) => [ev, args]));
    assert.deepEqual(Object.keys(byName).sort(), ["error", "identified", "receive-message", "user-connected"]);
    for (const ev of ["identified", "user-connected", "error"]) {
      assert.equal(byName[ev].length, 1, ev);
      assert.equal(typeof byName[ev][0], "object", ev);
    }
    assert.equal(typeof byName["receive-message"].at(-1), "string");
    await drop(ctx, a);
    const c = await ctx.client(); // user-connected while a is away: not stored, not replayed
    await emitAck(c, "send-message", { sender: "c", text: "missed" });
    raw.length = 0;
    const r = await back(a);
    assert.equal(r.recovered, true);
    assert.deepEqual(texts(r.beforeConnect), ["missed"]);
    assert.deepEqual(raw.map(([ev]) => ev), ["receive-message"]);
  });

  rtdTest("restores the session, rooms, identity and missed packets, in order, once", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    await emitAck(a, "identify", { userId: "u1", platform: "flutter" });
    await emitAck(a, "join", { room: "room1" });
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "seen" });
    await a.got.messages.next();
    const id = a.id, pid = a._pid;
    await drop(ctx, a);
    await emitAck(b, "send-message", { sender: "b", text: "hello1" });
    await emitAck(b, "send-message", { sender: "b", text: "hello2", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "other room", room: "room2" });
    await emitAck(b, "send-message", { sender: "b", text: "hello3" });
    const r = await back(a);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.equal(a._pid, pid);
    assert.deepEqual(texts(r.beforeConnect), ["hello1", "hello2", "hello3"]);
    for (const [m, off] of r.beforeConnect) assert.equal(off, String(m.id));
    // the room and the identity came back
    await emitAck(b, "send-message", { sender: "b", text: "live", room: "room1" });
    assert.equal((await a.got.messages.waitCount(5))[4][0].text, "live");
    await emitAck(a, "send-message", { sender: "a", text: "mine" });
    const [mine] = await b.got.messages.waitCount(4).then((items) => items[items.length - 1]);
    assert.equal(mine.platform, "flutter");
    await sleep(100);
    assert.deepEqual(texts(a.got.messages.items), ["seen", "hello1", "hello2", "hello3", "live", "mine"]);
    // its connection row is active again (the same socket id: no second row, no new connection)
    await waitConnectionRow(ctx.rtd.db, id, (row) => row.status === "active" && row.disconnected_at === null, "active again");
    assert.equal(await count(ctx.rtd.db, "connections", `socket_id = '${id}'`), 1);
    assert.deepEqual(ctx.rtd.logLines(/Store write rejected/), []);
    const m = (await metrics(ctx.rtd)).samples;
    assert.equal(m.get("rtd_recoveries_tried_total"), 1);
    assert.equal(m.get("rtd_recoveries_succeeded_total"), 1);
    assert.equal(m.get("rtd_recovery_replayed_total"), 3);
  });

  // The official "should restore session and missed packets", on the wire: the missed
  // events come first, then the CONNECT answer with the same sid and pid, in one poll.
  rtdTest("on the wire: missed events, then 40{sid, pid}, in one poll", { args: [...WINDOW, "--presence", "off"] }, async (ctx) => {
    const p1 = new Polling(ctx.rtd.port, "/socket.io/");
    await p1.handshake();
    await p1.send("40");
    const [connect] = await p1.receive();
    const { sid, pid } = JSON.parse(connect.slice(2));
    assert.equal(typeof pid, "string");
    await p1.send('42["join",{"room":"room1"}]');
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "hello" });
    const [hello] = await p1.receive();
    const args = JSON.parse(hello.slice(2));
    assert.equal(args[0], "receive-message");
    const offset = args[2];
    assert.equal(offset, String(args[1].id));
    await p1.send("1");
    await sleep(100);
    await emitAck(b, "send-message", { sender: "b", text: "hello1" });
    await emitAck(b, "send-message", { sender: "b", text: "hello2", room: "room1" });
    await emitAck(b, "send-message", { sender: "b", text: "hello3" });
    const p2 = new Polling(ctx.rtd.port, "/socket.io/");
    await p2.handshake();
    await p2.send(`40${JSON.stringify({ pid, offset })}`);
    await sleep(200);
    const packets = await p2.receive();
    assert.equal(packets.length, 4, JSON.stringify(packets));
    const evs = packets.slice(0, 3).map((p) => JSON.parse(p.slice(2)));
    assert.deepEqual(evs.map((e) => e[1].text), ["hello1", "hello2", "hello3"]);
    for (const e of evs) assert.equal(e[2], String(e[1].id));
    assert.deepEqual(JSON.parse(packets[3].slice(2)), { sid, pid });
    await p2.send("1");
  });

  rtdTest("without an offset (no event before the drop) recovers from the time it left", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    const b = await ctx.client();
    const id = a.id;
    await drop(ctx, a);
    await emitAck(b, "send-message", { sender: "b", text: "while away" });
    const r = await back(a);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.deepEqual(texts(r.beforeConnect), ["while away"]);
  });

  rtdTest("fails to restore an unknown session", { args: WINDOW }, async (ctx) => {
    const s = makeClient(ctx.rtd, { auth: { pid: "foo", offset: "bar" } });
    ctx.track(s);
    await connectSocket(s);
    assert.equal(s.recovered, false);
    assert.notEqual(s._pid, "foo");
  });

  rtdTest("a client's own disconnect is not recoverable", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    const id = a.id;
    a.disconnect();
    await sleep(100);
    const r = await back(a);
    assert.equal(r.recovered, false);
    assert.notEqual(a.id, id);
  });

  rtdTest("an expired window gives a fresh session", { args: ["--recovery-window", "200"] }, async (ctx) => {
    const a = await ctx.client();
    const id = a.id;
    await drop(ctx, a);
    await sleep(400);
    const r = await back(a);
    assert.equal(r.recovered, false);
    assert.notEqual(a.id, id);
  });

  rtdTest("two tabs with one pid: one live socket, the newest connection has the session", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    await emitAck(a, "send-message", { sender: "a", text: "x" });
    const [, offset] = await a.got.messages.next();
    const id = a.id, pid = a._pid;
    await drop(ctx, a);
    const t1 = makeClient(ctx.rtd, { auth: { pid, offset } });
    const t2 = makeClient(ctx.rtd, { auth: { pid, offset } });
    ctx.track(t1);
    ctx.track(t2);
    await connectSocket(t1);
    // a new client object never says recovered (it compares with its own pid): the CONNECT
    // answer's sid and pid tell
    assert.equal(t1.id, id);
    assert.equal(t1._pid, pid);
    await emitAck(t1, "join", { room: "room1" });
    const kicked = new Promise((resolve) => t1.once("disconnect", resolve));
    await connectSocket(t2);
    assert.equal(t2.id, id);
    assert.equal(t2._pid, pid);
    assert.equal(await kicked, "io server disconnect");
    // the room went along, and only t2 gets what is sent to it
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "to room1", room: "room1" });
    assert.equal((await t2.got.messages.next())[0].text, "to room1");
    await sleep(100);
    assert.equal(t1.got.messages.items.length, 0);
  });

  rtdTest("a replay longer than --recovery-max-events gives a fresh session", { args: [...WINDOW, "--recovery-max-events", "2"] }, async (ctx) => {
    const a = await ctx.client();
    const b = await ctx.client();
    const id = a.id;
    await drop(ctx, a);
    for (const t of ["1", "2", "3"]) await emitAck(b, "send-message", { sender: "b", text: t });
    const r = await back(a);
    assert.equal(r.recovered, false);
    assert.deepEqual(r.beforeConnect, []);
    await eventually(async () => assert.equal((await metrics(ctx.rtd)).samples.get("rtd_recoveries_succeeded_total"), 0));
    assert.equal(a.id, id); // the id is kept, the session is new
  });

  // What Node.js cannot do: the session and the missed messages survive a restart of rtd.
  for (const sig of ["SIGTERM", "SIGKILL"]) {
    rtdTest(`rtd restarted (${sig}) while the client is away: messages before and after, once, in order`, { args: WINDOW }, async (ctx) => {
      const first = ctx.rtd;
      const a = await ctx.client();
      await emitAck(a, "identify", { userId: "u1", platform: "flutter" });
      await emitAck(a, "join", { room: "room1" });
      const b = await ctx.client();
      await emitAck(b, "send-message", { sender: "b", text: "seen" });
      await a.got.messages.next();
      const id = a.id, pid = a._pid;
      await drop(ctx, a);
      await emitAck(b, "send-message", { sender: "b", text: "before" });
      await emitAck(b, "send-message", { sender: "b", text: "before room1", room: "room1" });
      await sleep(200); // committed
      if (sig === "SIGTERM") await first.stop();
      else {
        first.signal("SIGKILL");
        await first.waitExit();
      }
      b.disconnect();
      ctx.rtd = await startRtd({ dir: first.dir, db: first.db, port: first.port, args: WINDOW });
      const b2 = await ctx.client();
      await emitAck(b2, "send-message", { sender: "b", text: "after" });
      await emitAck(b2, "send-message", { sender: "b", text: "after room2", room: "room2" });
      await emitAck(b2, "send-message", { sender: "b", text: "after room1", room: "room1" });
      const r = await back(a);
      assert.equal(r.recovered, true);
      assert.equal(a.id, id);
      assert.equal(a._pid, pid);
      assert.deepEqual(texts(r.beforeConnect), ["before", "before room1", "after", "after room1"]);
      await emitAck(a, "send-message", { sender: "a", text: "mine" });
      const items = await b2.got.messages.waitCount(2); // "after", "mine"
      assert.equal(items[1][0].text, "mine");
      assert.equal(items[1][0].platform, "flutter");
      await sleep(100);
      assert.deepEqual(texts(a.got.messages.items), ["seen", "before", "before room1", "after", "after room1", "mine"]);
    });
  }

  rtdTest("SIGKILL while the client is connected: its session was stored as it joined", { args: WINDOW }, async (ctx) => {
    const first = ctx.rtd;
    const a = await ctx.client();
    await emitAck(a, "join", { room: "room1" });
    await emitAck(a, "send-message", { sender: "a", text: "seen" });
    await a.got.messages.next();
    const id = a.id;
    await sleep(200);
    const gone = new Promise((resolve) => a.once("disconnect", resolve));
    first.signal("SIGKILL");
    await first.waitExit();
    await gone;
    ctx.rtd = await startRtd({ dir: first.dir, db: first.db, port: first.port, args: WINDOW });
    const b = await ctx.client();
    await emitAck(b, "send-message", { sender: "b", text: "after room1", room: "room1" });
    const r = await back(a);
    assert.equal(r.recovered, true);
    assert.equal(a.id, id);
    assert.deepEqual(texts(r.beforeConnect), ["after room1"]);
  });

  rtdTest("a session nobody came back for leaves the store after the window", { args: ["--recovery-window", "300"] }, async (ctx) => {
    const a = await ctx.client();
    const b = await ctx.client();
    const pid = a._pid;
    await drop(ctx, a);
    await eventually(async () => assert.equal(await count(ctx.rtd.db, "recovery_sessions", `pid = '${pid}'`), 1));
    await sleep(500);
    await drop(ctx, b); // a drop is when expired sessions go
    await eventually(async () => assert.equal(await count(ctx.rtd.db, "recovery_sessions", `pid = '${pid}'`), 0));
  });

  rtdTest("a client's own disconnect removes its stored session", { args: WINDOW }, async (ctx) => {
    const a = await ctx.client();
    await emitAck(a, "join", { room: "room1" });
    await eventually(async () => assert.equal(await count(ctx.rtd.db, "recovery_sessions"), 1));
    a.disconnect();
    await eventually(async () => assert.equal(await count(ctx.rtd.db, "recovery_sessions"), 0));
  });
});
