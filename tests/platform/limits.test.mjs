// Per-socket rate limit (--rate-limit, --rate-burst), --max-connections and
// --max-connections-per-ip.

import assert from "node:assert/strict";
import net from "node:net";
import { describe } from "node:test";
import { Polling, request } from "../js/lib/http.mjs";
import { HOST, count, emitAck, expectRefused, holdWriteLock, httpGet, metrics, query, rtdTest, waitConnectionRow, waitUntil, within } from "./lib.mjs";

// A rate this low refills no token during a test: the burst is all a socket has.
const SLOW = ["--rate-limit", "0.01"];

describe("rate limit", () => {
  rtdTest("over the rate: ack {ok:false, code:\"rate_limited\"}; nothing stored; other sockets unaffected", { args: [...SLOW, "--rate-burst", "3"] }, async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "websocket" });
    const b = await ctx.client({ kind: "polling" });
    for (let i = 0; i < 3; i++) assert.equal((await emitAck(a, "send-message", { sender: "a", text: `ok ${i}` })).ok, true);
    const refused = await expectRefused(a, "send-message", [{ sender: "a", text: "one too many" }], "rate_limited");
    assert.equal(typeof refused.error, "string");
    // every event counts, not only messages
    await expectRefused(a, "join", [{ room: "r" }], "rate_limited");
    await expectRefused(a, "get-messages", [{}], "rate_limited");
    // b has its own bucket
    assert.equal((await emitAck(b, "send-message", { sender: "b", text: "b is fine" })).ok, true);
    const texts = (await query(rtd.db, "SELECT message_text FROM messages ORDER BY id")).map((r) => r.message_text);
    assert.deepEqual(texts, ["ok 0", "ok 1", "ok 2", "b is fine"]);
    assert.ok(a.connected, "a few refusals do not disconnect");
  });

  rtdTest("over the rate without an ack: an error event with code \"rate_limited\"", { args: [...SLOW, "--rate-burst", "2"] }, async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "upgrade" });
    assert.deepEqual(await emitAck(a, "join", { room: "r" }), { ok: true });
    assert.equal((await emitAck(a, "send-message", { sender: "a", text: "ok" })).ok, true);
    await expectRefused(a, "send-message", [{ sender: "a", text: "over" }], "rate_limited", { ack: false });
    assert.equal(await count(rtd.db, "messages"), 1);
    assert.equal(a.got.messages.items.length <= 1, true);
  });

  // Regression (was a bug, now fixed; long-polling only): when rtd disconnects a flooding client (sio_disconnect(s, true)
  // then eio_close), session_close() answers a held GET with a bare close packet and
  // pktq_clear() drops what was queued for the client: the three refusals' "error" events
  // {code:"rate_limited"} and the Socket.IO DISCONNECT packet never reach a long-polling client,
  // which sees "transport close" and no error events (over WebSocket they arrive, since they were
  // written at once). Expected on every transport: three error events with code "rate_limited",
  // then the disconnect ("io server disconnect").
  for (const kind of ["websocket", "polling", "upgrade"]) {
    rtdTest(`flooding on after --rate-burst refusals disconnects the client (${kind})`, { args: [...SLOW, "--rate-burst", "3"] }, async (ctx) => {
      const { rtd } = ctx;
      const watcher = await ctx.client({ kind: "websocket" });
      const flooder = await ctx.client({ kind });
      const fid = flooder.id;
      const gone = within(new Promise((resolve) => flooder.once("disconnect", resolve)), 5000, "the flooder's disconnect");
      for (let i = 0; i < 20; i++) flooder.emit("send-message", { sender: "f", text: `flood ${i}` });
      const reason = await gone;
      // the server disconnected it: the others are told, its row is closed, 3 messages stored
      assert.deepEqual((await watcher.got.left.next())[0], { socketId: fid, totalConnections: 1 });
      const row = await waitConnectionRow(rtd.db, fid, (r) => r.status === "disconnected", "closed");
      assert.notEqual(row.disconnected_at, null);
      assert.equal(await count(rtd.db, "messages"), 3);
      assert.equal((await emitAck(watcher, "send-message", { sender: "w", text: "still here" })).ok, true);
      // 3 accepted, then 3 refusals answered, then the disconnect
      const codes = flooder.got.errors.items.map(([e]) => e.code);
      assert.deepEqual(codes, ["rate_limited", "rate_limited", "rate_limited"], "the refusals reached the client");
      assert.equal(reason, "io server disconnect", "the client was told it was disconnected");
    });
  }

  rtdTest("--rate-limit 0 disables the limit", { args: ["--rate-limit", "0", "--rate-burst", "1"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    const acks = await Promise.all(Array.from({ length: 60 }, (_, i) => emitAck(s, "send-message", { sender: "s", text: `m${i}` })));
    assert.ok(acks.every((a) => a.ok === true));
  });
});

function handshake(rtd, timeout = 3000) {
  return request({ port: rtd.port, path: "/socket.io/?EIO=4&transport=polling", timeout });
}

describe("--max-connections", () => {
  // A polling session the server closed lingers 5 s for the GET that takes its close packet;
  // it used to keep its --max-connections slot (and count in /health) all that time.
  rtdTest("a closed polling session waiting for its last GET does not hold a slot", { args: ["--max-connections", "1", "--connect-timeout", "300"] }, async (ctx) => {
    const { rtd } = ctx;
    const idle = new Polling(rtd.port, "/socket.io/");
    await idle.handshake(); // joins no namespace: closed by --connect-timeout, then lingers
    const started = Date.now();
    const res = await waitUntil(async () => {
      const r = await handshake(rtd);
      return r.status === 200 ? r : null;
    }, { timeout: 4000, interval: 50, what: "a new session while the closed one lingers" });
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 4500);
    // the lingering session still hands its close packet to its last GET
    const last = await idle.get({ timeout: 3000 });
    assert.ok(last.status === 400 || last.text.split("\x1e").includes("1"), `the last GET: ${last.status} ${last.text}`);
  });

  rtdTest("the N+1th Engine.IO session gets HTTP 503 (sessions that hold no connection)", { args: ["--max-connections", "2"] }, async (ctx) => {
    const { rtd } = ctx;
    const p1 = new Polling(rtd.port, "/socket.io/");
    const p2 = new Polling(rtd.port, "/socket.io/");
    await p1.handshake();
    await p2.handshake();
    const res = await handshake(rtd);
    assert.equal(res.status, 503, `third handshake: HTTP ${res.status} ${res.text}`);
    assert.equal(JSON.parse((await httpGet(rtd, "/health")).text).sessions, 2);
    // closing one makes room again
    await p1.send("1");
    const again = await handshake(rtd);
    assert.equal(again.status, 200, again.text);
  });

  // Regression (was a bug, now fixed): --max-connections is also libmicrohttpd's TCP connection limit (http.c,
  // MHD_OPTION_CONNECTION_LIMIT), which counts held long-polls, POSTs and plain requests such as
  // /health; once that count has touched the limit, rtd never accepts a TCP connection again,
  // even after the connections closed: further connections wait in the listen backlog until
  // the client gives up. With --max-connections 2 and one WebSocket plus one long-polling client
  // connected, the first extra handshake gets its 503 but the next one (and GET /health) is
  // never answered, and no client can connect any more after one left. Expected: every
  // handshake beyond N gets HTTP 503, /health keeps answering, and a client that leaves makes
  // room for a new one.
  rtdTest("N real clients connected: every further handshake gets HTTP 503; a client that leaves makes room", { args: ["--max-connections", "2"] }, async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "websocket" });
    await ctx.client({ kind: "polling" });
    for (let i = 0; i < 3; i++) {
      let answer;
      try {
        const res = await handshake(rtd);
        answer = `HTTP ${res.status}`;
      } catch (e) {
        answer = `no answer (${e.message})`;
      }
      assert.equal(answer, "HTTP 503", `extra handshake #${i + 1}`);
    }
    // a socket.io-client gets a connect_error
    const s = ctx.socket({ kind: "polling" });
    const err = await within(new Promise((resolve) => { s.once("connect_error", resolve); s.connect(); }), 6000, "connect_error");
    assert.ok(err instanceof Error);
    assert.equal(JSON.parse((await httpGet(rtd, "/health")).text).connections, 2, "/health still answers");
    // after one leaves (its Engine.IO session is gone), a new client gets in
    a.disconnect();
    await waitUntil(async () => JSON.parse((await httpGet(rtd, "/health")).text).sessions === 1, { what: "the session count down to 1" });
    await ctx.client({ kind: "websocket" });
  });

  // Regression (was a bug, now fixed): the same, at its simplest: with --max-connections 1, once one TCP connection has come
  // and gone (here the test's own check that the port accepts), rtd never accepts another one.
  // Expected: one client at a time, each after the previous one left.
  rtdTest("--max-connections 1: clients one after the other", { args: ["--max-connections", "1"] }, async (ctx) => {
    const { rtd } = ctx;
    for (const kind of ["websocket", "polling", "websocket"]) {
      const s = await ctx.client({ kind });
      await waitConnectionRow(rtd.db, s.id);
      s.disconnect();
      await waitUntil(async () => JSON.parse((await httpGet(rtd, "/health")).text).sessions === 0, { what: "the session gone" });
    }
  });
});

// A raw keep-alive connection on which `GET /health` was answered (so that libmicrohttpd has
// accepted and counted it), or null when the server closed it without an answer.
function heldConnection(port, ms = 3000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, HOST);
    let got = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`neither an answer nor a close within ${ms} ms`));
    }, ms);
    sock.on("connect", () => sock.write(`GET /health HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`));
    sock.on("error", () => {});
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (/\r\n\r\n/.test(got) && got.startsWith("HTTP/1.1 200")) {
        clearTimeout(timer);
        resolve(sock);
      }
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

describe("--max-connections-per-ip", () => {
  rtdTest("a session that ends gives its address' slot back", { args: ["--max-connections-per-ip", "1"] }, async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.client({ kind: "websocket" });
    const refused = await handshake(rtd);
    assert.equal(refused.status, 429, `a second session from 127.0.0.1: HTTP ${refused.status} ${refused.text}`);
    a.disconnect();
    await waitUntil(async () => JSON.parse((await httpGet(rtd, "/health")).text).sessions === 0, { what: "the session gone" });
    for (const kind of ["polling", "websocket"]) {
      const s = await ctx.client({ kind });
      assert.equal((await handshake(rtd)).status, 429, `with a ${kind} client in: still one at a time`);
      s.disconnect();
      await waitUntil(async () => JSON.parse((await httpGet(rtd, "/health")).text).sessions === 0, { what: "the session gone" });
    }
  });

  // Without --trust-proxy the HTTP connections from one address are bounded too, at 2N + 2
  // (a session's long-poll and POST, or its WebSocket and an upgrade in flight).
  rtdTest("at most 2N+2 HTTP connections from one address; one that closes makes room", { args: ["--max-connections-per-ip", "1"] }, async (ctx) => {
    const held = [];
    try {
      for (let i = 0; i < 4; i++) {
        const sock = await heldConnection(ctx.rtd.port);
        assert.ok(sock, `HTTP connection #${i + 1} of 4 is served`);
        held.push(sock);
      }
      assert.equal(await heldConnection(ctx.rtd.port), null, "the fifth is closed unanswered");
      held.pop().destroy();
      const again = await waitUntil(async () => heldConnection(ctx.rtd.port), { what: "a connection served after one closed" });
      held.push(again);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe("store queue", () => {
  // With the writer stalled (another process holds the write lock), 9 000-byte messages fill
  // 64 KiB of queue after a few: the rest are refused with server_busy at once, the queued
  // ones are all stored and acknowledged once the lock goes.
  rtdTest("--store-queue-bytes: sends past the queued bytes are refused with server_busy; the queued ones commit", { args: ["--store-queue-bytes", "65536"] }, async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket" });
    await waitConnectionRow(rtd.db, s.id);
    const lock = await holdWriteLock(rtd.db);
    let acks;
    try {
      const text = "q".repeat(9000);
      acks = [];
      for (let i = 0; i < 12; i++) {
        acks.push(emitAck(s, "send-message", { sender: "q", text: `${i} ${text}` }));
        // the last ones are answered at once; wait for those before the next
        if (i >= 9) await within(acks[i], 3000, `the refusal of message ${i}`);
      }
      const queued = (await metrics(rtd)).samples.get("rtd_store_queue_bytes");
      assert.ok(queued > 40000 && queued <= 65536, `rtd_store_queue_bytes ${queued}`);
    } finally {
      await lock.release();
    }
    const answers = await within(Promise.all(acks), 8000, "every ack");
    const ok = answers.filter((a) => a.ok);
    const busy = answers.filter((a) => !a.ok);
    assert.ok(ok.length >= 5 && ok.length <= 7, `${ok.length} accepted: ${JSON.stringify(answers.map((a) => a.ok))}`);
    assert.ok(busy.every((a) => a.code === "server_busy"), JSON.stringify(busy));
    assert.equal(await count(rtd.db, "messages"), ok.length);
    assert.equal((await emitAck(s, "send-message", { sender: "q", text: "room again" })).ok, true);
  });
});
