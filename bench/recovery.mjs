#!/usr/bin/env node
// bench/recovery.mjs: how long N socket.io-client 4.8 clients take to recover M missed
// messages each after a restart of rtd (connection-state recovery, --recovery-window).
//
//   node bench/recovery.mjs --rtd BIN [--port N] [--clients 1000] [--missed 100]
//                           [--signal TERM|KILL] [--dir DIR] [--json FILE]
//
// 1. rtd starts on a new database in DIR (--rate-limit 0 --presence off --log-level warn
//    --recovery-window 120000, the default --recovery-max-events 1000); N clients connect
//    over WebSocket (no automatic reconnection) and each gets one message, so it holds an
//    offset.
// 2. rtd is stopped (SIGTERM: "server shutting down"; SIGKILL: a crash) and started again on
//    the same database; a new client sends M messages, each acknowledged (stored).
// 3. Every client reconnects at once (its own pid and offset). The clock runs from the first
//    connect() to the last client that has its M missed messages and recovered: true.
// Prints one JSON line: clients, missed, signal, all_ms (the whole wave), p50/p99/max of the
// per-client times, and the counts of clients not recovered or with a wrong replay (missing,
// duplicated or out of order). Bounded: every wait has a deadline; it kills its rtd on exit.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// socket.io-client comes from the tests' packages (tests/package.json pins 4.8.4)
const { io } = createRequire(path.join(here, "../tests/package.json"))("socket.io-client");

function usage(msg) {
  process.stderr.write(`recovery.mjs: ${msg}\n`);
  process.exit(2);
}
const opt = { rtd: null, port: 30190, clients: 1000, missed: 100, signal: "TERM", dir: null, json: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = argv[++i];
  if (v === undefined) usage(`${a} needs a value`);
  if (a === "--rtd") opt.rtd = v;
  else if (a === "--dir") opt.dir = v;
  else if (a === "--json") opt.json = v;
  else if (a === "--signal") {
    if (!["TERM", "KILL"].includes(v)) usage("--signal TERM or KILL");
    opt.signal = v;
  } else if (["--port", "--clients", "--missed"].includes(a)) {
    if (!/^\d{1,6}$/.test(v)) usage(`${a} needs a number`);
    opt[a.slice(2)] = Number(v);
  } else usage(`unknown argument ${a}`);
}
if (!opt.rtd) usage("--rtd BIN is required");
if (opt.clients < 1 || opt.clients > 20000 || opt.missed < 1 || opt.missed > 1000) usage("--clients 1-20000, --missed 1-1000");
const ownDir = !opt.dir;
const dir = opt.dir ?? mkdtempSync(path.join(os.tmpdir(), "rtd-recovery-bench-"));
const url = `http://127.0.0.1:${opt.port}`;

function within(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let proc = null;
async function startRtd() {
  proc = spawn(opt.rtd, ["--port", String(opt.port), "--bind", "127.0.0.1", "--db", path.join(dir, "rtd.db"),
    "--rate-limit", "0", "--presence", "off", "--log-level", "warn", "--max-connections", "19500",
    "--recovery-window", "120000"], { stdio: ["ignore", "ignore", "inherit"] });
  proc.exited = new Promise((r) => proc.once("exit", r));
  const end = Date.now() + 15000;
  while (Date.now() < end) {
    const ok = await new Promise((r) => http.get(`${url}/health`, (res) => { res.resume(); r(res.statusCode === 200); }).on("error", () => r(false)));
    if (ok) return;
    await sleep(50);
  }
  throw new Error("rtd did not answer /health within 15 s");
}
async function stopRtd(sig) {
  proc.kill(`SIG${sig}`);
  await within(proc.exited, 15000, "rtd to exit");
  proc = null;
}
process.on("exit", () => proc?.kill("SIGKILL"));

function client() {
  const s = io(url, { forceNew: true, reconnection: false, transports: ["websocket"], autoConnect: false, timeout: 60000 });
  s.msgs = [];
  s.on("receive-message", (m) => s.msgs.push(m.text));
  return s;
}
const connect = (s) => new Promise((resolve, reject) => {
  s.once("connect", resolve);
  s.once("connect_error", reject);
  s.connect();
});

async function main() {
  await startRtd();
  const clients = [];
  for (let i = 0; i < opt.clients; i += 100) {
    const batch = Array.from({ length: Math.min(100, opt.clients - i) }, client);
    await within(Promise.all(batch.map(connect)), 60000, "the clients to connect");
    clients.push(...batch);
  }
  let sender = client();
  await connect(sender);
  await sender.timeout(10000).emitWithAck("send-message", { sender: "bench", text: "first" });
  const end = Date.now() + 30000;
  while (clients.some((c) => c.msgs.length < 1) && Date.now() < end) await sleep(20);
  if (clients.some((c) => c.msgs.length < 1)) throw new Error("not every client got the first message");
  const gone = Promise.all(clients.map((c) => new Promise((r) => c.once("disconnect", r))));
  sender.disconnect();
  await stopRtd(opt.signal);
  await within(gone, 30000, "the clients to see the stop");
  await startRtd();
  sender = client();
  await connect(sender);
  const expected = [];
  for (let k = 0; k < opt.missed; k++) {
    const text = `missed ${k}`;
    expected.push(text);
    await sender.timeout(10000).emitWithAck("send-message", { sender: "bench", text });
  }
  for (const c of clients) c.msgs = [];
  const t0 = performance.now();
  const times = await within(Promise.all(clients.map(async (c) => {
    await connect(c);
    // the missed messages come before "connect" (Node's order); wait for all M anyway
    while (c.msgs.length < opt.missed && performance.now() - t0 < 120000) await sleep(5);
    return performance.now() - t0;
  })), 180000, "every client to recover");
  const allMs = Math.max(...times);
  await sleep(300); // a duplicate would have arrived by now
  const notRecovered = clients.filter((c) => !c.recovered).length;
  const wrong = clients.filter((c) => c.msgs.length !== opt.missed || c.msgs.some((t, k) => t !== expected[k])).length;
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  const out = {
    clients: opt.clients, missed: opt.missed, signal: `SIG${opt.signal}`,
    all_ms: Math.round(allMs), p50_ms: Math.round(q(0.5)), p99_ms: Math.round(q(0.99)), max_ms: Math.round(times[times.length - 1]),
    not_recovered: notRecovered, wrong_replay: wrong,
  };
  for (const c of clients) c.disconnect();
  sender.disconnect();
  await stopRtd("TERM");
  const line = JSON.stringify(out);
  process.stdout.write(`${line}\n`);
  if (opt.json) writeFileSync(opt.json, `${line}\n`);
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  process.exit(notRecovered || wrong ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`recovery.mjs: ${e.stack}\n`);
  process.exit(1);
});
