// --presence on|off: the user-connected / user-disconnected broadcasts (on by default).
//
// Absence is checked without waiting for a while: a broadcast is queued on a client's transport
// before anything the server sends it later, so once a later message has arrived, an earlier
// presence event would have arrived before it.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { emitAck, rtdTest, waitConnectionRow } from "./lib.mjs";

// a (websocket) is connected; b (polling) connects, says something and leaves; then a and a
// third client c (upgrading) say something. Returns the sockets and b's id.
async function scenario(ctx) {
  const a = await ctx.client({ kind: "websocket" });
  const b = await ctx.client({ kind: "polling" });
  const bid = b.id;
  const m1 = await emitAck(b, "send-message", { sender: "b", text: "hi" });
  await a.got.messages.waitCount(1);
  assert.equal(a.got.messages.items[0][0].id, m1.id);
  const joinedBeforeMessage = a.got.joined.items.length;

  b.disconnect();
  await waitConnectionRow(ctx.rtd.db, bid, (r) => r.status === "disconnected", "closed");
  const c = await ctx.client({ kind: "upgrade" });
  const m2 = await emitAck(c, "send-message", { sender: "c", text: "hello" });
  await a.got.messages.waitCount(2);
  await c.got.messages.waitCount(1);
  assert.equal(a.got.messages.items[1][0].id, m2.id);
  return { a, b, c, bid, joinedBeforeMessage };
}

describe("presence", () => {
  rtdTest("on by default: user-connected and user-disconnected reach the other clients", async (ctx) => {
    const { a, b, c, bid, joinedBeforeMessage } = await scenario(ctx);
    assert.equal(joinedBeforeMessage, 1, "a was told about b before b's message");
    assert.deepEqual(a.got.joined.items.map(([e]) => e), [
      { socketId: bid, totalConnections: 2 },
      { socketId: c.id, totalConnections: 2 },
    ]);
    assert.deepEqual(a.got.left.items.map(([e]) => e), [{ socketId: bid, totalConnections: 1 }]);
    assert.equal(c.got.joined.items.length, 0, "a client is not told about itself");
    assert.equal(c.got.left.items.length, 0);
    assert.equal(b.got.joined.items.length, 0);
  });

  rtdTest("--presence on: the same", { args: ["--presence", "on"] }, async (ctx) => {
    const { a, bid, c } = await scenario(ctx);
    assert.deepEqual(a.got.joined.items.map(([e]) => e.socketId), [bid, c.id]);
    assert.deepEqual(a.got.left.items.map(([e]) => e.socketId), [bid]);
  });

  rtdTest("--presence off: no user-connected, no user-disconnected; everything else works", { args: ["--presence", "off"] }, async (ctx) => {
    const { a, b, c } = await scenario(ctx);
    for (const s of [a, b, c]) {
      assert.deepEqual(s.got.joined.items, [], "no user-connected");
      assert.deepEqual(s.got.left.items, [], "no user-disconnected");
    }
    // identify, rooms and history are not affected
    assert.equal((await emitAck(a, "identify", { userId: "x", platform: "web", appVersion: "1" })).platform, "web");
    assert.deepEqual(await emitAck(a, "join", { room: "r" }), { ok: true });
    assert.equal((await emitAck(c, "get-messages", {})).length, 2);
  });
});
