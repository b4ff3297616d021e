// bench/adminui.mjs: one Admin UI admin, for bench/run.sh's adminui step. Logs in to rtd's
// /admin namespace over a raw Engine.IO v4 WebSocket (ws, from bench/reference's packages),
// answers pings, counts the events it gets by name for SECONDS seconds, then prints them (and
// when the connection closed, if it did) as one JSON line and exits (bounded: it exits after SECONDS + 10 whatever happens).
//
//   node bench/adminui.mjs PORT USER PASSWORD SECONDS
import { createRequire } from "node:module";

const require = createRequire(new URL("./reference/package.json", import.meta.url));
const WebSocket = require("ws");
const [port, user, password, seconds] = process.argv.slice(2);
if (!seconds) {
  console.error("usage: node bench/adminui.mjs PORT USER PASSWORD SECONDS");
  process.exit(2);
}
const counts = {};
let bytes = 0, connected = false, closedAfterMs = null;
const t0 = Date.now();
const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
const finish = (code) => {
  console.log(JSON.stringify({ connected, closedAfterMs, bytes, counts }));
  process.exit(code);
};
setTimeout(() => finish(connected ? 0 : 1), Number(seconds) * 1000);
setTimeout(() => process.exit(3), (Number(seconds) + 10) * 1000).unref();
ws.on("message", (d) => {
  const m = d.toString();
  bytes += m.length;
  if (m[0] === "0") ws.send(`40/admin,${JSON.stringify({ username: user, password })}`);
  else if (m === "2") ws.send("3");
  else if (m.startsWith("40/admin,")) connected = true;
  else if (m.startsWith("44/admin,")) {
    console.error(`adminui.mjs: login refused: ${m}`);
    finish(1);
  } else if (m.startsWith("42/admin,")) {
    const name = /^42\/admin,\["([^"]*)"/.exec(m)?.[1] ?? "?";
    counts[name] = (counts[name] ?? 0) + 1;
  }
});
ws.on("close", () => (closedAfterMs ??= Date.now() - t0));
ws.on("error", (e) => {
  console.error(`adminui.mjs: ${e.message}`);
  finish(1);
});
