// The platform's events one by one: connect, identify, send-message and disconnect, with their
// payloads, their error paths and the rows they leave in the database.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { Polling } from "../js/lib/http.mjs";
import {
  ISO_RE,
  connectionRow,
  count,
  dbTimeMs,
  emitAck,
  expectRefused,
  query,
  querySync,
  rtdTest,
  waitConnectionRow,
} from "./lib.mjs";

describe("connect", () => {
  rtdTest("a connection gets an active row with platform 'unknown'; every other client gets user-connected", async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "websocket" });
    const row = await waitConnectionRow(rtd.db, a.id);
    assert.equal(row.status, "active");
    assert.equal(row.platform, "unknown");
    assert.equal(row.user_id, null);
    assert.equal(row.disconnected_at, null);
    assert.equal(row.duration_ms, null);
    assert.equal(row.transport, "websocket");
    assert.equal(row.remote_addr, "127.0.0.1");
    const connectedAt = dbTimeMs(row.connected_at);
    assert.ok(Math.abs(connectedAt - Date.now()) < 60000, `connected_at ${row.connected_at} is about now`);

    const b = await ctx.client({ kind: "polling" });
    const [evA] = await a.got.joined.next();
    assert.deepEqual(evA, { socketId: b.id, totalConnections: 2 });
    const bRow = await waitConnectionRow(rtd.db, b.id);
    assert.equal(bRow.status, "active");
    assert.equal(bRow.platform, "unknown");
    assert.equal(bRow.transport, "polling");

    const c = await ctx.client({ kind: "upgrade" });
    assert.deepEqual((await a.got.joined.next())[0], { socketId: c.id, totalConnections: 3 });
    assert.deepEqual((await b.got.joined.next())[0], { socketId: c.id, totalConnections: 3 });

    // The newcomer is not told about itself: anything sent to it before c's own message would
    // have arrived first on the same transport.
    await emitAck(c, "send-message", { sender: "c", text: "after connecting" });
    await c.got.messages.waitCount(1);
    assert.equal(c.got.joined.items.length, 0, `c got ${JSON.stringify(c.got.joined.items)}`);
    assert.equal(b.got.joined.items.length, 1, "b was told about c only");
    assert.equal(await count(rtd.db, "connections", "status = 'active'"), 3);
  });
});

describe("identify", () => {
  rtdTest("identify updates the row and answers with identified, and with the same object in the ack", async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket" });
    const ack = await emitAck(s, "identify", { userId: "user-17", platform: "flutter", appVersion: "2.3.0" });
    const expected = { socketId: s.id, userId: "user-17", platform: "flutter" };
    assert.deepEqual(ack, expected);
    const [ev, ...rest] = await s.got.identified.next();
    assert.deepEqual(ev, expected);
    assert.equal(rest.length, 0);
    const row = await waitConnectionRow(rtd.db, s.id, (r) => r.platform === "flutter", "with platform flutter");
    assert.equal(row.user_id, "user-17");
    assert.equal(row.app_version, "2.3.0");
    assert.equal(row.status, "active");

    // Without an ack: only the event. Another platform (any short token, case-folded).
    s.emit("identify", { userId: "user-17", platform: "Laravel", appVersion: "10.1" });
    const [ev2] = await s.got.identified.next();
    assert.deepEqual(ev2, { socketId: s.id, userId: "user-17", platform: "laravel" });
    const row2 = await waitConnectionRow(rtd.db, s.id, (r) => r.platform === "laravel", "with platform laravel");
    assert.equal(row2.app_version, "10.1");

    // Other short tokens are platforms too.
    const ack3 = await emitAck(s, "identify", { userId: "user-17", platform: "react-native", appVersion: "0.74" });
    assert.equal(ack3.platform, "react-native");
    await waitConnectionRow(rtd.db, s.id, (r) => r.platform === "react-native", "with platform react-native");
    assert.equal(s.got.errors.items.length, 0);
  });

  rtdTest("identify over long-polling and after an upgrade updates the same row", async (ctx) => {
    const { rtd } = ctx;
    const p = await ctx.client({ kind: "polling" });
    const u = await ctx.client({ kind: "upgrade" });
    assert.deepEqual(await emitAck(p, "identify", { userId: "lara-1", platform: "laravel", appVersion: "11.0" }), {
      socketId: p.id,
      userId: "lara-1",
      platform: "laravel",
    });
    assert.deepEqual(await emitAck(u, "identify", { userId: "web-1", platform: "web", appVersion: "1.0.0" }), {
      socketId: u.id,
      userId: "web-1",
      platform: "web",
    });
    const pr = await waitConnectionRow(rtd.db, p.id, (r) => r.platform === "laravel");
    assert.equal(pr.transport, "polling");
    assert.equal(pr.user_id, "lara-1");
    const ur = await waitConnectionRow(rtd.db, u.id, (r) => r.platform === "web" && r.transport === "websocket", "upgraded and identified");
    assert.equal(ur.user_id, "web-1");
    assert.equal(ur.app_version, "1.0.0");
    assert.equal(await count(rtd.db, "connections"), 2, "one row per connection, not one per transport");
  });

  for (const ack of [true, false]) {
    rtdTest(`invalid identify is refused ${ack ? "in the ack" : "with an error event"}; the row is left as it was`, async (ctx) => {
      const { rtd } = ctx;
      const s = await ctx.client({ kind: ack ? "websocket" : "polling" });
      const cases = [
        [[{ userId: "u1", platform: "not a token!", appVersion: "1" }], "invalid_platform"],
        [[{ userId: "u1", platform: "x".repeat(33), appVersion: "1" }], "invalid_platform"],
        [[{ userId: "u1", platform: 7, appVersion: "1" }], "invalid_platform"],
        [[{ userId: "u1", platform: "", appVersion: "1" }], "invalid_platform"],
        [[{ userId: "", platform: "web", appVersion: "1" }], "invalid_user_id"],
        [[{ userId: "u".repeat(129), platform: "web", appVersion: "1" }], "invalid_user_id"],
        [[{ userId: { id: 1 }, platform: "web", appVersion: "1" }], "invalid_user_id"],
        [[{ userId: "u1", platform: "web", appVersion: "v".repeat(65) }], "invalid_app_version"],
        [[{ userId: "u1", platform: "web", appVersion: 3 }], "invalid_app_version"],
        [["web"], "invalid_payload"],
        [[], "invalid_payload"],
      ];
      for (const [args, code] of cases) await expectRefused(s, "identify", args, code, { ack });

      // A valid identify now: the refused ones must not have changed anything, not even the
      // parts of them that were valid (userId "u1", appVersion "1").
      const good = await emitAck(s, "identify", { platform: "web" });
      assert.deepEqual(good, { socketId: s.id, userId: null, platform: "web" });
      assert.equal(s.got.identified.items.length, 1, `identified events: ${JSON.stringify(s.got.identified.items)}`);
      const row = await waitConnectionRow(rtd.db, s.id, (r) => r.platform === "web");
      assert.equal(row.user_id, null);
      assert.equal(row.app_version, null);
    });
  }
});

describe("send-message", () => {
  rtdTest("a message is stored, then receive-message goes to every client, the sender included; the ack follows the commit", async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.identified("websocket", { userId: "f1", platform: "flutter", appVersion: "3.0" });
    const b = await ctx.identified("polling", { userId: "l1", platform: "laravel", appVersion: "11" });
    const c = await ctx.identified("upgrade", { userId: "w1", platform: "web", appVersion: "1" });

    // Broadcast only after commit too: b reads each row as its receive-message arrives.
    const seenByB = [];
    b.on("receive-message", (m) => {
      seenByB.push(querySync(rtd.db, `SELECT count(*) AS n FROM messages WHERE id = ${Number(m.id)}`)[0].n);
    });

    // Ack only after commit: the ack handler reads the row right away, from another process.
    const n = 12;
    const acks = [];
    for (let i = 0; i < n; i++) {
      acks.push(
        new Promise((resolve, reject) => {
          a.timeout(5000).emit("send-message", { sender: "Alice", text: `hello ${i}` }, (err, ack) => {
            if (err) return reject(err);
            try {
              const rows = querySync(rtd.db, `SELECT * FROM messages WHERE id = ${Number(ack.id)}`);
              resolve({ ack, rows });
            } catch (e) {
              reject(e);
            }
          });
        }),
      );
    }
    const results = await Promise.all(acks);
    const ids = [];
    for (const [i, { ack, rows }] of results.entries()) {
      assert.deepEqual(Object.keys(ack).sort(), ["createdAt", "id", "ok"], JSON.stringify(ack));
      assert.equal(ack.ok, true);
      assert.ok(Number.isInteger(ack.id) && ack.id > 0, `id ${ack.id}`);
      assert.match(ack.createdAt, ISO_RE);
      assert.equal(rows.length, 1, `message ${ack.id} is readable when its ack arrives`);
      const r = rows[0];
      assert.equal(r.socket_id, a.id);
      assert.equal(r.sender, "Alice");
      assert.equal(r.message_text, `hello ${i}`);
      assert.equal(r.platform, "flutter", "the platform defaults to the identified one");
      assert.equal(r.room, null);
      assert.equal(dbTimeMs(r.created_at), Date.parse(ack.createdAt), "created_at is the ack's createdAt");
      ids.push(ack.id);
    }
    assert.equal(new Set(ids).size, n, "distinct ids");

    // Everyone, the sender too, gets every message, in order, with the stored id.
    for (const s of [a, b, c]) {
      const got = await s.got.messages.waitCount(n);
      assert.equal(got.length, n);
      for (const [i, [m]] of got.entries()) {
        assert.deepEqual(m, {
          id: ids[i],
          socketId: a.id,
          sender: "Alice",
          text: `hello ${i}`,
          platform: "flutter",
          room: null,
          createdAt: results[i].ack.createdAt,
        });
      }
    }
    assert.deepEqual(seenByB, Array(n).fill(1), "each message was readable when its receive-message arrived");
    assert.equal(await count(rtd.db, "messages"), n);
  });

  rtdTest("platform: the given one (case-folded) wins, else the identified one, else 'unknown' before identify", async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "polling" });
    const a1 = await emitAck(s, "send-message", { sender: "x", text: "before identify" });
    const a2 = await emitAck(s, "send-message", { sender: "x", text: "explicit", platform: "Laravel" });
    await emitAck(s, "identify", { userId: "u", platform: "web", appVersion: "1" });
    const a3 = await emitAck(s, "send-message", { sender: "x", text: "after identify" });
    const a4 = await emitAck(s, "send-message", { sender: "x", text: "explicit again", platform: "flutter" });
    const rows = await query(rtd.db, "SELECT id, platform FROM messages ORDER BY id");
    assert.deepEqual(rows, [
      { id: a1.id, platform: "unknown" },
      { id: a2.id, platform: "laravel" },
      { id: a3.id, platform: "web" },
      { id: a4.id, platform: "flutter" },
    ]);
    const got = (await s.got.messages.waitCount(4)).map(([m]) => m.platform);
    assert.deepEqual(got, ["unknown", "laravel", "web", "flutter"]);
  });

  rtdTest("limits: sender up to 100 characters (not bytes), text up to 10 000 bytes by default", async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket" });
    const accepted = [
      { sender: "é".repeat(100), text: "100 two-byte characters in the sender" },
      { sender: "s".repeat(100), text: "t".repeat(10000) },
      { sender: "multi", text: "é".repeat(5000) }, // 10 000 bytes
      { sender: "😀 emoji", text: "ünïcödé ✓ 😀 中文" },
    ];
    for (const m of accepted) {
      const ack = await emitAck(s, "send-message", m);
      assert.equal(ack.ok, true, `${JSON.stringify(m).slice(0, 80)}: ${JSON.stringify(ack)}`);
      const [row] = await query(rtd.db, `SELECT sender, message_text FROM messages WHERE id = ${ack.id}`);
      assert.deepEqual(row, { sender: m.sender, message_text: m.text });
    }
    await expectRefused(s, "send-message", [{ sender: "s".repeat(101), text: "x" }], "invalid_sender");
    await expectRefused(s, "send-message", [{ sender: "é".repeat(101), text: "x" }], "invalid_sender");
    await expectRefused(s, "send-message", [{ sender: "x", text: "t".repeat(10001) }], "text_too_long");
    // 3334 characters but 10 002 bytes: the limit is in bytes
    await expectRefused(s, "send-message", [{ sender: "x", text: "€".repeat(3334) }], "text_too_long");
    assert.equal(await count(rtd.db, "messages"), accepted.length);
  });

  for (const ack of [true, false]) {
    rtdTest(`invalid send-message is refused ${ack ? "in the ack" : "with an error event"}: nothing stored, nothing broadcast`, async (ctx) => {
      const { rtd } = ctx;
      const s = await ctx.identified(ack ? "websocket" : "upgrade", { userId: "u", platform: "web", appVersion: "1" });
      const other = await ctx.client({ kind: "polling" });
      const cases = [
        [[{ text: "no sender" }], "invalid_sender"],
        [[{ sender: "", text: "empty sender" }], "invalid_sender"],
        [[{ sender: 42, text: "number sender" }], "invalid_sender"],
        [[{ sender: null, text: "null sender" }], "invalid_sender"],
        [[{ sender: "x".repeat(101), text: "long sender" }], "invalid_sender"],
        [[{ sender: "bob" }], "invalid_text"],
        [[{ sender: "bob", text: "" }], "invalid_text"],
        [[{ sender: "bob", text: 12 }], "invalid_text"],
        [[{ sender: "bob", text: ["a"] }], "invalid_text"],
        [[{ sender: "bob", text: "nul \u0000 inside" }], "invalid_text"],
        [[{ sender: "b\u0000b", text: "nul in the sender" }], "invalid_sender"],
        [[{ sender: "bob", text: "x".repeat(10001) }], "text_too_long"],
        [[{ sender: "bob", text: "bad platform", platform: "no spaces allowed" }], "invalid_platform"],
        [[{ sender: "bob", text: "bad platform", platform: 5 }], "invalid_platform"],
        [[{ sender: "bob", text: "bad room", room: "" }], "invalid_room"],
        [[{ sender: "bob", text: "bad room", room: 5 }], "invalid_room"],
        [[{ sender: "bob", text: "bad room", room: "r".repeat(129) }], "invalid_room"],
        [["just a string"], "invalid_payload"],
        [[["sender", "text"]], "invalid_payload"],
        [[], "invalid_payload"],
      ];
      for (const [args, code] of cases) await expectRefused(s, "send-message", args, code, { ack });

      // A valid message afterwards is the first and only one anybody receives.
      const okAck = await emitAck(s, "send-message", { sender: "bob", text: "valid" });
      assert.equal(okAck.ok, true);
      for (const c of [s, other]) {
        const [[m]] = await c.got.messages.waitCount(1);
        assert.equal(m.id, okAck.id);
        assert.equal(m.text, "valid");
        assert.equal(c.got.messages.items.length, 1, "nothing was broadcast for the refused messages");
      }
      const rows = await query(rtd.db, "SELECT id, message_text FROM messages");
      assert.deepEqual(rows, [{ id: okAck.id, message_text: "valid" }], "only the valid message is stored");
      assert.equal(other.got.errors.items.length, 0, "the refusals went to the sender only");
    });
  }

  rtdTest("text that is not valid UTF-8 (raw long-polling body) is not stored", async (ctx) => {
    const { rtd } = ctx;
    const watcher = await ctx.client({ kind: "websocket" });
    const p = new Polling(rtd.port, "/socket.io/");
    await p.handshake();
    await p.send("40");
    const [connected] = await p.receive();
    assert.match(connected, /^40\{"sid":"/);
    const body = Buffer.concat([
      Buffer.from('421["send-message",{"sender":"x","text":"bad '),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"}]'),
    ]);
    await p.post(body).catch(() => {});
    // Whatever the transport does with it (a refusal or the end of the session), no row and no
    // broadcast: the next message the watcher gets is its own.
    const okAck = await emitAck(watcher, "send-message", { sender: "w", text: "fine" });
    const [[m]] = await watcher.got.messages.waitCount(1);
    assert.equal(m.id, okAck.id);
    assert.deepEqual(await query(rtd.db, "SELECT message_text FROM messages"), [{ message_text: "fine" }]);
  });
});

describe("disconnect", () => {
  rtdTest("a disconnect closes the row (disconnected_at, duration_ms, status) and tells the others", async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "websocket" });
    const b = await ctx.client({ kind: "polling" });
    const c = await ctx.client({ kind: "upgrade" });
    await a.got.joined.waitCount(2);
    await b.got.joined.waitCount(1);

    const bid = b.id; // socket.id is unset once disconnected
    b.disconnect();
    for (const s of [a, c]) {
      const [ev, ...rest] = await s.got.left.next();
      assert.deepEqual(ev, { socketId: bid, totalConnections: 2 });
      assert.equal(rest.length, 0);
    }
    const row = await waitConnectionRow(rtd.db, bid, (r) => r.status === "disconnected", "closed");
    assert.notEqual(row.disconnected_at, null);
    assert.equal(typeof row.duration_ms, "number");
    assert.ok(row.duration_ms >= 0);
    const span = dbTimeMs(row.disconnected_at) - dbTimeMs(row.connected_at);
    assert.ok(Math.abs(span - row.duration_ms) <= 1, `duration_ms ${row.duration_ms} = disconnected_at - connected_at (${span})`);

    // A client that goes away without a Socket.IO disconnect (its transport just closes).
    const cid = c.id;
    c.io.engine.close();
    assert.deepEqual((await a.got.left.next())[0], { socketId: cid, totalConnections: 1 });
    const crow = await waitConnectionRow(rtd.db, cid, (r) => r.status === "disconnected", "closed");
    assert.notEqual(crow.disconnected_at, null);
    assert.ok(crow.duration_ms >= 0);

    const arow = await connectionRow(rtd.db, a.id);
    assert.equal(arow.status, "active");
    assert.equal(arow.disconnected_at, null);
  });
});
