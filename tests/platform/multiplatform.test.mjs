// The three platforms at once, each on its own kind of transport: a Flutter app over WebSocket
// only, a Laravel backend over long-polling only, and a web page that starts with long-polling
// and upgrades to WebSocket.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { count, emitAck, query, rtdTest, waitConnectionRow } from "./lib.mjs";

const CLIENTS = [
  { kind: "websocket", identity: { userId: "flutter-user", platform: "flutter", appVersion: "3.22.0" }, transport: "websocket" },
  { kind: "polling", identity: { userId: "laravel-user", platform: "laravel", appVersion: "11.9" }, transport: "polling" },
  { kind: "upgrade", identity: { userId: "web-user", platform: "web", appVersion: "1.0.0" }, transport: "websocket" },
];

describe("three platforms on three transports", () => {
  rtdTest("presence, identify, messages to everyone and disconnects across flutter, laravel and web", async (ctx) => {
    const { rtd } = ctx;
    const sockets = [];
    for (const [i, c] of CLIENTS.entries()) {
      const s = await ctx.client({ kind: c.kind });
      // every client already connected is told, with the new total
      for (const prev of sockets) {
        const [ev] = await prev.got.joined.next();
        assert.deepEqual(ev, { socketId: s.id, totalConnections: i + 1 }, `${prev.id} told about client ${i}`);
      }
      sockets.push(s);
    }

    for (const [i, c] of CLIENTS.entries()) {
      const s = sockets[i];
      const expected = { socketId: s.id, userId: c.identity.userId, platform: c.identity.platform };
      assert.deepEqual(await emitAck(s, "identify", c.identity), expected);
      assert.deepEqual((await s.got.identified.next())[0], expected);
    }
    for (const [i, c] of CLIENTS.entries()) {
      const row = await waitConnectionRow(
        rtd.db,
        sockets[i].id,
        (r) => r.platform === c.identity.platform && r.transport === c.transport,
        `identified as ${c.identity.platform} on ${c.transport}`,
      );
      assert.equal(row.user_id, c.identity.userId);
      assert.equal(row.app_version, c.identity.appVersion);
      assert.equal(row.status, "active");
    }

    // Each sends one message (the web one names its platform, the others rely on identify).
    const acks = [];
    for (const [i, c] of CLIENTS.entries()) {
      const msg = { sender: `${c.identity.platform} sender`, text: `hello from ${c.identity.platform}` };
      if (c.identity.platform === "web") msg.platform = "web";
      const ack = await emitAck(sockets[i], "send-message", msg);
      assert.equal(ack.ok, true, JSON.stringify(ack));
      acks.push(ack);
    }
    for (const s of sockets) {
      const got = (await s.got.messages.waitCount(3)).map(([m]) => m);
      assert.equal(got.length, 3);
      assert.deepEqual(
        got,
        CLIENTS.map((c, i) => ({
          id: acks[i].id,
          socketId: sockets[i].id,
          sender: `${c.identity.platform} sender`,
          text: `hello from ${c.identity.platform}`,
          platform: c.identity.platform,
          room: null,
          createdAt: acks[i].createdAt,
        })),
      );
    }
    const rows = await query(rtd.db, "SELECT id, socket_id, platform, message_text FROM messages ORDER BY id");
    assert.deepEqual(
      rows,
      CLIENTS.map((c, i) => ({ id: acks[i].id, socket_id: sockets[i].id, platform: c.identity.platform, message_text: `hello from ${c.identity.platform}` })),
    );

    // History is the same whatever the transport.
    const histories = await Promise.all(sockets.map((s) => emitAck(s, "get-messages", { limit: 10 })));
    for (const h of histories) assert.deepEqual(h.map((m) => m.id), acks.map((a) => a.id).reverse());

    // Disconnects, last first: the others are told with the new total; the rows close.
    const ids = sockets.map((s) => s.id);
    sockets[2].disconnect();
    for (const s of [sockets[0], sockets[1]]) assert.deepEqual((await s.got.left.next())[0], { socketId: ids[2], totalConnections: 2 });
    sockets[1].disconnect();
    assert.deepEqual((await sockets[0].got.left.next())[0], { socketId: ids[1], totalConnections: 1 });
    for (const id of ids.slice(1)) {
      const row = await waitConnectionRow(rtd.db, id, (r) => r.status === "disconnected", "closed");
      assert.notEqual(row.disconnected_at, null);
      assert.ok(row.duration_ms >= 0);
    }
    assert.equal(await count(rtd.db, "connections", "status = 'active'"), 1);
    assert.equal(sockets[0].got.errors.items.length + sockets[1].got.errors.items.length, 0);
  });

  rtdTest("several clients per platform: every message reaches every client once", async (ctx) => {
    const { rtd } = ctx;
    const sockets = [];
    for (let round = 0; round < 3; round++) {
      for (const c of CLIENTS) {
        sockets.push(await ctx.identified(c.kind, { ...c.identity, userId: `${c.identity.userId}-${round}` }));
      }
    }
    const acks = await Promise.all(sockets.map((s, i) => emitAck(s, "send-message", { sender: `s${i}`, text: `m${i}` })));
    for (const a of acks) assert.equal(a.ok, true);
    const want = new Set(acks.map((a) => a.id));
    for (const s of sockets) {
      const got = await s.got.messages.waitCount(sockets.length);
      assert.equal(got.length, sockets.length);
      assert.deepEqual(new Set(got.map(([m]) => m.id)), want);
    }
    const byPlatform = await query(rtd.db, "SELECT platform, count(*) AS n FROM messages GROUP BY platform ORDER BY platform");
    assert.deepEqual(byPlatform, [
      { platform: "flutter", n: 3 },
      { platform: "laravel", n: 3 },
      { platform: "web", n: 3 },
    ]);
  });
});
