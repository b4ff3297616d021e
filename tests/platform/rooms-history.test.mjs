// Rooms (join, leave, messages to a room's members only, --max-rooms) and the history
// (get-messages: newest first, keyset pagination with `before`, per room).

import assert from "node:assert/strict";
import { describe } from "node:test";
import { count, emitAck, expectRefused, query, rtdTest } from "./lib.mjs";

describe("rooms", () => {
  rtdTest("join and leave are acked; a room's messages reach its members only", async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.identified("websocket", { userId: "a", platform: "flutter", appVersion: "1" });
    const b = await ctx.identified("polling", { userId: "b", platform: "laravel", appVersion: "1" });
    const c = await ctx.identified("upgrade", { userId: "c", platform: "web", appVersion: "1" });

    assert.deepEqual(await emitAck(a, "join", { room: "lobby" }), { ok: true });
    assert.deepEqual(await emitAck(b, "join", { room: "lobby" }), { ok: true });
    assert.deepEqual(await emitAck(b, "join", { room: "lobby" }), { ok: true }, "joining twice is fine");

    // A member writes to the room: the members (the sender included) get it, c does not.
    const m1 = await emitAck(a, "send-message", { sender: "a", text: "to the lobby", room: "lobby" });
    assert.equal(m1.ok, true);
    // A non-member may write to the room too; it does not get the message itself.
    const m2 = await emitAck(c, "send-message", { sender: "c", text: "knock knock", room: "lobby" });
    assert.equal(m2.ok, true);
    for (const s of [a, b]) {
      const got = (await s.got.messages.waitCount(2)).map(([m]) => m);
      assert.deepEqual(got, [
        { id: m1.id, socketId: a.id, sender: "a", text: "to the lobby", platform: "flutter", room: "lobby", createdAt: m1.createdAt },
        { id: m2.id, socketId: c.id, sender: "c", text: "knock knock", platform: "web", room: "lobby", createdAt: m2.createdAt },
      ]);
    }
    // c gets the next message to everyone, and nothing before it.
    const g1 = await emitAck(c, "send-message", { sender: "c", text: "to everyone" });
    const [[first]] = await c.got.messages.waitCount(1);
    assert.equal(first.id, g1.id, "the room's messages did not reach a non-member");
    for (const s of [a, b]) assert.equal((await s.got.messages.waitCount(3))[2][0].id, g1.id);

    // b leaves: the room's next message reaches a only.
    assert.deepEqual(await emitAck(b, "leave", { room: "lobby" }), { ok: true });
    const m3 = await emitAck(a, "send-message", { sender: "a", text: "anyone left?", room: "lobby" });
    assert.equal((await a.got.messages.waitCount(4))[3][0].id, m3.id);
    const g2 = await emitAck(a, "send-message", { sender: "a", text: "everyone again" });
    const bGot = (await b.got.messages.waitCount(4)).map(([m]) => m.id);
    assert.deepEqual(bGot, [m1.id, m2.id, g1.id, g2.id], "b got nothing from the room after leaving");
    // Leaving a room one is not in is not an error.
    assert.deepEqual(await emitAck(c, "leave", { room: "lobby" }), { ok: true });

    const rows = await query(rtd.db, "SELECT id, room FROM messages ORDER BY id");
    assert.deepEqual(rows, [
      { id: m1.id, room: "lobby" },
      { id: m2.id, room: "lobby" },
      { id: g1.id, room: null },
      { id: m3.id, room: "lobby" },
      { id: g2.id, room: null },
    ]);
  });

  rtdTest("rooms are separate: a message to one room does not reach another's members", async (ctx) => {
    const a = await ctx.client({ kind: "websocket" });
    const b = await ctx.client({ kind: "polling" });
    await emitAck(a, "join", { room: "red" });
    await emitAck(b, "join", { room: "blue" });
    const r = await emitAck(a, "send-message", { sender: "a", text: "red only", room: "red" });
    const bl = await emitAck(b, "send-message", { sender: "b", text: "blue only", room: "blue" });
    assert.deepEqual((await a.got.messages.waitCount(1)).map(([m]) => m.id), [r.id]);
    assert.deepEqual((await b.got.messages.waitCount(1)).map(([m]) => m.id), [bl.id]);
    const g = await emitAck(a, "send-message", { sender: "a", text: "all" });
    assert.deepEqual((await b.got.messages.waitCount(2)).map(([m]) => m.id), [bl.id, g.id]);
    assert.deepEqual((await a.got.messages.waitCount(2)).map(([m]) => m.id), [r.id, g.id]);
  });

  for (const ack of [true, false]) {
    rtdTest(`invalid join and leave are refused ${ack ? "in the ack" : "with an error event"}`, async (ctx) => {
      const s = await ctx.client({ kind: ack ? "polling" : "websocket" });
      const bad = [[{}], [{ room: "" }], [{ room: 5 }], [{ room: null }], [{ room: "r".repeat(129) }], [[]], [7], []];
      for (const ev of ["join", "leave"]) for (const args of bad) await expectRefused(s, ev, args, "invalid_room", { ack });
      // none of them joined anything: a message to "r"*128 (valid) does not come back
      assert.deepEqual(await emitAck(s, "join", { room: "r".repeat(128) }), { ok: true }, "128 bytes is fine");
      const m = await emitAck(s, "send-message", { sender: "s", text: "x", room: "r".repeat(128) });
      assert.equal((await s.got.messages.waitCount(1))[0][0].id, m.id);
    });
  }

  rtdTest("--max-rooms 2: a third room is refused, rejoining or after a leave is fine", { args: ["--max-rooms", "2"] }, async (ctx) => {
    const s = await ctx.client({ kind: "upgrade" });
    assert.deepEqual(await emitAck(s, "join", { room: "one" }), { ok: true });
    assert.deepEqual(await emitAck(s, "join", { room: "two" }), { ok: true });
    await expectRefused(s, "join", [{ room: "three" }], "too_many_rooms");
    await expectRefused(s, "join", [{ room: "three" }], "too_many_rooms", { ack: false });
    assert.deepEqual(await emitAck(s, "join", { room: "one" }), { ok: true }, "a room it is already in");
    assert.deepEqual(await emitAck(s, "leave", { room: "one" }), { ok: true });
    assert.deepEqual(await emitAck(s, "join", { room: "three" }), { ok: true });
    // it is really in "three" and no more in "one"
    const m3 = await emitAck(s, "send-message", { sender: "s", text: "3", room: "three" });
    await emitAck(s, "send-message", { sender: "s", text: "1", room: "one" });
    const m2 = await emitAck(s, "send-message", { sender: "s", text: "2", room: "two" });
    assert.deepEqual((await s.got.messages.waitCount(2)).map(([m]) => m.id), [m3.id, m2.id]);
  });

  rtdTest("the default --max-rooms is 50", { args: ["--rate-limit", "0"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    for (let i = 0; i < 50; i++) assert.deepEqual(await emitAck(s, "join", { room: `room-${i}` }), { ok: true }, `room ${i}`);
    await expectRefused(s, "join", [{ room: "room-50" }], "too_many_rooms");
  });
});

// Sends n messages from socket s, in order, waiting for each ack; returns the acks.
async function sendMany(s, n, make) {
  const acks = [];
  for (let i = 0; i < n; i++) {
    const a = await emitAck(s, "send-message", make(i));
    assert.equal(a.ok, true, JSON.stringify(a));
    acks.push(a);
  }
  return acks;
}

describe("history", () => {
  rtdTest("get-messages: newest first, default limit 50, at most 200, keyset pagination with before", { args: ["--rate-limit", "0"], timeout: 60000 }, async (ctx) => {
    const { rtd } = ctx;
    const w = await ctx.identified("websocket", { userId: "w", platform: "flutter", appVersion: "1" });
    const p = await ctx.identified("polling", { userId: "p", platform: "laravel", appVersion: "1" });
    await emitAck(p, "join", { room: "side" });
    // 230 messages to everyone, with 30 to the room "side" in between
    const all = [];
    const side = [];
    for (let i = 0; i < 230; i++) {
      const a = await emitAck(w, "send-message", { sender: "w", text: `global ${i}` });
      all.push(a.id);
      if (i % 7 === 0 && side.length < 30) side.push((await emitAck(p, "send-message", { sender: "p", text: `side ${side.length}`, room: "side" })).id);
    }
    assert.equal(side.length, 30);
    const newestFirst = [...all].reverse();

    // The history items are exactly what receive-message carried.
    const received = new Map((await w.got.messages.waitCount(230)).map(([m]) => [m.id, m]));

    const page1 = await emitAck(w, "get-messages", {});
    assert.ok(Array.isArray(page1), JSON.stringify(page1).slice(0, 200));
    assert.equal(page1.length, 50, "default limit");
    assert.deepEqual(page1.map((m) => m.id), newestFirst.slice(0, 50));
    for (const m of page1) assert.deepEqual(m, received.get(m.id));

    assert.deepEqual((await emitAck(w, "get-messages")).map((m) => m.id), newestFirst.slice(0, 50), "no argument at all");
    assert.deepEqual((await emitAck(w, "get-messages", { limit: null, before: null })).map((m) => m.id), newestFirst.slice(0, 50));
    assert.deepEqual((await emitAck(w, "get-messages", { limit: 1 })).map((m) => m.id), newestFirst.slice(0, 1));
    const big = await emitAck(w, "get-messages", { limit: 200 });
    assert.deepEqual(big.map((m) => m.id), newestFirst.slice(0, 200));

    // Walk back with before = the oldest id of the previous page: every message once, in order.
    const seen = [];
    let before;
    for (let pages = 0; pages < 20; pages++) {
      const page = await emitAck(p, "get-messages", before === undefined ? { limit: 37 } : { limit: 37, before });
      assert.ok(Array.isArray(page));
      if (page.length === 0) break;
      assert.ok(page.length <= 37);
      for (const m of page) assert.ok(before === undefined || m.id < before, `id ${m.id} < before ${before}`);
      seen.push(...page.map((m) => m.id));
      before = page[page.length - 1].id;
    }
    assert.deepEqual(seen, newestFirst, "the pages hold every message once, newest first (the room's aside)");

    // before: strictly older than that id
    const mid = all[100];
    assert.deepEqual((await emitAck(w, "get-messages", { before: mid, limit: 3 })).map((m) => m.id), [all[99], all[98], all[97]]);
    assert.deepEqual(await emitAck(w, "get-messages", { before: all[0] }), [], "nothing older than the first");
    assert.deepEqual(await emitAck(w, "get-messages", { before: 1 }), []);
    assert.deepEqual((await emitAck(w, "get-messages", { before: 1e9, limit: 2 })).map((m) => m.id), newestFirst.slice(0, 2));

    // A room's history: only its messages, newest first, paginated the same way.
    const sideNewest = [...side].reverse();
    const sp = await emitAck(w, "get-messages", { room: "side" });
    assert.deepEqual(sp.map((m) => m.id), sideNewest);
    for (const m of sp) {
      assert.equal(m.room, "side");
      assert.equal(m.platform, "laravel");
      assert.equal(m.socketId, p.id);
    }
    const sp1 = await emitAck(w, "get-messages", { room: "side", limit: 7 });
    const sp2 = await emitAck(w, "get-messages", { room: "side", limit: 7, before: sp1[6].id });
    assert.deepEqual([...sp1, ...sp2].map((m) => m.id), sideNewest.slice(0, 14));
    assert.deepEqual(await emitAck(w, "get-messages", { room: "nobody-here" }), []);

    assert.equal(await count(rtd.db, "messages"), 260);
  });

  for (const ack of [true, false]) {
    rtdTest(`invalid get-messages is refused ${ack ? "in the ack" : "(no ack: an error event)"}`, async (ctx) => {
      const s = await ctx.client({ kind: "websocket" });
      await emitAck(s, "send-message", { sender: "s", text: "one" });
      if (!ack) {
        // get-messages answers through its ack only; without one the client is told so
        await expectRefused(s, "get-messages", [{ limit: 10 }], "ack_required", { ack: false });
        return;
      }
      const cases = [
        [{ limit: 0 }, "invalid_limit"],
        [{ limit: 201 }, "invalid_limit"],
        [{ limit: -5 }, "invalid_limit"],
        [{ limit: 2.5 }, "invalid_limit"],
        [{ limit: "10" }, "invalid_limit"],
        [{ before: 0 }, "invalid_before"],
        [{ before: -1 }, "invalid_before"],
        [{ before: "abc" }, "invalid_before"],
        [{ before: 3.5 }, "invalid_before"],
        [{ room: "" }, "invalid_room"],
        [{ room: 12 }, "invalid_room"],
        [{ room: "r".repeat(129) }, "invalid_room"],
        ["limit=5", "invalid_payload"],
        [[1, 2], "invalid_payload"],
      ];
      for (const [arg, code] of cases) await expectRefused(s, "get-messages", [arg], code);
      assert.equal((await emitAck(s, "get-messages", { limit: 200 })).length, 1);
    });
  }
});
