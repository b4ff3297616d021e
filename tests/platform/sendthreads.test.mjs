// --send-threads N: the send pool that shares the loop thread's writev calls when one loop turn
// flushes output to 32 or more WebSocket connections (rtd/net/sendpool.c, flush_batch() in
// rtd/engine/wsconn.c). Below 32 dirty sockets the serial path is used, so these tests open 40 to 48
// WebSocket clients: every broadcast then goes through the pool. Whatever the pool does, each
// client must get every frame exactly once, intact and in order, and a client whose kernel
// buffers are full (EAGAIN) must hold up no one and lose nothing.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { eioWebSocket } from "../js/lib/rawws.mjs";
import { freePort } from "../js/lib/server.mjs";
import { emitAck, metrics, rtdTest, runRtd, sleep, waitUntil, withTempDir } from "./lib.mjs";

// --presence off: no user-connected storms while 48 clients connect; --rate-limit 0: the
// senders fire all their messages at once.
const POOL_ARGS = ["--send-threads", "2", "--rate-limit", "0", "--presence", "off"];

// A text that names its sender and sequence number in its first bytes and repeats them, with
// multi-byte UTF-8 characters, to about `bytes` bytes: a byte lost, duplicated, swapped with
// another message's or cut inside a character shows as a text that differs.
function makeText(tag, bytes) {
  const unit = `${tag}:é€😀;`;
  const reps = Math.max(1, Math.floor((bytes - tag.length - 1) / Buffer.byteLength(unit)));
  return `${tag}|${unit.repeat(reps)}`;
}

// Connects n WebSocket-only clients, a few at a time.
async function clients(ctx, n) {
  const out = [];
  while (out.length < n) {
    const k = Math.min(8, n - out.length);
    out.push(...(await Promise.all(Array.from({ length: k }, () => ctx.client({ kind: "websocket" })))));
  }
  return out;
}

// The receive-message payloads a client got, in arrival order.
const payloads = (s) => s.got.messages.items.map(([m, ...rest]) => {
  assert.equal(rest.length, 0, "receive-message has one argument");
  return m;
});

// Test 2 floods a client that does not read: the kernel takes up to about its send buffer
// limit (tcp_wmem's maximum, 4 MiB by default) plus the receiver's window before writev
// returns EAGAIN, so the flood is sized past that, to keep rtd holding a few MiB of its own.
const BULK = (() => {
  let wmemMax = 4 << 20;
  try {
    wmemMax = Number(readFileSync("/proc/sys/net/ipv4/tcp_wmem", "utf8").trim().split(/\s+/)[2]) || wmemMax;
  } catch {}
  const size = 30000; // bytes of text, minus up to 3000
  const count = Math.min(1000, Math.ceil((Math.min(wmemMax, 24 << 20) + (2 << 20)) / (size - 1500)));
  return { size, count, maxBuffered: Math.max(4 << 20, count * size * 2) };
})();

// The payload of a `42["receive-message", m]` frame a raw client read.
function parseEvent(text, what) {
  assert.ok(text.startsWith('42["receive-message",'), `${what}: ${JSON.stringify(text.slice(0, 80))}`);
  const [ev, m, ...rest] = JSON.parse(text.slice(2));
  assert.equal(ev, "receive-message", what);
  assert.equal(rest.length, 0, `${what}: one argument`);
  return m;
}

// A received message with its text replaced by "ok TAG" when it is exactly the text sent with
// that tag, so that a few hundred 30 KB texts per client are checked as they arrive, not kept.
function digest(m, byTag) {
  const tag = typeof m.text === "string" ? m.text.slice(0, m.text.indexOf("|")) : "";
  const sent = byTag.get(tag);
  if (sent === undefined) return m;
  return { ...m, text: m.text === sent ? `ok ${tag}` : `ALTERED ${tag} (${m.text.length} chars, sent ${sent.length})` };
}

// The receive-message payloads a client gets from now on, digested (see digest()).
function digestMessages(s, byTag) {
  s.got.messages.stop();
  const out = [];
  s.on("receive-message", (m, ...rest) => {
    out.push(rest.length ? { ...m, extraArguments: rest.length } : digest(m, byTag));
  });
  return out;
}

function waitFor(cond, timeout, what) {
  return waitUntil(cond, { timeout, interval: 20, what });
}

// Checks that `got` (receive-message payloads in arrival order) is exactly `expected` (the
// same, built from the acks): every message once, intact, in commit (id) order.
function assertStream(got, expected, who) {
  const ids = got.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `${who}: a message arrived twice (ids ${ids.join(",")})`);
  assert.equal(got.length, expected.length, `${who}: got ${got.length} messages, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const m = got[i];
    const e = expected[i];
    if (m.id !== e.id) {
      assert.fail(`${who}: message #${i} has id ${m.id}, expected ${e.id} (arrival order ${ids.join(",")})`);
    }
    // not deepEqual on the whole object at once: a 30 KB diff would bury the message
    assert.equal(m.text.length, e.text.length, `${who}: length of the text of message ${e.id}`);
    assert.ok(m.text === e.text, `${who}: the text of message ${e.id} was altered (starts ${JSON.stringify(m.text.slice(0, 40))})`);
    assert.deepEqual({ ...m, text: "" }, { ...e, text: "" }, `${who}: message ${e.id}`);
  }
}

describe("--send-threads: broadcasts through the send pool", () => {
  rtdTest(
    "48 WebSocket clients: three senders' bursts reach every client exactly once, intact and in commit order",
    { args: POOL_ARGS, timeout: 30000 },
    async (ctx) => {
      const N_CLIENTS = 48;
      const PER_SENDER = 40;
      const SIZES = [12, 300, 1500, 4000, 9000, 60, 2500];
      const all = await clients(ctx, N_CLIENTS - 3);
      const senders = [];
      for (const [i, platform] of ["flutter", "laravel", "web"].entries()) {
        const s = await ctx.identified("websocket", { userId: `sender-${i}`, platform, appVersion: "1" });
        senders.push({ s, name: `sender ${i}`, platform, tag: `s${i}` });
        all.push(s);
      }
      assert.equal(all.length, N_CLIENTS);

      // A burst: every sender fires `perSender` messages, the senders interleaved, then all the
      // acks are awaited. Resolves to the receive-message payloads they must cause.
      const burst = async (phase, perSender, sizes) => {
        const pending = [];
        for (let seq = 0; seq < perSender; seq++) {
          for (const [k, snd] of senders.entries()) {
            const text = makeText(`${snd.tag}-${phase}${String(seq).padStart(3, "0")}`, sizes[(seq * 3 + k) % sizes.length]);
            pending.push(emitAck(snd.s, "send-message", { sender: snd.name, text }).then((ack) => ({ snd, text, ack })));
          }
        }
        return (await Promise.all(pending)).map(({ snd, text, ack }) => {
          assert.equal(ack.ok, true, JSON.stringify(ack));
          return { id: ack.id, socketId: snd.s.id, sender: snd.name, text, platform: snd.platform, room: null, createdAt: ack.createdAt };
        });
      };
      // 40 messages per sender of a few bytes to 9 KB (many frames of mixed sizes per writev),
      // then 100 short ones per sender, which the store commits in large groups: more than 64
      // frames queued per socket in one loop turn, the rest written after the pool's pass.
      const expected = [...(await burst("a", PER_SENDER, SIZES)), ...(await burst("b", 100, [20, 90, 45, 150]))];
      assert.equal(new Set(expected.map((e) => e.id)).size, expected.length, "distinct ids");
      expected.sort((a, b) => a.id - b.id);
      const total = expected.length;

      // Everyone gets all of them...
      for (const [i, s] of all.entries()) await s.got.messages.waitCount(total, 15000).catch((e) => {
        throw new Error(`client ${i}: ${e.message}`);
      });
      // ...and then one more message, which must come right after them on every socket: a
      // duplicate still in flight would have to arrive before it.
      const last = senders[0];
      const lastText = makeText("marker", 40);
      const lastAck = await emitAck(last.s, "send-message", { sender: last.name, text: lastText });
      assert.equal(lastAck.ok, true);
      expected.push({
        id: lastAck.id,
        socketId: last.s.id,
        sender: last.name,
        text: lastText,
        platform: last.platform,
        room: null,
        createdAt: lastAck.createdAt,
      });
      for (const [i, s] of all.entries()) await s.got.messages.waitCount(total + 1, 5000).catch((e) => {
        throw new Error(`client ${i}: ${e.message}`);
      });

      for (const [i, s] of all.entries()) {
        const got = payloads(s);
        assertStream(got, expected, `client ${i}`);
        // per sender: in the order of that sender's ack ids
        for (const snd of senders) {
          const mine = got.filter((m) => m.socketId === snd.s.id).map((m) => m.id);
          const want = expected.filter((e) => e.socketId === snd.s.id).map((e) => e.id);
          assert.deepEqual(mine, want, `client ${i}: ${snd.name}'s messages`);
        }
        assert.equal(s.got.errors.items.length, 0, `client ${i} got error events`);
        assert.ok(s.connected, `client ${i} is still connected`);
      }
    },
  );

  rtdTest(
    "a client that stops reading (full kernel buffers: partial write or EAGAIN in the pool) holds up no one, then gets everything",
    { args: [...POOL_ARGS, "--max-message-bytes", "40000", "--max-buffered", String(BULK.maxBuffered)], timeout: 30000 },
    async (ctx) => {
      const { rtd } = ctx;
      const N_NORMAL = 39;
      const N = BULK.count;
      const texts = Array.from({ length: N }, (_, i) => makeText(`big-${String(i).padStart(4, "0")}`, BULK.size - (i % 7) * 500));
      const byTag = new Map(texts.map((t) => [t.slice(0, t.indexOf("|")), t]));
      const normal = await clients(ctx, N_NORMAL);
      const got = normal.map((s) => digestMessages(s, byTag));
      const sender = normal[0];

      // The raw client: Engine.IO open, Socket.IO CONNECT, then it stops reading its socket.
      const { ws } = await eioWebSocket(rtd.port, "/socket.io/", { autoPong: true });
      try {
        ws.text("40");
        assert.match(await ws.nextText(), /^40\{"sid":"/);
        ws.sock.pause();

        const acks = await Promise.all(texts.map((text) => emitAck(sender, "send-message", { sender: "bulk", text })));
        const expected = acks.map((ack, i) => {
          assert.equal(ack.ok, true, JSON.stringify(ack));
          const tag = texts[i].slice(0, texts[i].indexOf("|"));
          return { id: ack.id, socketId: sender.id, sender: "bulk", text: `ok ${tag}`, platform: "unknown", room: null, createdAt: ack.createdAt };
        });
        // the ids of one socket's messages follow the order it sent them in
        for (let i = 1; i < N; i++) assert.ok(expected[i].id > expected[i - 1].id, `ids ${expected.map((e) => e.id)}`);

        // The others get everything while the raw client reads nothing.
        for (const [i, g] of got.entries()) await waitFor(() => g.length >= N, 15000, `client ${i}'s ${N} messages (got ${g.length})`);
        for (const [i, g] of got.entries()) {
          assertStream(g, expected, `client ${i}`);
          assert.ok(normal[i].connected, `client ${i} is still connected`);
        }

        // rtd still holds output for the paused client (its kernel buffers are full): its byte
        // count stays put until the client reads. rtd_bytes_sent_total counts Engine.IO output
        // only, not these HTTP requests.
        const sentBefore = (await metrics(rtd)).samples.get("rtd_bytes_sent_total");
        await sleep(100);
        assert.equal((await metrics(rtd)).samples.get("rtd_bytes_sent_total"), sentBefore, "nothing more can be written to the paused client");
        assert.ok(ws.frames.length < N, `the paused client already had ${ws.frames.length} messages`);

        // It reads again: it gets all of them, in order, intact; rtd writes what it held back.
        ws.sock.resume();
        const raw = [];
        for (let i = 0; i < N; i++) raw.push(digest(parseEvent(await ws.nextText(10000), `raw client frame ${i}`), byTag));
        assertStream(raw, expected, "the paused client");
        const sentAfter = await waitUntil(
          async () => {
            const v = (await metrics(rtd)).samples.get("rtd_bytes_sent_total");
            return v > sentBefore ? v : null;
          },
          { timeout: 5000, what: "rtd_bytes_sent_total to grow once the paused client reads" },
        );
        assert.ok(
          sentAfter - sentBefore > 256 * 1024,
          `rtd held back only ${sentAfter - sentBefore} bytes for the paused client: the kernel took nearly everything, the EAGAIN path was hardly exercised`,
        );

        // One more broadcast comes right after the others everywhere: nothing was duplicated.
        const lastAck = await emitAck(sender, "send-message", { sender: "bulk", text: "the end" });
        const last = { id: lastAck.id, socketId: sender.id, sender: "bulk", text: "the end", platform: "unknown", room: null, createdAt: lastAck.createdAt };
        assert.deepEqual(parseEvent(await ws.nextText(5000), "the paused client's last frame"), last);
        for (const [i, g] of got.entries()) {
          await waitFor(() => g.length >= N + 1, 5000, `client ${i}'s last message`);
          assertStream(g, [...expected, last], `client ${i}`);
        }
        assert.equal(ws.ended, false, "the paused client was not disconnected");
      } finally {
        ws.destroy();
      }
    },
  );
});

describe("--send-threads flag", () => {
  for (const value of ["65", "x", "-1"]) {
    it(`--send-threads ${value}: exit status 2 with a message naming the flag`, () => withTempDir(async (dir) => {
      const port = await freePort();
      const r = await runRtd(["--db", path.join(dir, "never.db"), "--port", String(port), "--bind", "127.0.0.1", "--send-threads", value]);
      assert.equal(r.code, 2, `exit status (stderr: ${r.stderr})`);
      assert.match(r.stderr, /^rtd: /);
      assert.match(r.stderr, new RegExp(`invalid value '${value}' for --send-threads`));
      assert.equal(r.stdout, "");
    }));
  }

  rtdTest("--send-threads 64 is accepted; rtd runs and exits cleanly", { args: ["--send-threads", "64"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    const ack = await emitAck(s, "send-message", { sender: "a", text: "hello" });
    assert.equal(ack.ok, true);
    const [[m]] = await s.got.messages.waitCount(1);
    assert.equal(m.text, "hello");
  });
});
