// Starting and stopping the server under test.
//
// CONFORMANCE_SERVER selects it:
//   ref            the Node.js reference, js/ref/conformance-ref.mjs (socket.io 4.8)
//   /path/to/bin   the C conformance server (tests/conformance-server from a build tree)
//   unset          tests/conformance-server next to this package, if it was built in-tree
// Both are started as `<program> --port N [--engine-only]` on a free port picked here; the
// server is ready when its port accepts a TCP connection (polled, never a fixed sleep).

import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { sleep } from "./util.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const TESTS_DIR = path.resolve(here, "../..");
export const REF_SERVER = path.resolve(here, "../ref/conformance-ref.mjs");
export const HOST = "127.0.0.1";

// True when the tests run against the Node.js reference.
export const IS_REF = (process.env.CONFORMANCE_SERVER || "") === "ref";

// Options for tests where rtd intentionally differs from the reference: they run only against
// the C server. Use as it(name, rtdOnly(), fn) or it(name, rtdOnly({ timeout }), fn).
export function rtdOnly(opts = {}) {
  return IS_REF ? { ...opts, skip: "rtdOnly: rtd intentionally differs from the reference here" } : opts;
}

function serverCommand(extraArgs) {
  const sel = process.env.CONFORMANCE_SERVER || "";
  if (sel === "ref") return { cmd: process.execPath, args: [REF_SERVER, ...extraArgs], name: "reference (node)" };
  const bin = sel || path.join(TESTS_DIR, "conformance-server");
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(
      `conformance server ${JSON.stringify(bin)} is not an executable file: build it, or set ` +
        `CONFORMANCE_SERVER=/path/to/tests/conformance-server (or CONFORMANCE_SERVER=ref for the Node.js reference)`,
    );
  }
  return { cmd: bin, args: extraArgs, name: bin };
}

// A port that was free a moment ago: bind port 0 on the loopback, read it, close.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One TCP connection attempt; resolves true if it was accepted.
function tryConnect(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
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

const STDERR_KEEP = 64 * 1024;

// Servers still running when this process exits (a crash, a cancelled run) are killed with it.
const running = new Set();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

class ServerProcess {
  constructor({ name, engineOnly }) {
    this.name = name;
    this.engineOnly = engineOnly;
    this.port = 0;
    this.proc = null;
    this.stderr = "";
    this.stdout = "";
    this.exit = null; // { code, signal } once exited
    this.exited = null; // promise
    this.stopping = false;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  get wsUrl() {
    return `ws://${HOST}:${this.port}`;
  }

  // Engine.IO path of the server: /socket.io/ by default, /engine.io/ in engine-only mode.
  get eioPath() {
    return this.engineOnly ? "/engine.io/" : "/socket.io/";
  }

  describeExit() {
    if (!this.exit) return "running";
    return this.exit.signal ? `killed by ${this.exit.signal}` : `exit status ${this.exit.code}`;
  }

  stderrTail() {
    return this.stderr.length > 0 ? this.stderr : "(empty)";
  }
}

async function spawnOnce({ engineOnly, args: more, readyTimeout }) {
  const port = await freePort();
  const extra = ["--port", String(port)];
  if (engineOnly) extra.push("--engine-only");
  extra.push(...more);
  const { cmd, args, name } = serverCommand(extra);
  const sp = new ServerProcess({ name, engineOnly });
  sp.port = port;
  sp.proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  sp.proc.stdout.setEncoding("utf8");
  sp.proc.stderr.setEncoding("utf8");
  sp.proc.stdout.on("data", (d) => {
    sp.stdout = (sp.stdout + d).slice(-STDERR_KEEP);
  });
  sp.proc.stderr.on("data", (d) => {
    sp.stderr = (sp.stderr + d).slice(-STDERR_KEEP);
  });
  running.add(sp.proc);
  sp.exited = new Promise((resolve) => {
    sp.proc.once("exit", (code, signal) => {
      running.delete(sp.proc);
      sp.exit = { code, signal };
      resolve(sp.exit);
    });
    sp.proc.once("error", (err) => {
      sp.stderr += `\n[spawn error: ${err.message}]`;
      sp.exit = { code: -1, signal: null };
      resolve(sp.exit);
    });
  });

  const end = Date.now() + readyTimeout;
  while (Date.now() < end) {
    if (sp.exit) break;
    if (await tryConnect(port)) return sp;
    await sleep(25);
  }
  const why = sp.exit ? `it exited (${sp.describeExit()})` : `its port ${port} did not accept within ${readyTimeout} ms`;
  if (!sp.exit) {
    sp.proc.kill("SIGKILL");
    await sp.exited;
  }
  const err = new Error(`${name} ${extra.join(" ")} did not start: ${why}\n--- server stderr ---\n${sp.stderrTail()}`);
  err.exitedEarly = sp.exit && sp.exit.signal !== "SIGKILL";
  throw err;
}

// Starts the server under test (`--port N [--engine-only] ...args`) and resolves once its port
// accepts connections. A port taken by someone else between freePort() and the server's bind
// makes the server exit: retried then.
export async function startServer({ engineOnly = false, args = [], readyTimeout = 10000 } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await spawnOnce({ engineOnly, args, readyTimeout });
    } catch (err) {
      lastErr = err;
      if (!err.exitedEarly || !/EADDRINUSE|address already in use/i.test(err.message)) throw err;
    }
  }
  throw lastErr;
}

// Stops the server with SIGTERM and checks how it ended: exit status 0, or killed by our SIGTERM.
// Prints its stderr when printStderr (a test failed) or when it ended badly.
export async function stopServer(sp, { printStderr = false, timeout = 5000 } = {}) {
  if (!sp) return;
  const diedBefore = sp.exit !== null;
  if (!diedBefore) {
    sp.stopping = true;
    sp.proc.kill("SIGTERM");
    let timer;
    const killed = await Promise.race([
      sp.exited.then(() => false),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(true), timeout);
      }),
    ]);
    clearTimeout(timer);
    if (killed) {
      sp.proc.kill("SIGKILL");
      await sp.exited;
      process.stderr.write(`--- ${sp.name} stderr ---\n${sp.stderrTail()}\n`);
      throw new Error(`${sp.name} did not exit within ${timeout} ms of SIGTERM (killed)`);
    }
  }
  const { code, signal } = sp.exit;
  const ok = !diedBefore && (code === 0 || signal === "SIGTERM");
  if (printStderr || !ok) {
    process.stderr.write(`--- ${sp.name} (port ${sp.port}) stderr, ${sp.describeExit()} ---\n${sp.stderrTail()}\n`);
  }
  if (diedBefore) throw new Error(`${sp.name} died during the tests (${sp.describeExit()})`);
  if (!ok) throw new Error(`${sp.name} ended with ${sp.describeExit()} after SIGTERM (expected status 0)`);
}

// A describe() block with its own server (extra flags in args): started before its tests, stopped (and its exit status
// checked) by a last test. body receives ctx: ctx.server is the running server, ctx.test(name,
// [opts], fn) declares a test that has a timeout (default 15 s) and, if it fails, makes the
// server's stderr be printed when the server stops.
export function serverSuite(title, { engineOnly = false, args = [], timeout = 15000 } = {}, body) {
  describe(title, () => {
    const ctx = {
      server: null,
      failed: false,
      test(name, opts, fn) {
        if (typeof opts === "function") {
          fn = opts;
          opts = {};
        }
        it(name, { timeout, ...opts }, async (t) => {
          try {
            if (!ctx.server) throw new Error("the server did not start");
            if (ctx.server.exit) throw new Error(`the server is not running (${ctx.server.describeExit()})`);
            await fn(t);
          } catch (err) {
            ctx.failed = true;
            throw err;
          }
        });
      },
    };
    before(async () => {
      ctx.server = await startServer({ engineOnly, args });
    }, { timeout: 20000 });
    // normally the last test below has stopped it already (e.g. not when tests are filtered)
    after(async () => {
      const sp = ctx.server;
      ctx.server = null;
      await stopServer(sp, { printStderr: ctx.failed });
    }, { timeout: 20000 });
    body(ctx);
    // Last, as a test of its own so that a bad exit counts as a failed test.
    it("the server exits cleanly on SIGTERM (status 0 or killed by SIGTERM)", { timeout: 20000 }, async () => {
      const sp = ctx.server;
      ctx.server = null;
      if (!sp) throw new Error("the server did not start");
      await stopServer(sp, { printStderr: ctx.failed });
    });
  });
}
