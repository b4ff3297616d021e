// Helpers of the platform tests: a real rtd binary (RTD_BIN) on a free loopback port with a
// fresh SQLite database in a temporary folder, real socket.io-client 4.8 clients, and database
// checks through the sqlite3 command-line shell.
//
// rtdTest(name, opts, fn) is the usual entry point: it starts rtd, runs fn(ctx), closes the
// clients the test opened, stops rtd with SIGTERM and asserts that it exited with status 0,
// printing rtd's stderr when the test failed.
//
// RTD_TEST_DB=pg runs the same tests on PostgreSQL: the first startRtd of a test file starts a
// throwaway PostgreSQL (tests/pg/lib.sh; stopped when the process exits), every startRtd
// without a `db` gets a new database in it (--db postgresql://...), and query() runs its SQL
// through psql instead of the sqlite3 shell. isPg(db) tells a test which one it has.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { it } from "node:test";
import { io } from "socket.io-client";
import { freePort, HOST, TESTS_DIR } from "../js/lib/server.mjs";
import { request } from "../js/lib/http.mjs";
import { collect, nextEvent, sleep, waitUntil, within } from "../js/lib/util.mjs";

export { HOST, TESTS_DIR, collect, nextEvent, request, sleep, waitUntil, within };

// ---- the binary ------------------------------------------------------------------------------

export const RTD_BIN = (() => {
  const bin = process.env.RTD_BIN;
  if (!bin) {
    throw new Error(
      "RTD_BIN is not set: build rtd (e.g. mkdir -p /tmp/build-plat && cd /tmp/build-plat && " +
        "/work/main/configure -q && make rtd/rtd) and run RTD_BIN=/tmp/build-plat/rtd/rtd node --test platform/",
    );
  }
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`RTD_BIN=${JSON.stringify(bin)} is not an executable file`);
  }
  return bin;
})();

export const STATIC_DIR = path.resolve(TESTS_DIR, "../static");
export const CLIENT_JS = path.join(TESTS_DIR, "node_modules/socket.io-client/dist/socket.io.min.js");

// Temporary folders made by tempDir(): rtdTest removes those of a test that passed.
const createdDirs = [];

export function tempDir(prefix = "rtd-plat-") {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  createdDirs.push(d);
  return d;
}

// Runs fn(dir) with a fresh temporary folder, removed afterwards when fn succeeded.
export async function withTempDir(fn) {
  const dir = tempDir();
  await fn(dir);
  rmSync(dir, { recursive: true, force: true });
}

// One TCP connection attempt; resolves true if it was accepted.
export function tryConnect(port, ms = 500, host = HOST) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

const OUTPUT_KEEP = 256 * 1024;

// Runs rtd to completion (flag parsing, --version, --backup...). Resolves to
// { code, signal, stdout, stderr }; kills it after `timeout` ms.
export function runRtd(args, { env = {}, timeout = 10000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(RTD_BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...cleanEnv(), ...env }, cwd });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`rtd ${args.join(" ")} did not exit within ${timeout} ms\nstderr: ${stderr}`));
    }, timeout);
    p.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      // "exit" can come before the pipes are drained
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

// The environment without the variables rtd reads, so that the caller's shell cannot change
// what a test sees.
export function cleanEnv() {
  const env = { ...process.env };
  delete env.SOCKET_PORT;
  delete env.DATABASE_PATH;
  delete env.CORS_ORIGINS;
  delete env.RTD_NODE_ID;
  return env;
}

// A running rtd.
export class Rtd {
  constructor({ port, db, dir, args }) {
    this.port = port;
    this.db = db;
    this.dir = dir;
    this.args = args;
    this.proc = null;
    this.stderr = "";
    this.stdout = "";
    this.exit = null;
    this.exited = null;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  describeExit() {
    if (!this.exit) return "running";
    return this.exit.signal ? `killed by ${this.exit.signal}` : `exit status ${this.exit.code}`;
  }

  printStderr(why = "") {
    process.stderr.write(
      `--- rtd ${this.args.join(" ")} (${this.describeExit()})${why ? ` ${why}` : ""} stderr ---\n` +
        `${this.stderr || "(empty)"}\n--- end of rtd stderr ---\n`,
    );
  }

  signal(sig) {
    if (!this.exit) this.proc.kill(sig);
  }

  // Waits for the process to end; resolves to { code, signal } or rejects after ms.
  waitExit(ms = 6000) {
    return within(this.exited, ms, `rtd (pid ${this.proc.pid}) to exit`);
  }

  // SIGTERM, then asserts a clean exit (status 0) within `timeout` ms; SIGKILLs on a timeout.
  async stop({ timeout = 6000 } = {}) {
    if (this.exit) throw new Error(`rtd was not running any more at the end of the test (${this.describeExit()})`);
    this.proc.kill("SIGTERM");
    try {
      await this.waitExit(timeout);
    } catch (e) {
      this.proc.kill("SIGKILL");
      await this.exited;
      throw new Error(`rtd did not exit within ${timeout} ms of SIGTERM (killed)`);
    }
    if (this.exit.code !== 0) throw new Error(`rtd ended with ${this.describeExit()} after SIGTERM (expected status 0)`);
  }

  // Kills it for good, whatever its state (used in cleanups).
  async kill() {
    if (this.exit) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  // Lines of stderr matching re (a RegExp on the whole line).
  logLines(re) {
    return this.stderr.split("\n").filter((l) => re.test(l));
  }
}

// Starts rtd with `--port P --bind 127.0.0.1 --db DIR/rtd.db` plus args, on a free port, and
// resolves once the port accepts connections (polled, bounded). Options:
//   args     extra flags
//   env      extra environment variables
//   dir      the temporary folder (a new one by default)
//   db       the database path (DIR/rtd.db by default); null: no --db flag
//   port     the port (a free one by default); null: no --port flag (then give `waitPort`)
//   bind     false: no --bind flag
export async function startRtd({ args = [], env = {}, dir, db, port, waitPort, bind = true, readyTimeout = 10000 } = {}) {
  dir ??= tempDir();
  if (db === undefined) db = TEST_PG ? pgCreateDb() : path.join(dir, "rtd.db");
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const p = port === undefined ? await freePort() : port;
    const full = [];
    if (p !== null) full.push("--port", String(p));
    if (bind) full.push("--bind", HOST);
    if (db !== null) full.push("--db", db);
    // one node per test folder, so a restart on the same folder is the same node
    if (isPg(db) && !args.includes("--node-id")) full.push("--node-id", `node-${path.basename(dir)}`);
    full.push(...args);
    const r = new Rtd({ port: p ?? waitPort, db, dir, args: full });
    // RTD_VALGRIND=1 runs rtd under valgrind's memcheck: any memory error or definite leak
    // makes it exit 99, which the clean-exit check after each test catches.
    const [cmd, cmdArgs] = process.env.RTD_VALGRIND
      ? ["valgrind", ["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
          "--show-leak-kinds=definite", RTD_BIN, ...full]]
      : [RTD_BIN, full];
    r.proc = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...cleanEnv(), ...env } });
    r.proc.stdout.setEncoding("utf8").on("data", (d) => (r.stdout = (r.stdout + d).slice(-OUTPUT_KEEP)));
    r.proc.stderr.setEncoding("utf8").on("data", (d) => (r.stderr = (r.stderr + d).slice(-OUTPUT_KEEP)));
    r.exited = new Promise((resolve) => {
      r.proc.once("exit", (code, signal) => {
        r.exit = { code, signal };
        setImmediate(() => resolve(r.exit));
      });
      r.proc.once("error", (err) => {
        r.stderr += `\n[spawn error: ${err.message}]`;
        r.exit = { code: -1, signal: null };
        resolve(r.exit);
      });
    });
    const end = Date.now() + readyTimeout;
    while (Date.now() < end && !r.exit) {
      if (await tryConnect(r.port)) return r;
      await sleep(20);
    }
    if (!r.exit) {
      await r.kill();
      throw new Error(`rtd ${full.join(" ")} did not accept on port ${r.port} within ${readyTimeout} ms\n${r.stderr}`);
    }
    await r.exited;
    lastErr = new Error(`rtd ${full.join(" ")} did not start (${r.describeExit()})\n--- stderr ---\n${r.stderr}`);
    // another process took the port between freePort() and rtd's bind: try another one
    if (port !== undefined || !/in use/i.test(r.stderr)) throw lastErr;
  }
  throw lastErr;
}

// ---- clients ---------------------------------------------------------------------------------

// The three kinds of client the platform sees.
export const TRANSPORTS = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  upgrade: {}, // the default: polling first, then the upgrade to WebSocket
};

// A socket.io-client 4.8 socket on rtd's "/" namespace, not yet connected. kind: a key of
// TRANSPORTS. Reconnection is off so that a test sees every disconnect as it happens.
export function makeClient(rtd, { kind = "websocket", auth, query, ...opts } = {}) {
  return io(rtd.url, {
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    autoConnect: false,
    ...TRANSPORTS[kind],
    ...(auth ? { auth } : {}),
    ...(query ? { query } : {}),
    ...opts,
  });
}

// Connects a socket and resolves once "connect" fired (and, for kind "upgrade", once the
// transport upgraded to WebSocket); rejects on connect_error or after ms.
export async function connectSocket(socket, { kind, ms = 5000 } = {}) {
  const done = new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
  });
  socket.connect();
  await within(done, ms, "the client's connect event");
  if (kind === "upgrade") await waitUpgraded(socket, ms);
  return socket;
}

export async function waitUpgraded(socket, ms = 5000) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await within(new Promise((resolve) => engine.once("upgrade", resolve)), ms, "the transport upgrade to WebSocket");
}

// The connect_error a socket gets (rejects if it connects instead).
export async function connectError(socket, ms = 5000) {
  const p = new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("the client connected; expected a connect_error")));
    socket.once("connect_error", resolve);
  });
  socket.connect();
  return within(p, ms, "connect_error");
}

// An emit with an acknowledgement; resolves to the ack's first argument.
export function emitAck(socket, event, ...args) {
  return within(socket.timeout(5000).emitWithAck(event, ...args), 6000, `the ack of "${event}"`);
}

// Sends an invalid event and checks how it is refused: with an ack, {ok:false, error, code};
// without (ack: false), an "error" event {code, message} (s.got.errors must exist, see Ctx).
// args: the event's arguments (an array).
export async function expectRefused(socket, event, args, code, { ack = true } = {}) {
  const what = `${event} ${JSON.stringify(args).slice(0, 120)}`;
  if (ack) {
    const a = await emitAck(socket, event, ...args);
    assert.equal(typeof a, "object", `ack of ${what}`);
    assert.deepEqual(Object.keys(a).sort(), ["code", "error", "ok"], `ack of ${what}: ${JSON.stringify(a)}`);
    assert.equal(a.ok, false, `ack of ${what}`);
    assert.equal(typeof a.error, "string", `ack of ${what}`);
    assert.ok(a.error.length > 0, `ack of ${what} has an error message`);
    assert.equal(a.code, code, `ack of ${what}: ${JSON.stringify(a)}`);
    return a;
  }
  const before = socket.got.errors.items.length;
  socket.emit(event, ...args);
  await socket.got.errors.waitCount(before + 1);
  const [e, ...more] = socket.got.errors.items[before];
  assert.equal(more.length, 0, `the error event of ${what} has one argument`);
  assert.deepEqual(Object.keys(e).sort(), ["code", "message"], `error event of ${what}: ${JSON.stringify(e)}`);
  assert.equal(e.code, code, `error event of ${what}: ${JSON.stringify(e)}`);
  assert.equal(typeof e.message, "string");
  assert.ok(e.message.length > 0, `error event of ${what} has a message`);
  return e;
}

// ---- the database ----------------------------------------------------------------------------

export const TEST_PG = process.env.RTD_TEST_DB === "pg";
export const isPg = (db) => typeof db === "string" && /^postgres(ql)?:\/\//.test(db);
const PG_LIB = path.resolve(TESTS_DIR, "pg/lib.sh");
let pgServer = null; // { dir, port, url }

// The PostgreSQL server of this test process (started on first use), or null when the
// PostgreSQL binaries are absent (the caller skips).
export function pgServerSync() {
  if (pgServer) return pgServer;
  let out;
  try {
    out = execFileSync("bash", [PG_LIB, "start"], { encoding: "utf8", timeout: 60000 });
  } catch (e) {
    if (e.status === 77) return null;
    throw new Error(`tests/pg/lib.sh start failed: ${e.message} ${e.stderr ?? ""}`);
  }
  const v = Object.fromEntries(out.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
  pgServer = { dir: v.PGTMP, port: Number(v.PGPORT), url: v.PG_URL };
  process.once("exit", () => {
    try {
      execFileSync("bash", [PG_LIB, "stop", pgServer.dir], { timeout: 30000 });
    } catch {}
  });
  return pgServer;
}

// Restarts this process's PostgreSQL (fast shutdown, then start on the same port).
export function pgRestartSync() {
  execFileSync("bash", [PG_LIB, "restart", pgServer.dir, String(pgServer.port)], { timeout: 60000 });
}

// Stops (halt) or starts again (resume) this process's PostgreSQL, asynchronously.
export function pgHalt() {
  return new Promise((resolve, reject) =>
    execFile("bash", [PG_LIB, "halt", pgServer.dir], { timeout: 60000 }, (e) => (e ? reject(e) : resolve())));
}
export function pgResume() {
  return new Promise((resolve, reject) =>
    execFile("bash", [PG_LIB, "resume", pgServer.dir, String(pgServer.port)], { timeout: 60000 }, (e) =>
      e ? reject(e) : resolve()));
}

let pgDbSeq = 0;
// A new empty database on this process's PostgreSQL; returns its URL.
export function pgCreateDb() {
  const srv = pgServerSync();
  if (!srv) throw new Error("SKIP: PostgreSQL is not installed");
  const name = `t${process.pid}_${++pgDbSeq}`;
  execFileSync("psql", ["-X", "-q", "-h", srv.dir, "-p", String(srv.port), "-U", "postgres", "-d", "postgres",
    "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE ${name}`], { timeout: 30000 });
  return `postgresql://postgres@127.0.0.1:${srv.port}/${name}`;
}

// psql's arguments for sql on db: a SELECT (or WITH) comes back as one JSON array.
function psqlArgs(db, sql) {
  const select = /^\s*(select|with)\b/i.test(sql);
  const q = select ? `SELECT coalesce(json_agg(t), '[]'::json) FROM (${sql.replace(/;\s*$/, "")}) t` : sql;
  return ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", q];
}

const SQLITE_ARGS = (db, sql) => ["-json", "-cmd", ".timeout 5000", db, sql];

function parseJsonRows(out) {
  const t = out.trim();
  return t ? JSON.parse(t) : [];
}

// Rows of a query run by the sqlite3 shell (another connection, another process).
export function query(db, sql) {
  if (isPg(db))
    return new Promise((resolve, reject) => {
      execFile("psql", psqlArgs(db, sql), { timeout: 10000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql ${db} ${JSON.stringify(sql)}: ${err.message} ${stderr}`));
        else resolve(/^\s*(select|with)\b/i.test(sql) ? parseJsonRows(stdout) : []);
      });
    });
  return new Promise((resolve, reject) => {
    execFile("sqlite3", SQLITE_ARGS(db, sql), { timeout: 10000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`sqlite3 ${db} ${JSON.stringify(sql)}: ${err.message} ${stderr}`));
      else resolve(parseJsonRows(stdout));
    });
  });
}

// The same, synchronously: for checks that must happen right now (in an ack handler).
export function querySync(db, sql) {
  if (isPg(db)) {
    const out = execFileSync("psql", psqlArgs(db, sql), { timeout: 10000, encoding: "utf8", maxBuffer: 64 << 20 });
    return /^\s*(select|with)\b/i.test(sql) ? parseJsonRows(out) : [];
  }
  return parseJsonRows(execFileSync("sqlite3", SQLITE_ARGS(db, sql), { timeout: 10000, encoding: "utf8", maxBuffer: 64 << 20 }));
}

// Another process (the sqlite3 shell) holding the database's write lock, as a backup tool or
// a migration would: rtd's writer then waits (busy timeout) with the transaction it has.
// On PostgreSQL, psql locks the tables rtd writes (EXCLUSIVE: readers still read).
export async function holdWriteLock(db) {
  const pg = isPg(db);
  const sh = pg
    ? spawn("psql", ["-X", "-q", "-A", "-t", "-d", db], { stdio: ["pipe", "pipe", "pipe"] })
    : spawn("sqlite3", [db], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  sh.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  const exited = new Promise((resolve) => sh.once("exit", resolve));
  sh.stdin.write(pg
    ? "BEGIN;\nLOCK TABLE messages, connections IN EXCLUSIVE MODE;\nSELECT 'locked';\n"
    : ".timeout 5000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
  await waitUntil(() => out.includes("locked"), { timeout: 5000, what: "the sqlite3 shell to take the write lock" });
  let released = false;
  return {
    // Ends the lock (once; later calls only wait for the shell's exit).
    async release() {
      if (!released) sh.stdin.end(pg ? "COMMIT;\n\\q\n" : "COMMIT;\n.quit\n");
      released = true;
      await within(exited, 5000, "the sqlite3 shell to exit");
    },
  };
}

export function sqlString(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

export async function connectionRow(db, socketId) {
  const rows = await query(db, `SELECT * FROM connections WHERE socket_id = ${sqlString(socketId)}`);
  return rows[0];
}

// Polls until the connection row of socketId satisfies pred (default: exists); returns it.
export function waitConnectionRow(db, socketId, pred = () => true, what = "") {
  return waitUntil(
    async () => {
      const row = await connectionRow(db, socketId);
      return row && pred(row) ? row : null;
    },
    { timeout: 5000, interval: 25, what: `the connections row of ${socketId}${what ? ` ${what}` : ""}` },
  );
}

export async function count(db, table, where = "true") {
  const rows = await query(db, `SELECT count(*) AS n FROM ${table} WHERE ${where}`);
  return rows[0].n;
}

// 'YYYY-MM-DD HH:MM:SS.SSS' (the database's time text) as epoch milliseconds.
export function dbTimeMs(t) {
  assert.match(t, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/, `database time ${JSON.stringify(t)}`);
  return Date.parse(`${t.replace(" ", "T")}Z`);
}

export const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// ---- HTTP ------------------------------------------------------------------------------------

export function httpGet(rtd, urlPath, headers = {}) {
  return request({ port: rtd.port, path: urlPath, headers });
}

// Prometheus text format: { samples: Map("name{labels}" -> number), types: Map(name -> type) }.
export function parseMetrics(text) {
  const samples = new Map();
  const types = new Map();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      types.set(m[1], m[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus text-format line: ${JSON.stringify(line)}`);
    samples.set(m[1] + (m[2] ?? ""), Number(m[3]));
  }
  return { samples, types };
}

export async function metrics(rtd) {
  const res = await httpGet(rtd, "/metrics");
  assert.equal(res.status, 200);
  return parseMetrics(res.text);
}

// ---- the test wrapper ------------------------------------------------------------------------

// The state of one test: its rtd and the clients it opened (closed at the end).
export class Ctx {
  constructor() {
    this.rtd = null;
    this.extra = []; // more rtd processes the test started itself
    this.sockets = [];
  }

  // A connected client. opts: kind ("websocket" | "polling" | "upgrade"), auth, query, and
  // socket.io-client options; rtd: another server than ctx.rtd.
  async client(opts = {}, rtd = this.rtd) {
    const s = makeClient(rtd, opts);
    this.track(s);
    await connectSocket(s, { kind: opts.kind ?? "websocket" });
    return s;
  }

  // A client that is not connected yet.
  socket(opts = {}, rtd = this.rtd) {
    return this.track(makeClient(rtd, opts));
  }

  // Records what the socket receives from the start: s.got.messages (receive-message),
  // .errors ("error"), .identified, .joined (user-connected), .left (user-disconnected).
  track(s) {
    this.sockets.push(s);
    s.got = {
      messages: collect(s, "receive-message"),
      errors: collect(s, "error"),
      identified: collect(s, "identified"),
      joined: collect(s, "user-connected"),
      left: collect(s, "user-disconnected"),
    };
    return s;
  }

  // A connected client that identified as { userId, platform, appVersion }.
  async identified(kind, identity, rtd = this.rtd) {
    const s = await this.client({ kind }, rtd);
    const ack = await emitAck(s, "identify", identity);
    assert.equal(ack.platform, identity.platform, `identify ack ${JSON.stringify(ack)}`);
    return s;
  }

  async startExtra(opts) {
    const r = await startRtd(opts);
    this.extra.push(r);
    return r;
  }

  closeClients() {
    for (const s of this.sockets) s.disconnect();
    this.sockets = [];
  }
}

// Declares a test with its own rtd. opts: { args, env, timeout (ms, default 20000),
// start (false: fn starts rtd itself and sets ctx.rtd), ...startRtd options }.
export function rtdTest(name, opts, fn) {
  if (typeof opts === "function") {
    fn = opts;
    opts = {};
  }
  const { timeout = 20000, start = true, skip, ...startOpts } = opts;
  it(name, { timeout, skip }, async () => {
    const ctx = new Ctx();
    const firstDir = createdDirs.length;
    let failure = null;
    try {
      if (start) ctx.rtd = await startRtd(startOpts);
      await fn(ctx);
    } catch (e) {
      failure = e;
    }
    ctx.closeClients();
    const servers = [ctx.rtd, ...ctx.extra].filter(Boolean);
    for (const r of servers) {
      if (r.exit) {
        // the test stopped it itself (and checked how)
        if (failure) r.printStderr("(stopped by the test)");
        continue;
      }
      try {
        await r.stop();
        if (failure) r.printStderr("(the test failed)");
      } catch (e) {
        r.printStderr(`(${e.message})`);
        await r.kill();
        failure ??= e;
      }
    }
    const dirs = new Set([...servers.map((r) => r.dir), ...createdDirs.splice(firstDir)]);
    if (!failure) for (const d of dirs) rmSync(d, { recursive: true, force: true });
    else if (dirs.size) process.stderr.write(`(kept the test's folder(s) ${[...dirs].join(", ")})\n`);
    if (failure) throw failure;
  });
}

// Waits until `fn` stops throwing (an assertion that becomes true), bounded.
export async function eventually(fn, { timeout = 5000, interval = 25, what = "an assertion" } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() >= end) {
        e.message = `still failing after ${timeout} ms (${what}): ${e.message}`;
        throw e;
      }
    }
    await sleep(interval);
  }
}

// ---- the browser -----------------------------------------------------------------------------

// Debian's Chromium, headless, through playwright-core, with a fresh profile and the flags that
// keep it off the network (TESTING.md). The caller closes it.
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launchPersistentContext(tempDir("rtd-chromium-"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
