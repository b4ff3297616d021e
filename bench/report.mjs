#!/usr/bin/env node
// bench/report.mjs: the side-by-side table of a bench/run.sh run, in Markdown.
//
//   node bench/report.mjs OUT_DIR
//
// Reads OUT_DIR/STEP.SERVER.json (rtload's reports) and OUT_DIR/machine.txt. The ratio column
// is how many times better rtd did: rtd/node for rates, node/rtd for latencies, memory and CPU
// cost. The target column is the goal from the issue, and whether this run met it.

import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: report.mjs OUT_DIR\n");
  process.exit(2);
}

const load = (step, server) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${step}.${server}.json`), "utf8"));
  } catch {
    return null;
  }
};

const get = (obj, p) => p.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

const fmt = (v, digits) => {
  if (v === undefined || v === null || Number.isNaN(v)) return "—";
  if (digits !== undefined) return v.toFixed(digits);
  if (Number.isInteger(v) && Math.abs(v) < 1000) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US").replace(/,/g, " ");
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
};

const rows = [];
// higher: true when a bigger value is better. target(rtdValue, ratio) -> [text, met] or null.
const row = (label, step, p, { higher = true, digits, target } = {}) => {
  const a = load(step, "rtd");
  const b = load(step, "node");
  if (!a && !b) return;
  const x = get(a, p);
  const y = get(b, p);
  let ratio;
  if (typeof x === "number" && typeof y === "number") {
    if (higher && y > 0) ratio = x / y;
    else if (!higher && x > 0) ratio = y / x;
  }
  let t = "";
  if (target) {
    const r = target(x, ratio);
    if (r) t = `${r[0]} ${r[1] === undefined ? "" : r[1] ? "✔" : "✘"}`.trim();
  }
  rows.push([label, fmt(x, digits), fmt(y, digits), ratio === undefined ? "—" : `${ratio.toFixed(1)}×`, t]);
};

const n = (v) => (typeof v === "number" ? v : undefined);

row("Fan-out, 1 000 WS clients, 1 sender: deliveries/s", "fanout1", "messages.deliveries_per_s", {
  target: (x, r) => ["≥ 20×", r === undefined ? undefined : r >= 20],
});
row("  same: server CPU per delivery (ns)", "fanout1", "server.cpu_ns_per_delivery", { higher: false });
row("  same: delivery latency p99 (ms, at saturation)", "fanout1", "latency_ms.delivery.p99", { higher: false });
row("Fan-out, 1 000 WS clients, 4 senders: deliveries/s", "fanout4", "messages.deliveries_per_s", {
  target: (x, r) => ["≥ 20×", r === undefined ? undefined : r >= 20],
});
row("Latency, 100 clients, 10 000 msg/s: messages/s sent", "latency", "messages.sent_per_s");
row("  same: deliveries/s", "latency", "messages.deliveries_per_s");
row("  same: delivery latency p50 (ms)", "latency", "latency_ms.delivery.p50", { higher: false, digits: 3 });
row("  same: delivery latency p99 (ms)", "latency", "latency_ms.delivery.p99", {
  higher: false,
  digits: 3,
  target: (x) => ["< 2 ms", n(x) === undefined ? undefined : x < 2],
});
row("  same: delivery latency p99.9 (ms)", "latency", "latency_ms.delivery.p999", { higher: false, digits: 3 });
row("  same: ack latency p99 (ms)", "latency", "latency_ms.ack.p99", { higher: false, digits: 3 });
row("Ingest, 200 senders in own rooms: acked msg/s", "ingest", "messages.acked_per_s", {
  target: (x) => ["≥ 100 000/s (rtd, committed)", n(x) === undefined ? undefined : x >= 100000],
});
row("  same: ack latency p50 (ms)", "ingest", "latency_ms.ack.p50", { higher: false });
row("  same: ack latency p99 (ms)", "ingest", "latency_ms.ack.p99", { higher: false });
row("Idle 10 000 WS: RSS per connection (bytes)", "idle", "server.rss_per_conn_end_bytes", {
  higher: false,
  target: (x) => ["≤ 2 048 B", n(x) === undefined ? undefined : x <= 2048],
});
row("  same: connections established", "idle", "connections.established");
row("  same: connect rate (connections/s)", "idle", "connections.connect_rate");
row("19 000 connections, 2 s heartbeats: established", "conns", "connections.established", {
  target: (x) => ["19 000", n(x) === undefined ? undefined : x >= 19000],
});
row("  same: still connected at the end", "conns", "connections.ready_at_end");
row("  same: missed heartbeats (gap > interval + timeout)", "conns", "heartbeats.missed", {
  higher: false,
  target: (x) => ["0", n(x) === undefined ? undefined : x === 0],
});
row("  same: late pings (gap > 1.25 × interval)", "conns", "heartbeats.late", { higher: false });
row("  same: gap between pings p99.9 (ms)", "conns", "heartbeats.gap_p999_ms", { higher: false });
row("  same: longest gap between pings (ms)", "conns", "heartbeats.max_gap_ms", { higher: false });
row("  same: RSS per connection (bytes)", "conns", "server.rss_per_conn_end_bytes", { higher: false });
row("Mixed, 1 000 clients (10 % polling), 10 rooms, 1 000 msg/s: deliveries/s", "mixed", "messages.deliveries_per_s");
row("  same: delivery latency p99 (ms)", "mixed", "latency_ms.delivery.p99", { higher: false });
// bench/laravel.sh (ONLY=laravel): the "node" column is laravel-echo-server 1.6.3 there
row("Laravel: 1 000 Echo subscribers, Redis publisher: deliveries/s (node = laravel-echo-server)", "laravel", "messages.deliveries_per_s", {
  target: (x, r) => ["≥ 20×", r === undefined ? undefined : r >= 20],
});
row("  same: server CPU per delivery (ns)", "laravel", "server.cpu_ns_per_delivery", { higher: false });

// rtd-only opt-in steps, against rtd's own fanout1 of the same run: the cost of a feature.
const rtdOnly = [];
const base = get(load("fanout1", "rtd"), "messages.deliveries_per_s");
const vsBase = (label, step) => {
  const j = load(step, "rtd");
  if (!j) return;
  const v = get(j, "messages.deliveries_per_s");
  const d = typeof v === "number" && typeof base === "number" && base > 0 ? `${(((v - base) / base) * 100).toFixed(1)} %` : "—";
  rtdOnly.push(`| ${label} | ${fmt(v)} | ${fmt(get(j, "server.cpu_ns_per_delivery"))} | ${d} |`);
};
vsBase("fanout1 with --recovery-window (every event carries its offset)", "fanout-recovery");
for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const m = /^(adminui-[a-z]+)\.rtd\.json$/.exec(f);
  if (m) vsBase(`fanout1 with --admin-ui (${m[1].slice(8)})`, m[1]);
}
let recovery = null;
try {
  recovery = JSON.parse(fs.readFileSync(path.join(dir, "recovery.rtd.result"), "utf8"));
} catch {
  /* not run */
}

const out = [];
const machine = (() => {
  try {
    return fs.readFileSync(path.join(dir, "machine.txt"), "utf8").trim();
  } catch {
    return "";
  }
})();
if (machine) out.push("```", machine, "```", "");
out.push("| figure | rtd | node | rtd better by | target |", "|---|---:|---:|---:|---|");
for (const r of rows) out.push(`| ${r.join(" | ")} |`);

if (rtdOnly.length) {
  out.push("", "rtd-only steps, against this run's rtd fanout1 (same load):", "");
  out.push("| step | deliveries/s | CPU ns/delivery | vs fanout1 |", "|---|---:|---:|---:|", ...rtdOnly);
}
if (recovery)
  out.push("", `Recovery after an rtd restart (${recovery.signal}): ${recovery.clients} clients, ${recovery.missed} missed messages each: ` +
    `all recovered in ${recovery.all_ms} ms (p50 ${recovery.p50_ms} ms, p99 ${recovery.p99_ms} ms); ` +
    `not recovered ${recovery.not_recovered}, wrong replays ${recovery.wrong_replay}.`);

// The cost curve: the same fan-out from 100 to 10 000 clients.
const curve = [];
for (const f of fs.readdirSync(dir)) {
  const m = /^curve(\d+)\.rtd\.json$/.exec(f) || /^curve(\d+)\.node\.json$/.exec(f);
  if (m && !curve.includes(Number(m[1]))) curve.push(Number(m[1]));
}
if (load("fanout1", "rtd") || load("fanout1", "node")) curve.push(1000);
curve.sort((a, b) => a - b);
if (curve.length) {
  out.push("", "Cost per delivery (fan-out, 1 sender, as fast as acks and receivers allow):", "");
  out.push("| clients | rtd msg/s | rtd deliveries/s | rtd CPU ns/delivery | node msg/s | node deliveries/s | node CPU ns/delivery | rtd better by (cost) |");
  out.push("|---:|---:|---:|---:|---:|---:|---:|---:|");
  const costs = [];
  for (const c of curve) {
    const step = c === 1000 ? "fanout1" : `curve${c}`;
    const a = load(step, "rtd");
    const b = load(step, "node");
    const ca = get(a, "server.cpu_ns_per_delivery");
    const cb = get(b, "server.cpu_ns_per_delivery");
    if (ca) costs.push(ca);
    out.push(
      `| ${fmt(c)} | ${fmt(get(a, "messages.acked_per_s"))} | ${fmt(get(a, "messages.deliveries_per_s"))} | ${fmt(ca)} | ${fmt(get(b, "messages.acked_per_s"))} | ${fmt(get(b, "messages.deliveries_per_s"))} | ${fmt(cb)} | ${ca && cb ? (cb / ca).toFixed(1) + "×" : "—"} |`,
    );
  }
  if (costs.length > 1)
    out.push("", `rtd cost spread over the curve: max/min = ${(Math.max(...costs) / Math.min(...costs)).toFixed(2)} (flat = 1.00)`);
}

// Errors and the load generator's own load, per step.
const steps = [...new Set(fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.split(".")[0]))].sort();
out.push("", "Per step: errors (connections failed or lost, protocol errors, refused events), the backlog left when the",
  "drain deadline passed (an overloaded server's unacknowledged messages and undelivered copies), and the CPU",
  "of the server, of rtload and of every other process on the machine (100 % = one core) during the measured",
  "window: the machine has 2 cores, so CPU time in the \"other processes\" column was taken from rtd or node.", "");
out.push("| step | server | errors | closes | conn failed | unacked at end | undelivered at end | server CPU % | rtload CPU % | other processes CPU % | rtload loop turn max (ms) |");
out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const s of steps)
  for (const srv of ["rtd", "node"]) {
    const j = load(s, srv);
    if (!j) continue;
    out.push(
      `| ${s} | ${srv} | ${get(j, "errors.total")} | ${get(j, "errors.closes")} | ${get(j, "errors.conn_failed")} | ${get(j, "messages.ack_timeouts")} | ${get(j, "messages.missing_deliveries")} | ${fmt(get(j, "server.cpu_pct"), 0)} | ${fmt(get(j, "client.cpu_pct"), 0)} | ${fmt(get(j, "machine.others_pct"), 0)} | ${fmt(get(j, "client.turn_max_ms"), 1)} |`,
    );
  }
try {
  const crashes = fs.readFileSync(path.join(dir, "crashes.txt"), "utf8").trim();
  if (crashes) out.push("", "Servers that died:", "", "```", crashes, "```");
} catch {
  /* none */
}
process.stdout.write(out.join("\n") + "\n");
