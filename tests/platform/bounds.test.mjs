// Memory bounds that hostile WebSocket input must not get around: what rtd reads after a
// protocol error, and the pongs of a client that pings without reading. rtd's peak resident
// size (VmHWM of /proc/<pid>/status) is measured around the attack, with a bound far above
// what the limits allow and far below what the unbounded code reached.
// The measuring tests are skipped under valgrind and ASan, whose memory figures are their own.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe } from "node:test";
import { Polling } from "../js/lib/http.mjs";
import { OP, encodeFrame, eioWebSocket } from "../js/lib/rawws.mjs";
import { RTD_BIN, emitAck, metrics, rtdTest, sleep, waitConnectionRow, within } from "./lib.mjs";

const MB = 1024 * 1024;

const asan = (() => {
  try {
    return readFileSync(RTD_BIN).includes("__asan_init");
  } catch {
    return false;
  }
})();
export const RSS_SKIP = process.env.RTD_VALGRIND
  ? "rtd runs under valgrind: its RSS is valgrind's"
  : asan
    ? "rtd is built with ASan: its RSS includes the shadow memory and the quarantine"
    : false;

// rtd's resident size now and at its peak, in bytes.
export function memoryOf(pid) {
  const t = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(t)[1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

// RTD_TEST_VERBOSE=1 prints the figures.
function report(what, before, after) {
  if (process.env.RTD_TEST_VERBOSE)
    process.stderr.write(`${what}: peak RSS ${(before.peak / MB).toFixed(1)} -> ${(after.peak / MB).toFixed(1)} MB\n`);
}

// Writes chunk on sock again and again for ms, or until the connection is gone, each write
// once the previous one drained (a peer that stops reading stops the flood). Returns the
// bytes handed to the kernel.
async function flood(sock, chunk, ms) {
  const end = Date.now() + ms;
  let sent = 0;
  while (Date.now() < end && !sock.destroyed && sock.writable) {
    if (!sock.write(chunk)) {
      const drained = await new Promise((resolve) => {
        const t = setTimeout(() => resolve(false), Math.max(1, end - Date.now()));
        sock.once("drain", () => {
          clearTimeout(t);
          resolve(true);
        });
        sock.once("close", () => resolve(false));
      });
      if (!drained) break;
    }
    sent += chunk.length;
  }
  return sent;
}

describe("memory bounds", () => {
  // Regression: when the frame reader failed, on_readable returned without consuming, and
  // every later read appended up to ~1 MB to the connection's buffer until the 1 s close
  // timer: one connection took rtd from 10 MB to 1.26 GB.
  rtdTest("after a WebSocket protocol error rtd reads no more of the connection", { skip: RSS_SKIP, timeout: 30000 }, async (ctx) => {
    const pid = ctx.rtd.proc.pid;
    const good = await ctx.client({ kind: "websocket" });
    const { ws } = await eioWebSocket(ctx.rtd.port, "/socket.io/");
    await sleep(200);
    const before = memoryOf(pid);
    // A frame cut inside its mask key (rtd keeps the part for the next read), then its end and
    // a frame with RSV bits set without an extension: a protocol error (close 1002) found in
    // the connection's carried-over input. Then a flood of noise.
    const noop = encodeFrame(OP.TEXT, "6");
    ws.write(noop.subarray(0, 3));
    await sleep(100);
    ws.write(Buffer.concat([noop.subarray(3), encodeFrame(OP.TEXT, "6", { rsv: 4 })]));
    const noise = Buffer.alloc(1 * MB, 0x41);
    const sent = await flood(ws.sock, noise, 1500);
    const after = memoryOf(pid);
    ws.destroy();
    const grew = after.peak - before.peak;
    report(`protocol error + ${(sent / MB).toFixed(0)} MB of noise`, before, after);
    assert.ok(
      grew < 64 * MB,
      `rtd's peak RSS grew by ${(grew / MB).toFixed(1)} MB (from ${(before.peak / MB).toFixed(1)} MB) while the client sent ${(sent / MB).toFixed(0)} MB after its protocol error`,
    );
    assert.equal((await emitAck(good, "send-message", { sender: "g", text: "still fine" })).ok, true);
  });

  // What the client sees of the same bound, without measuring memory (so it runs under
  // valgrind and ASan too): after the close 1002, rtd's byte counter stands still however
  // much the client goes on sending until rtd closes the connection (1 s later).
  rtdTest("after a WebSocket protocol error rtd reads nothing more: close 1002, rtd_bytes_received_total stands still", { timeout: 30000 }, async (ctx) => {
    const good = await ctx.client({ kind: "websocket" });
    const { ws } = await eioWebSocket(ctx.rtd.port, "/socket.io/");
    const received = async () => (await metrics(ctx.rtd)).samples.get("rtd_bytes_received_total");
    ws.write(encodeFrame(OP.TEXT, "6", { rsv: 4 })); // RSV bits without an extension
    assert.equal((await ws.waitClose()).code, 1002);
    const before = await received();
    const sent = await flood(ws.sock, Buffer.alloc(1 * MB, 0x41), 3000); // ends when rtd closes
    ws.destroy();
    const read = (await received()) - before;
    assert.ok(read < 1 * MB, `rtd read ${(read / MB).toFixed(1)} MB of the ${(sent / MB).toFixed(1)} MB sent after its close 1002`);
    assert.equal((await emitAck(good, "send-message", { sender: "g", text: "still fine" })).ok, true);
  });

  // What the client sees of the one-pong rule: pongs do not pile up as unsent output, so a
  // client that pings without reading is not dropped by --max-buffered (64 KiB here, far
  // below the 32 MB of pongs one per ping would make, and below the kernel's socket buffers,
  // which hold at most a few MB of them).
  rtdTest("a client that pings without reading keeps its connection: one pending pong, not one per ping, against --max-buffered", { timeout: 60000, args: ["--max-buffered", "65536"] }, async (ctx) => {
    const good = await ctx.client({ kind: "websocket" });
    const { ws } = await eioWebSocket(ctx.rtd.port, "/socket.io/");
    ws.sock.pause(); // read nothing: rtd's pongs back up
    const ping = encodeFrame(OP.PING, Buffer.alloc(125, 0x70));
    const chunk = Buffer.concat(Array.from({ length: 8000 }, () => ping)); // ~1 MB of pings
    for (let i = 0; i < 32; i++) {
      assert.ok(!ws.sock.destroyed && ws.sock.writable && !ws.ended, `the connection was closed after ${i} MB of pings`);
      if (!ws.sock.write(chunk)) {
        await within(new Promise((resolve) => {
          const done = () => {
            ws.sock.off("drain", done);
            ws.sock.off("close", done);
            resolve();
          };
          ws.sock.on("drain", done);
          ws.sock.on("close", done);
        }), 20000, "rtd to read the pings");
      }
    }
    ws.sock.resume();
    ws.text("40");
    assert.match(await ws.nextText(20000), /^40\{"sid":/, "the connection still serves: CONNECT answered");
    ws.destroy();
    assert.equal((await emitAck(good, "send-message", { sender: "g", text: "still fine" })).ok, true);
  });

  // Regression: the PING branch queued a pong without the output limit; a client that pinged
  // and never read took rtd to 1.25 GB in 3 s (limit 4 MB).
  rtdTest("a client that pings and never reads holds one pending pong, within --max-buffered", { skip: RSS_SKIP, timeout: 30000, args: ["--max-buffered", String(4 * MB)] }, async (ctx) => {
    const pid = ctx.rtd.proc.pid;
    const good = await ctx.client({ kind: "websocket" });
    const { ws } = await eioWebSocket(ctx.rtd.port, "/socket.io/");
    ws.sock.pause(); // read nothing more: rtd's output to it backs up
    await sleep(200);
    const before = memoryOf(pid);
    const ping = encodeFrame(OP.PING, Buffer.alloc(125, 0x70));
    const chunk = Buffer.concat(Array.from({ length: 8000 }, () => ping)); // ~1 MB of pings
    const sent = await flood(ws.sock, chunk, 3000);
    const after = memoryOf(pid);
    ws.destroy();
    const grew = after.peak - before.peak;
    if (process.env.RTD_TEST_VERBOSE) {
      const m = await metrics(ctx.rtd);
      process.stderr.write(`rtd received ${(m.samples.get("rtd_bytes_received_total") / MB).toFixed(0)} MB\n`);
    }
    report(`${(sent / ping.length / 1e6).toFixed(2)} M pings`, before, after);
    assert.ok(
      grew < 4 * MB + 64 * MB,
      `rtd's peak RSS grew by ${(grew / MB).toFixed(1)} MB (from ${(before.peak / MB).toFixed(1)} MB) for ${(sent / ping.length / 1e6).toFixed(2)} M pings`,
    );
    assert.equal((await emitAck(good, "send-message", { sender: "g", text: "still fine" })).ok, true);
  });
});

// Issue 19: a client that stops reading during broadcasts is dropped once its unsent output
// passes --max-buffered, and costs the others nothing: they get every message. Over
// WebSocket the kernel's socket buffers take the first few MB, so the flood is sized well
// past them; over long-polling nothing is sent until the client polls again, so the queue
// passes the limit after a few messages.
describe("--max-buffered", () => {
  const TEXT = "b".repeat(9000);
  // The stuck client must be dropped by the limit, not by a missed heartbeat.
  const NO_HEARTBEAT = ["--ping-interval", "60000", "--ping-timeout", "60000"];
  // Sent in rounds small enough that one loop turn's output to a client that does read stays
  // well under the limit (a turn's broadcasts are queued before they are written).
  async function broadcastUntilDropped(ctx, stuckId, count, round) {
    const { rtd } = ctx;
    const receiver = await ctx.client({ kind: "websocket" });
    const sender = await ctx.client({ kind: "websocket" });
    const dropped = within(
      new Promise((resolve) => receiver.on("user-disconnected", (m) => m.socketId === stuckId && resolve())),
      20000,
      "the stuck client's user-disconnected (its heartbeat would take 120 s)",
    );
    for (let i = 0; i < count; i += round) {
      const acks = [];
      for (let j = i; j < Math.min(count, i + round); j++) acks.push(emitAck(sender, "send-message", { sender: "s", text: `${j} ${TEXT}` }));
      for (const a of await Promise.all(acks)) assert.equal(a.ok, true);
    }
    await dropped;
    const [[last]] = (await receiver.got.messages.waitCount(count, 20000)).slice(-1);
    assert.ok(last.text.startsWith(`${count - 1} `), "the receiver got every message, the last one last");
    assert.equal(receiver.got.messages.items.length, count);
    await waitConnectionRow(rtd.db, stuckId, (r) => r.status === "disconnected", "the stuck client's row closed");
  }

  rtdTest("a WebSocket client that stops reading is dropped past --max-buffered; the others get everything", { skip: process.env.RTD_VALGRIND ? "18 MB of broadcasts under valgrind take minutes" : false, timeout: 90000, args: ["--max-buffered", "262144", "--rate-limit", "0", ...NO_HEARTBEAT] }, async (ctx) => {
    const { ws } = await eioWebSocket(ctx.rtd.port, "/socket.io/", { autoPong: true });
    try {
      ws.text("40");
      const connect = await ws.nextText();
      const stuckId = JSON.parse(connect.slice(2)).sid;
      ws.sock.pause(); // reads no more: rtd's writes fill the kernel's buffers, then its own
      await broadcastUntilDropped(ctx, stuckId, 2000, 8);
    } finally {
      ws.destroy();
    }
  });

  rtdTest("a polling client that stops polling is dropped past --max-buffered; the others get everything", { timeout: 60000, args: ["--max-buffered", "65536", "--rate-limit", "0", ...NO_HEARTBEAT] }, async (ctx) => {
    const raw = new Polling(ctx.rtd.port, "/socket.io/");
    await raw.handshake();
    await raw.send("40");
    const [connect] = await raw.receive();
    const stuckId = JSON.parse(connect.slice(2)).sid;
    // and now it never polls again
    await broadcastUntilDropped(ctx, stuckId, 30, 2);
  });
});
