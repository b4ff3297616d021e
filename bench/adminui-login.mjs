// bench/adminui-login.mjs: what Admin UI logins cost rtd's event loop. One client on "/"
// keeps one "join" ack in flight at a time and records each round trip, first for WINDOW ms
// with no login, then for ROUNDS rounds of LOGINS simultaneous /admin logins (one round a
// second, under the login throttle of 5 checks per second); prints the percentiles of the
// round trips made with no login under way and of those made while logins were, and the
// logins' own times, as one JSON line.
//
//   node bench/adminui-login.mjs URL USER PASSWORD [ROUNDS=10] [LOGINS=5]
//
// Run it from tests/ (it takes socket.io-client from tests/node_modules), against an rtd
// started with --admin-ui production and an admin made by admin-fcgi --create-admin.
import { io } from "socket.io-client";

const [url, user, password] = process.argv.slice(2, 5);
const ROUNDS = Number(process.argv[5] ?? 10), LOGINS = Number(process.argv[6] ?? 5), WINDOW = 2000;
if (!url || !password) {
  console.error("usage: node bench/adminui-login.mjs URL USER PASSWORD [ROUNDS] [LOGINS]");
  process.exit(2);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const client = io(url, { transports: ["websocket"], reconnection: false });
await new Promise((resolve, reject) => {
  client.once("connect", resolve);
  client.once("connect_error", reject);
  setTimeout(() => reject(new Error("connect timeout")), 5000);
});

let inflight = 0, stop = false;
const rtt = { idle: [], logins: [] };
const pinger = (async () => {
  while (!stop) {
    const t = process.hrtime.bigint();
    await client.timeout(5000).emitWithAck("join", { room: "bench" });
    const busy = inflight > 0;
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    rtt[busy ? "logins" : "idle"].push(ms);
    await sleep(1);
  }
})();

function login() {
  const t = Date.now();
  inflight++;
  const s = io(`${url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { username: user, password } });
  return new Promise((resolve) => {
    let over = false;
    const done = (ok) => {
      if (over) return;
      over = true;
      inflight--;
      s.close();
      resolve({ ok, ms: Date.now() - t });
    };
    s.once("connect", () => done(true));
    s.once("connect_error", (e) => done(e.message));
    setTimeout(() => done("timeout"), 10000);
  });
}

await sleep(WINDOW);
const logins = [];
for (let r = 0; r < ROUNDS; r++) {
  const t = Date.now();
  logins.push(...(await Promise.all(Array.from({ length: LOGINS }, login))));
  await sleep(Math.max(0, 1100 - (Date.now() - t)));
}
stop = true;
await pinger;
client.close();

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2) : null; };
const sum = (a) => ({ n: a.length, p50: pct(a, 0.5), p99: pct(a, 0.99), max: pct(a, 1), over20ms: a.filter((x) => x > 20).length });
console.log(JSON.stringify({
  ackRttMs: { idle: sum(rtt.idle), duringLogins: sum(rtt.logins) },
  logins: { ...sum(logins.map((l) => l.ms)), refused: logins.filter((l) => l.ok !== true).map((l) => l.ok) },
}));
