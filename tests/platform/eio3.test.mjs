// Socket.IO 2.x clients (socket.io-client 2.5, "sio2": Engine.IO v3 and the Socket.IO v4
// protocol) on rtd --allow-eio3, mixed with socket.io-client 4.8 clients on the same port and
// path: identify, send-message with acks, receive-message both ways, rooms, get-messages,
// presence and the connections rows; and the refusal of 2.x clients without the flag.

import assert from "node:assert/strict";
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import io2 from "sio2";
import { Polling3, decodeText3, encodeText3 } from "../js/lib/eio3.mjs";
import { emitAck, query, request, rtdTest, sleep, startRtd, tempDir, waitConnectionRow, within } from "./lib.mjs";

const ALLOW = { args: ["--allow-eio3"] };

// The kinds of 2.x client: transports as socket.io-client 2.5 takes them.
const OLD_KINDS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: {}, // polling first, then the upgrade to WebSocket
};

// A connected socket.io-client 2.5 socket on rtd's "/", recorded by ctx like the 4.8 ones
// (s.got.messages, .identified, .joined, .left, .errors) and closed at the end of the test.
async function oldClient(ctx, kind, opts = {}) {
  const s = io2(ctx.rtd.url, { forceNew: true, reconnection: false, timeout: 5000, ...OLD_KINDS[kind], ...opts });
  ctx.track(s);
  await within(
    new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", (e) => reject(new Error(`connect_error: ${e?.message ?? e}`)));
    }),
    5000,
    "the 2.x client's connect",
  );
  if (kind === "upgrade" && s.io.engine.transport.name !== "websocket") {
    await within(new Promise((resolve) => s.io.engine.once("upgrade", resolve)), 5000, "the 2.x client's upgrade");
  }
  return s;
}

// emit with an ack on a 2.x socket (no timeout() or emitWithAck() there): the ack's first value.
function ack2(s, event, ...args) {
  return within(new Promise((resolve) => s.emit(event, ...args, (v) => resolve(v))), 5000, `the ack of "${event}"`);
}

// An ack for either kind of socket.
const ackAny = (s, event, ...args) => (typeof s.emitWithAck === "function" ? emitAck(s, event, ...args) : ack2(s, event, ...args));

describe("socket.io-client 2.x (--allow-eio3)", () => {
  rtdTest("2.x clients on every transport connect beside 4.8 clients: socket ids, presence, connections rows", ALLOW, async (ctx) => {
    const { rtd } = ctx;
    const op = await oldClient(ctx, "polling");
    const nw = await ctx.client({ kind: "websocket" });
    const ow = await oldClient(ctx, "websocket");
    const np = await ctx.client({ kind: "polling" });
    const ou = await oldClient(ctx, "upgrade");
    const all = [op, nw, ow, np, ou];

    // a 2.x client takes its Engine.IO id for its socket id on "/": rtd must use the same
    for (const s of [op, ow, ou]) assert.equal(s.id, s.io.engine.id);

    // every client is told about each later one, old and new alike, with the running total
    for (const [i, s] of all.entries()) {
      const expected = all.slice(i + 1).map((later, k) => ({ socketId: later.id, totalConnections: i + k + 2 }));
      const got = (await s.got.joined.waitCount(expected.length)).map(([e]) => e);
      assert.deepEqual(got, expected, `user-connected events of client ${i}`);
    }

    const transports = [
      [op, "polling"],
      [nw, "websocket"],
      [ow, "websocket"],
      [np, "polling"],
      [ou, "websocket"],
    ];
    for (const [s, transport] of transports) {
      const row = await waitConnectionRow(rtd.db, s.id, (r) => r.transport === transport, `on ${transport}`);
      assert.equal(row.status, "active");
      assert.equal(row.platform, "unknown");
      assert.equal(row.user_id, null);
      assert.equal(row.remote_addr, "127.0.0.1");
    }
    assert.equal((await query(rtd.db, "SELECT count(*) AS n FROM connections WHERE status = 'active'"))[0].n, 5);

    // a 2.x client leaves: old and new clients are told
    const opId = op.id;
    op.disconnect();
    for (const s of [nw, ow, np, ou]) {
      const [e] = await s.got.left.next();
      assert.deepEqual(e, { socketId: opId, totalConnections: 4 });
    }
    const gone = await waitConnectionRow(rtd.db, opId, (r) => r.status === "disconnected", "disconnected");
    assert.equal(gone.transport, "polling");
    assert.ok(gone.duration_ms >= 0);
    for (const s of [nw, ow, np, ou]) assert.equal(s.got.errors.items.length, 0);
  });

  rtdTest("identify from 2.x clients: the ack and identified, the row's platform, user_id and app_version", ALLOW, async (ctx) => {
    const { rtd } = ctx;
    const cases = [
      ["polling", { userId: "lara-7", platform: "laravel", appVersion: "5.8.38" }, "polling"],
      ["websocket", { userId: "flutter-3", platform: "flutter", appVersion: "0.9.0" }, "websocket"],
      ["upgrade", { userId: "web-9", platform: "web", appVersion: "2.5.0" }, "websocket"],
    ];
    for (const [kind, identity, transport] of cases) {
      const s = await oldClient(ctx, kind);
      const expected = { socketId: s.id, userId: identity.userId, platform: identity.platform };
      assert.deepEqual(await ack2(s, "identify", identity), expected, `${kind}: identify ack`);
      const [ev, ...rest] = await s.got.identified.next();
      assert.deepEqual(ev, expected, `${kind}: identified event`);
      assert.equal(rest.length, 0);
      const row = await waitConnectionRow(rtd.db, s.id, (r) => r.platform === identity.platform && r.transport === transport, `${kind} identified`);
      assert.equal(row.user_id, identity.userId);
      assert.equal(row.app_version, identity.appVersion);
      assert.equal(row.status, "active");
      // without an ack: only the event
      s.emit("identify", { userId: identity.userId, platform: "PHP", appVersion: "7.4" });
      assert.deepEqual((await s.got.identified.next())[0], { ...expected, platform: "php" });
      await waitConnectionRow(rtd.db, s.id, (r) => r.platform === "php" && r.app_version === "7.4", `${kind} re-identified`);
      // an invalid one is refused the same way as for 4.8 clients
      const bad = await ack2(s, "identify", { userId: "", platform: "web" });
      assert.deepEqual(Object.keys(bad).sort(), ["code", "error", "ok"]);
      assert.equal(bad.ok, false);
      assert.equal(bad.code, "invalid_user_id");
    }
  });

  rtdTest("send-message with acks: old → everyone and new → everyone, the same receive-message for all", ALLOW, async (ctx) => {
    const { rtd } = ctx;
    const op = await oldClient(ctx, "polling");
    await ack2(op, "identify", { userId: "l1", platform: "laravel", appVersion: "5.8" });
    const ow = await oldClient(ctx, "websocket");
    await ack2(ow, "identify", { userId: "f1", platform: "flutter", appVersion: "0.9" });
    const nw = await ctx.identified("websocket", { userId: "f2", platform: "flutter", appVersion: "3.0" });
    const np = await ctx.identified("polling", { userId: "w1", platform: "web", appVersion: "1.0" });
    const all = [op, ow, nw, np];

    // non-ASCII text: the v3 polling payload counts UTF-16 units, the database stores UTF-8
    const texts = ["hello from laravel 2.x", "flutter 2.x: héllo 😀 €", "from 4.8 over ws 日本語", "from 4.8 over polling 🎉"];
    const senders = [op, ow, nw, np];
    const acks = [];
    for (const [i, s] of senders.entries()) {
      const a = await ackAny(s, "send-message", { sender: `sender ${i}`, text: texts[i] });
      assert.deepEqual(Object.keys(a).sort(), ["createdAt", "id", "ok"], JSON.stringify(a));
      assert.equal(a.ok, true);
      acks.push(a);
    }
    const platforms = ["laravel", "flutter", "flutter", "web"];
    const expected = senders.map((s, i) => ({
      id: acks[i].id,
      socketId: s.id,
      sender: `sender ${i}`,
      text: texts[i],
      platform: platforms[i],
      room: null,
      createdAt: acks[i].createdAt,
    }));
    for (const [k, s] of all.entries()) {
      const got = (await s.got.messages.waitCount(4)).map(([m]) => m);
      assert.deepEqual(got, expected, `receive-message on client ${k}`);
    }
    const rows = await query(rtd.db, "SELECT id, socket_id, sender, message_text, platform FROM messages ORDER BY id");
    assert.deepEqual(
      rows,
      expected.map((m) => ({ id: m.id, socket_id: m.socketId, sender: m.sender, message_text: m.text, platform: m.platform })),
    );
  });

  rtdTest("rooms: joins and leaves of 2.x clients are acked; a room's messages reach its old and new members only", ALLOW, async (ctx) => {
    const op = await oldClient(ctx, "polling");
    const ou = await oldClient(ctx, "upgrade");
    const nw = await ctx.client({ kind: "websocket" });
    const np = await ctx.client({ kind: "polling" });
    // members: op (2.x polling) and nw (4.8 ws); ou and np stay out
    assert.deepEqual(await ack2(op, "join", { room: "lobby" }), { ok: true });
    assert.deepEqual(await emitAck(nw, "join", { room: "lobby" }), { ok: true });

    const m1 = await ack2(op, "send-message", { sender: "op", text: "old to the lobby", room: "lobby" });
    const m2 = await emitAck(nw, "send-message", { sender: "nw", text: "new to the lobby", room: "lobby" });
    const m3 = await ack2(ou, "send-message", { sender: "ou", text: "outsider to the lobby", room: "lobby" });
    for (const s of [op, nw]) {
      const got = (await s.got.messages.waitCount(3)).map(([m]) => [m.id, m.room, m.text]);
      assert.deepEqual(got, [
        [m1.id, "lobby", "old to the lobby"],
        [m2.id, "lobby", "new to the lobby"],
        [m3.id, "lobby", "outsider to the lobby"],
      ]);
    }
    // the outsiders get the next message to everyone, and nothing before it
    const g1 = await emitAck(np, "send-message", { sender: "np", text: "everyone" });
    for (const s of [ou, np]) assert.deepEqual((await s.got.messages.waitCount(1)).map(([m]) => m.id), [g1.id]);

    // the old member leaves: the room's next message reaches the new member only
    assert.deepEqual(await ack2(op, "leave", { room: "lobby" }), { ok: true });
    const m4 = await emitAck(nw, "send-message", { sender: "nw", text: "still here?", room: "lobby" });
    const g2 = await ack2(ou, "send-message", { sender: "ou", text: "everyone again" });
    // waitCount resolves with everything received so far: g2 may already be there
    assert.deepEqual((await nw.got.messages.waitCount(5)).slice(0, 5).map(([m]) => m.id), [m1.id, m2.id, m3.id, g1.id, m4.id]);
    assert.deepEqual((await op.got.messages.waitCount(5)).slice(0, 5).map(([m]) => m.id), [m1.id, m2.id, m3.id, g1.id, g2.id], "nothing from the room after leaving");
    assert.equal((await nw.got.messages.waitCount(6))[5][0].id, g2.id);

    // a refused join answers the same way as for 4.8 clients
    const bad = await ack2(op, "join", { room: "" });
    assert.equal(bad.ok, false);
    assert.equal(bad.code, "invalid_room");
  });

  rtdTest("get-messages from 2.x clients: the history as 4.8 clients see it, per room too", ALLOW, async (ctx) => {
    const ow = await oldClient(ctx, "websocket");
    const op = await oldClient(ctx, "polling");
    const nw = await ctx.client({ kind: "websocket" });
    await ack2(op, "join", { room: "side" });
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const s = [ow, nw, op][i % 3];
      ids.push((await ackAny(s, "send-message", { sender: `s${i}`, text: `message ${i} ✓` })).id);
    }
    const side = (await ack2(op, "send-message", { sender: "op", text: "in the side room", room: "side" })).id;
    const fromNew = await emitAck(nw, "get-messages", {});
    for (const s of [ow, op]) {
      const page = await ack2(s, "get-messages", {});
      assert.deepEqual(page, fromNew, "the same history for old and new clients");
    }
    assert.deepEqual(
      fromNew.map((m) => m.id),
      [...ids].reverse(),
      "newest first, the room's message apart",
    );
    const limited = await ack2(ow, "get-messages", { limit: 2, before: ids[4] });
    assert.deepEqual(
      limited.map((m) => m.id),
      [ids[3], ids[2]],
    );
    const room = await ack2(op, "get-messages", { room: "side" });
    assert.deepEqual(
      room.map((m) => [m.id, m.room]),
      [[side, "side"]],
    );
  });

  rtdTest("presence: 4.8 clients are told about 2.x clients and the other way round", ALLOW, async (ctx) => {
    const nw = await ctx.client({ kind: "websocket" });
    const ow = await oldClient(ctx, "websocket");
    assert.deepEqual((await nw.got.joined.next())[0], { socketId: ow.id, totalConnections: 2 });
    const np = await ctx.client({ kind: "polling" });
    const op = await oldClient(ctx, "polling");
    assert.deepEqual((await ow.got.joined.waitCount(2)).map(([e]) => e), [
      { socketId: np.id, totalConnections: 3 },
      { socketId: op.id, totalConnections: 4 },
    ]);
    const npId = np.id;
    np.disconnect();
    for (const s of [nw, ow, op]) assert.deepEqual((await s.got.left.next())[0], { socketId: npId, totalConnections: 3 });
    const owId = ow.id;
    ow.disconnect();
    for (const s of [nw, op]) assert.deepEqual((await s.got.left.next())[0], { socketId: owId, totalConnections: 2 });
    // nobody is told about itself
    await emitAck(nw, "send-message", { sender: "nw", text: "sync" });
    await op.got.messages.waitCount(1);
    assert.deepEqual(op.got.joined.items, []);
  });

  rtdTest("--auth-secret: a 2.x client sends its token in the query; without a valid one it gets error \"unauthorized\"", { start: false }, async (ctx) => {
    const secret = "a-test-secret-of-more-than-16-bytes";
    const b64url = (x) => Buffer.from(JSON.stringify(x)).toString("base64url");
    const jwt = (claims, key = secret) => {
      const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}`;
      return `${head}.${crypto.createHmac("sha256", key).update(head).digest("base64url")}`;
    };
    const dir = tempDir();
    const file = path.join(dir, "secret");
    writeFileSync(file, `${secret}\n`);
    ctx.rtd = await startRtd({ dir, args: ["--allow-eio3", "--auth-secret", file] });
    for (const kind of ["polling", "websocket"]) {
      const s = await oldClient(ctx, kind, { query: { token: jwt({ sub: `old-${kind}` }) } });
      const row = await waitConnectionRow(ctx.rtd.db, s.id, (r) => r.user_id !== null, "with the token's subject");
      assert.equal(row.user_id, `old-${kind}`);
      assert.deepEqual(await ack2(s, "identify", { platform: "laravel" }), { socketId: s.id, userId: `old-${kind}`, platform: "laravel" });
    }
    for (const [what, q] of [
      ["no token", {}],
      ["a forged token", { token: jwt({ sub: "mallory" }, "another-secret-of-enough-length") }],
    ]) {
      const s = io2(ctx.rtd.url, { forceNew: true, reconnection: false, timeout: 3000, transports: ["polling"], query: q });
      ctx.track(s);
      let connected = false;
      s.on("connect", () => (connected = true));
      const [e] = await s.got.errors.next();
      assert.equal(e, "unauthorized", `${what}: the 2.x client's error event`);
      assert.equal(connected, false, what);
    }
    assert.equal((await query(ctx.rtd.db, "SELECT count(*) AS n FROM connections"))[0].n, 2, "rows of the two good clients only");
  });

  // Regression: the connect timeout was armed for v4 sessions only, so a v3 client refused by
  // --auth-secret kept its session (and its --max-connections slot) for as long as it pinged.
  rtdTest("--auth-secret: a refused 2.x client that keeps pinging loses its session after --connect-timeout", { start: false, timeout: 30000 }, async (ctx) => {
    const dir = tempDir();
    const file = path.join(dir, "secret");
    writeFileSync(file, "a-test-secret-of-more-than-16-bytes\n");
    ctx.rtd = await startRtd({ dir, args: ["--allow-eio3", "--auth-secret", file, "--connect-timeout", "1000", "--max-connections", "1"] });
    const p = new Polling3(ctx.rtd.port, "/socket.io/");
    const hs = await p.handshake();
    // the open packet, then (in this answer or the next) the refusal of its implicit CONNECT
    let seen = hs.packets.slice(1);
    if (!seen.some((x) => x.startsWith("44"))) seen = await p.getPackets();
    assert.ok(seen.some((x) => x.startsWith("44")), `the refusal: ${JSON.stringify(seen)}`);
    // Ping like a 2.x client (well inside pingInterval + pingTimeout) for three times the
    // connect timeout: the session must end anyway.
    const end = Date.now() + 3000;
    let status = 200;
    while (Date.now() < end && status === 200) {
      const res = await p.post(encodeText3(["2"]));
      status = res.status;
      if (status === 200) {
        const got = await p.get();
        if (got.status !== 200) status = got.status;
        else assert.ok(decodeText3(got.text).every((x) => x === "3" || x === "6" || x === "1"), got.text);
      }
      await sleep(200);
    }
    assert.equal(status, 400, "the refused session is gone within 3 s (--connect-timeout 1000)");
    // its last GET takes the close packet, and its --max-connections slot is free again
    const last = await p.get();
    assert.ok(last.status === 400 || decodeText3(last.text).includes("1"), `the last GET: ${last.status} ${last.text}`);
    const next = new Polling3(ctx.rtd.port, "/socket.io/");
    await next.handshake();
  });

  rtdTest("without --allow-eio3 a 2.x client never connects: the server answers 400; 4.8 clients are served", async (ctx) => {
    const { rtd } = ctx;
    for (const kind of ["polling", "websocket"]) {
      const s = io2(rtd.url, { forceNew: true, reconnection: false, timeout: 3000, ...OLD_KINDS[kind] });
      ctx.track(s);
      let connected = false;
      s.on("connect", () => (connected = true));
      const err = await within(new Promise((resolve) => s.once("connect_error", resolve)), 5000, `connect_error over ${kind}`);
      assert.ok(err, `connect_error over ${kind}`);
      assert.equal(connected, false);
      s.close();
    }
    const res = await request({ port: rtd.port, path: "/socket.io/?EIO=3&transport=polling&t=N8hyd6w" });
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.text), { code: 5, message: "Unsupported protocol version" });
    assert.equal((await query(rtd.db, "SELECT count(*) AS n FROM connections"))[0].n, 0, "no connection row for a refused client");
    const nw = await ctx.client({ kind: "websocket" });
    assert.equal((await emitAck(nw, "send-message", { sender: "n", text: "still fine" })).ok, true);
  });
});
