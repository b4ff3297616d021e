// GET /health (JSON) and GET /metrics (Prometheus text format).

import assert from "node:assert/strict";
import { describe } from "node:test";
import { emitAck, eventually, httpGet, metrics, rtdTest } from "./lib.mjs";

async function health(rtd) {
  const res = await httpGet(rtd, "/health");
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers["content-type"]), /^application\/json\b/);
  return JSON.parse(res.text);
}

describe("/health", () => {
  rtdTest("status, uptime, connections and the database's state", async (ctx) => {
    const { rtd } = ctx;
    const h0 = await health(rtd);
    assert.equal(h0.status, "ok");
    assert.equal(typeof h0.uptime, "number");
    assert.ok(h0.uptime >= 0 && h0.uptime < 60, `uptime ${h0.uptime}`);
    assert.equal(h0.connections, 0);
    assert.equal(typeof h0.database, "object");
    assert.equal(h0.database.ok, true);

    const a = await ctx.client({ kind: "websocket" });
    const b = await ctx.client({ kind: "polling" });
    const c = await ctx.client({ kind: "upgrade" });
    assert.equal((await health(rtd)).connections, 3);
    b.disconnect();
    await a.got.left.next();
    const h = await health(rtd);
    assert.equal(h.connections, 2);
    assert.ok(h.uptime >= h0.uptime, "uptime does not go back");
    c.disconnect();
    await a.got.left.next();
    assert.equal((await health(rtd)).connections, 1);
  });
});

function sample(m, key) {
  assert.ok(m.samples.has(key), `metric ${key} is present`);
  return m.samples.get(key);
}

describe("/metrics", () => {
  rtdTest("Prometheus text: connections by transport and platform, messages and bytes in and out, queue depth, commit latency", async (ctx) => {
    const { rtd } = ctx;
    const res = await httpGet(rtd, "/metrics");
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain; ?version=0\.0\.4/);
    const m0 = await metrics(rtd);
    assert.equal(sample(m0, 'rtd_connections{transport="polling"}'), 0);
    assert.equal(sample(m0, 'rtd_connections{transport="websocket"}'), 0);
    assert.equal(m0.types.get("rtd_connections"), "gauge");
    assert.equal(m0.types.get("rtd_connections_by_platform"), "gauge");
    assert.equal(m0.types.get("rtd_messages_in_total"), "counter");
    assert.equal(m0.types.get("rtd_messages_out_total"), "counter");
    assert.equal(m0.types.get("rtd_bytes_received_total"), "counter");
    assert.equal(m0.types.get("rtd_bytes_sent_total"), "counter");
    assert.equal(m0.types.get("rtd_store_queue_depth"), "gauge");
    assert.equal(m0.types.get("rtd_store_commit_seconds"), "histogram");
    assert.equal(m0.types.get("rtd_store_checkpoints_total"), "counter");
    assert.equal(m0.types.get("rtd_store_wal_frames"), "gauge");
    assert.equal(m0.types.get("rtd_store_wal_pauses_total"), "counter");
    assert.equal(m0.types.get("rtd_store_wal_pause_seconds_total"), "counter");
    assert.equal(sample(m0, "rtd_messages_in_total"), 0);
    assert.equal(sample(m0, "rtd_messages_out_total"), 0);

    const f = await ctx.identified("websocket", { userId: "f", platform: "flutter", appVersion: "1" });
    const l = await ctx.identified("polling", { userId: "l", platform: "laravel", appVersion: "1" });
    const w = await ctx.identified("upgrade", { userId: "w", platform: "web", appVersion: "1" });
    const extra = await ctx.identified("polling", { userId: "l2", platform: "laravel", appVersion: "1" });
    await ctx.client({ kind: "websocket" }); // never identifies: "unknown"

    const m1 = await eventually(async () => {
      const m = await metrics(rtd);
      assert.equal(sample(m, 'rtd_connections{transport="polling"}'), 2);
      assert.equal(sample(m, 'rtd_connections{transport="websocket"}'), 3);
      return m;
    }, { what: "connections by transport" });
    assert.equal(sample(m1, 'rtd_connections_by_platform{platform="flutter"}'), 1);
    assert.equal(sample(m1, 'rtd_connections_by_platform{platform="laravel"}'), 2);
    assert.equal(sample(m1, 'rtd_connections_by_platform{platform="web"}'), 1);
    assert.equal(sample(m1, 'rtd_connections_by_platform{platform="unknown"}'), 1);
    const bytesIn1 = sample(m1, "rtd_bytes_received_total");
    const bytesOut1 = sample(m1, "rtd_bytes_sent_total");
    assert.ok(bytesIn1 > 0 && bytesOut1 > 0);

    // Messages: 3 to everyone (5 deliveries each), 1 to a room of two.
    for (const s of [f, l, w]) assert.equal((await emitAck(s, "send-message", { sender: "x", text: "y".repeat(500) })).ok, true);
    await emitAck(f, "join", { room: "pair" });
    await emitAck(l, "join", { room: "pair" });
    await emitAck(w, "send-message", { sender: "x", text: "to the pair", room: "pair" });
    for (const s of [f, l]) await s.got.messages.waitCount(4);
    const m2 = await metrics(rtd);
    assert.equal(sample(m2, "rtd_messages_in_total"), 4);
    assert.equal(sample(m2, "rtd_messages_out_total"), 3 * 5 + 2);
    assert.ok(sample(m2, "rtd_bytes_received_total") >= bytesIn1 + 3 * 500, "bytes in grew by the texts at least");
    assert.ok(sample(m2, "rtd_bytes_sent_total") >= bytesOut1 + 15 * 500, "bytes out grew by the deliveries at least");
    const depth = sample(m2, "rtd_store_queue_depth");
    assert.ok(Number.isInteger(depth) && depth >= 0);

    // The commit latency histogram: cumulative buckets, +Inf = count, at least one commit per message.
    const buckets = [...m2.samples.entries()]
      .filter(([k]) => k.startsWith("rtd_store_commit_seconds_bucket{"))
      .map(([k, v]) => [/le="([^"]+)"/.exec(k)[1], v]);
    assert.ok(buckets.length >= 2, "several buckets");
    assert.equal(buckets[buckets.length - 1][0], "+Inf", "the last bucket is +Inf");
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i][1] >= buckets[i - 1][1], `bucket le=${buckets[i][0]} >= le=${buckets[i - 1][0]}`);
      if (buckets[i][0] !== "+Inf") assert.ok(Number(buckets[i][0]) > Number(buckets[i - 1][0]), "bounds increase");
    }
    const countC = sample(m2, "rtd_store_commit_seconds_count");
    assert.equal(buckets[buckets.length - 1][1], countC);
    assert.ok(countC >= 1, `commits counted (${countC})`);
    assert.ok(sample(m2, "rtd_store_commit_seconds_sum") >= 0);

    // Leaving clients leave the gauges.
    l.disconnect();
    extra.disconnect();
    const m3 = await eventually(async () => {
      const m = await metrics(rtd);
      assert.equal(sample(m, 'rtd_connections{transport="polling"}'), 0);
      return m;
    }, { what: "the polling clients gone" });
    assert.equal(sample(m3, 'rtd_connections{transport="websocket"}'), 3);
    assert.equal(sample(m3, 'rtd_connections_by_platform{platform="laravel"}'), 0);
    assert.equal(sample(m3, 'rtd_connections_by_platform{platform="flutter"}'), 1);
  });

  // Regression (issue 18): the per-platform table had 64 slots that any name a client chose
  // kept for good, so one socket identifying 70 times with made-up names pushed every later
  // platform into "other".
  rtdTest("platform names that come and go give their slots back; the label set stays bounded", { args: ["--rate-limit", "0"] }, async (ctx) => {
    const { rtd } = ctx;
    const junk = await ctx.client({ kind: "websocket" });
    for (let i = 0; i < 70; i++) await emitAck(junk, "identify", { userId: "j", platform: `junk${i}`, appVersion: "1" });
    const ios = await ctx.identified("websocket", { userId: "i", platform: "ios", appVersion: "1" });
    let m = await metrics(rtd);
    assert.equal(sample(m, 'rtd_connections_by_platform{platform="ios"}'), 1);
    assert.equal(sample(m, 'rtd_connections_by_platform{platform="junk69"}'), 1);
    assert.ok(!m.samples.has('rtd_connections_by_platform{platform="junk0"}'), "a name no socket uses is not listed");
    assert.ok(!m.samples.has('rtd_connections_by_platform{platform="other"}'));
    // Many names at once: at most 64 labels, the rest counted as "other".
    const many = [];
    for (let i = 0; i < 70; i++) many.push(ctx.identified("websocket", { userId: `m${i}`, platform: `many${i}`, appVersion: "1" }));
    await Promise.all(many);
    m = await metrics(rtd);
    const labels = [...m.samples.keys()].filter((k) => k.startsWith("rtd_connections_by_platform{"));
    assert.ok(labels.length <= 64, `${labels.length} platform labels`);
    const total = labels.reduce((n, k) => n + m.samples.get(k), 0);
    assert.equal(total, 72);
    assert.ok(sample(m, 'rtd_connections_by_platform{platform="other"}') > 0);
    assert.equal(sample(m, 'rtd_connections_by_platform{platform="flutter"}'), 0, "the guide's platforms keep their slots");
    await emitAck(ios, "identify", { userId: "i", platform: "web", appVersion: "1" });
  });
});
