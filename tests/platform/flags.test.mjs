// rtd's command line: parsing errors (a clear message, exit status 2, nothing started), --version,
// --help, the environment fallbacks (SOCKET_PORT, DATABASE_PATH, CORS_ORIGINS), and what each
// flag does.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { Polling, request } from "../js/lib/http.mjs";
import { RawWs } from "../js/lib/rawws.mjs";
import { freePort } from "../js/lib/server.mjs";
import {
  RTD_BIN,
  TEST_PG,
  TESTS_DIR,
  cleanEnv,
  count,
  withTempDir,
  emitAck,
  expectRefused,
  query,
  rtdTest,
  runRtd,
  startRtd,
  tempDir,
  tryConnect,
  waitConnectionRow,
  waitUntil,
  within,
} from "./lib.mjs";

describe("flag parsing errors", () => {
  const cases = [
    [["--nope"], /unknown option '--nope'/],
    [["--verbose=1"], /unknown option '--verbose=1'/],
    [["-p", "3000"], /unknown option '-p'/],
    [["stray-argument"], /unexpected argument 'stray-argument'/],
    [["--port"], /option '--port' needs a value/],
    [["--presence"], /option '--presence' needs a value/],
    [["--port", "abc"], /invalid value 'abc' for --port/],
    [["--port", "70000"], /invalid value '70000' for --port/],
    [["--port", "-1"], /invalid value '-1' for --port/],
    [["--port", "80x"], /invalid value '80x' for --port/],
    [["--db", ""], /invalid value '' for --db/],
    [["--cors-origin", ""], /invalid value '' for --cors-origin/],
    [["--ping-interval", "5"], /invalid value '5' for --ping-interval/],
    [["--ping-timeout", "soon"], /invalid value 'soon' for --ping-timeout/],
    [["--max-payload", "10"], /invalid value '10' for --max-payload/],
    [["--connect-timeout", "-1"], /invalid value '-1' for --connect-timeout/],
    [["--max-message-bytes", "0"], /invalid value '0' for --max-message-bytes/],
    [["--max-message-bytes", "1e4"], /invalid value '1e4' for --max-message-bytes/],
    [["--presence", "maybe"], /invalid value 'maybe' for --presence/],
    [["--presence", "ON"], /invalid value 'ON' for --presence/],
    [["--sync", "fast"], /invalid value 'fast' for --sync/],
    [["--log-level", "loud"], /invalid value 'loud' for --log-level/],
    [["--rate-limit", "-1"], /invalid value '-1' for --rate-limit/],
    [["--rate-limit", "lots"], /invalid value 'lots' for --rate-limit/],
    [["--rate-burst", "0"], /invalid value '0' for --rate-burst/],
    [["--max-rooms", "many"], /invalid value 'many' for --max-rooms/],
    [["--max-connections", "0"], /invalid value '0' for --max-connections/],
  ];
  for (const [args, re] of cases) {
    it(`${JSON.stringify(args.join(" "))}: exit status 2 with a clear message, nothing started`, () => withTempDir(async (dir) => {
      const db = path.join(dir, "never.db");
      const port = await freePort();
      // the flag under test comes last, so that a missing value cannot swallow another flag
      const r = await runRtd(["--db", db, "--port", String(port), "--bind", "127.0.0.1", ...args]);
      assert.equal(r.code, 2, `exit status (stderr: ${r.stderr})`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /^rtd: /, "the message says who is talking");
      assert.equal(r.stderr.split("\n").filter(Boolean).length <= 2, true, `a short message: ${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.equal(existsSync(db), false, "no database was created");
    }));
  }

  it("a bad SOCKET_PORT: exit status 2 with a clear message", () => withTempDir(async (dir) => {
    const r = await runRtd(["--db", path.join(dir, "x.db")], { env: { SOCKET_PORT: "http" } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SOCKET_PORT 'http'/);
  }));

  // Regression (was a bug, now fixed): a --bind value that is not an address is only noticed when the HTTP server starts
  // (http.c), after the database was opened: rtd logs "[ERROR] --bind: not an IPv4 or IPv6
  // address" and exits with status 1. Expected (contract and man page: "2 for an unknown flag or
  // a bad value"): exit status 2, before anything is created.
  it('"--bind not-an-address": exit status 2 with a clear message', () => withTempDir(async (dir) => {
    const db = path.join(dir, "never.db");
    const r = await runRtd(["--db", db, "--port", String(await freePort()), "--bind", "not-an-address"]);
    assert.match(r.stderr, /--bind/);
    assert.equal(r.code, 2, `exit status (stderr: ${r.stderr})`);
    assert.equal(existsSync(db), false, "no database was created");
  }));
});

describe("--version and --help", () => {
  it("--version prints the version and exits 0", async () => {
    const r = await runRtd(["--version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^rtd \d+\.\d+\.\d+\S*\n$/);
    assert.equal(r.stderr, "");
  });

  it("--help lists every flag and exits 0", async () => {
    const r = await runRtd(["--help"]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, "");
    for (const flag of [
      "--port", "--bind", "--db", "--cors-origin", "--ping-interval", "--ping-timeout", "--max-payload",
      "--connect-timeout", "--max-message-bytes", "--presence", "--sync", "--log-level", "--log-file",
      "--static-dir", "--client-js", "--max-connections", "--rate-limit", "--rate-burst", "--max-rooms",
      "--auth-secret", "--backup", "--node-id", "--version", "--help",
    ]) {
      assert.match(r.stdout, new RegExp(`^\\s+${flag}\\b`, "m"), `--help mentions ${flag}`);
    }
    for (const env of ["SOCKET_PORT", "DATABASE_PATH", "CORS_ORIGINS", "RTD_NODE_ID"]) assert.ok(r.stdout.includes(env), `--help mentions ${env}`);
  });

  it("every flag --help lists has its entry in the man page", async () => {
    const r = await runRtd(["--help"]);
    const flags = [...r.stdout.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(flags.length >= 25, `--help lists the flags (${flags.length})`);
    const man = readFileSync(path.join(TESTS_DIR, "../man/rtd.8.in"), "utf8");
    for (const flag of flags) {
      const roff = flag.replaceAll("-", "\\-");
      assert.match(man, new RegExp(`^\\.(B|BI|BR) ${roff.replaceAll("\\", "\\\\")}( |$)`, "m"), `man/rtd.8.in documents ${flag}`);
    }
  });

  it("--help and --version start nothing, even with other flags", () => withTempDir(async (dir) => {
    const db = path.join(dir, "never.db");
    for (const flag of ["--help", "--version"]) {
      const r = await runRtd(["--db", db, "--port", "1", flag]);
      assert.equal(r.code, 0);
      assert.equal(existsSync(db), false);
    }
  }));
});

describe("environment fallbacks", () => {
  rtdTest("SOCKET_PORT is the port when --port is not given", { start: false }, async (ctx) => {
    const port = await freePort();
    ctx.rtd = await startRtd({ port: null, waitPort: port, env: { SOCKET_PORT: String(port) } });
    const s = await ctx.client({ kind: "polling" });
    assert.ok(s.connected);
    assert.match(ctx.rtd.stderr, new RegExp(`Socket.IO server running \\{"port":${port},`));
  });

  rtdTest("--port wins over SOCKET_PORT", { start: false }, async (ctx) => {
    const envPort = await freePort();
    ctx.rtd = await startRtd({ env: { SOCKET_PORT: String(envPort) } });
    assert.notEqual(ctx.rtd.port, envPort);
    await ctx.client({ kind: "websocket" });
    assert.equal(await tryConnect(envPort), false, "nothing listens on SOCKET_PORT");
  });

  rtdTest("DATABASE_PATH is the database when --db is not given; --db wins over it", { start: false }, async (ctx) => {
    const dir = tempDir();
    const envDb = path.join(dir, "from-env.db");
    ctx.rtd = await startRtd({ dir, db: null, env: { DATABASE_PATH: envDb } });
    const s = await ctx.client({ kind: "websocket" });
    await waitConnectionRow(envDb, s.id);
    await ctx.rtd.stop();

    const flagDb = path.join(dir, "from-flag.db");
    const otherEnv = path.join(dir, "ignored.db");
    ctx.rtd = await startRtd({ dir, db: flagDb, env: { DATABASE_PATH: otherEnv } });
    const t = await ctx.client({ kind: "websocket" });
    await waitConnectionRow(flagDb, t.id);
    assert.equal(existsSync(otherEnv), false, "DATABASE_PATH is ignored when --db is given");
  });

  rtdTest("--db defaults to ./socket_events.db", { start: false }, async (ctx) => {
    const dir = tempDir();
    const port = await freePort();
    // started in dir as its working directory, without --db
    const proc = spawn(RTD_BIN, ["--port", String(port), "--bind", "127.0.0.1"], { cwd: dir, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    try {
      await waitUntil(() => tryConnect(port), { timeout: 10000, what: "rtd's port" });
      assert.ok(existsSync(path.join(dir, "socket_events.db")), `socket_events.db in the working directory (${stderr})`);
    } finally {
      proc.kill("SIGTERM");
      assert.deepEqual(await within(exited, 6000, "rtd's exit"), { code: 0, signal: null }, stderr);
    }
  });

  rtdTest(
    "CORS_ORIGINS (comma-separated) when no --cors-origin is given",
    { env: { CORS_ORIGINS: "http://a.example, http://b.example" } },
    async (ctx) => {
      assert.equal(await allowOrigin(ctx.rtd, "http://a.example"), "http://a.example");
      assert.equal(await allowOrigin(ctx.rtd, "http://b.example"), "http://b.example");
      assert.equal(await allowOrigin(ctx.rtd, "http://c.example"), undefined);
    },
  );

  rtdTest(
    "--cors-origin is repeatable and replaces CORS_ORIGINS",
    { args: ["--cors-origin", "https://one.example", "--cors-origin", "https://two.example"], env: { CORS_ORIGINS: "http://a.example" } },
    async (ctx) => {
      assert.equal(await allowOrigin(ctx.rtd, "https://one.example"), "https://one.example");
      assert.equal(await allowOrigin(ctx.rtd, "https://two.example"), "https://two.example");
      assert.equal(await allowOrigin(ctx.rtd, "http://a.example"), undefined);
      assert.equal(await allowOrigin(ctx.rtd, "https://three.example"), undefined);
    },
  );

  rtdTest("no CORS origin is allowed by default", async (ctx) => {
    assert.equal(await allowOrigin(ctx.rtd, "http://a.example"), undefined);
  });
});

// The Access-Control-Allow-Origin of a polling handshake sent with this Origin.
async function allowOrigin(rtd, origin) {
  const res = await request({ port: rtd.port, path: "/socket.io/?EIO=4&transport=polling", headers: { Origin: origin } });
  return res.headers["access-control-allow-origin"];
}

async function openPacket(rtd) {
  const p = new Polling(rtd.port, "/socket.io/");
  await p.handshake();
  return p.open;
}

describe("flags at work", () => {
  rtdTest("the defaults of --ping-interval, --ping-timeout and --max-payload in the handshake", async (ctx) => {
    const open = await openPacket(ctx.rtd);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.equal(open.maxPayload, 1000000);
  });

  rtdTest(
    "--ping-interval and --ping-timeout: a client that stops answering pings is dropped and its row closed",
    { args: ["--ping-interval", "150", "--ping-timeout", "150"] },
    async (ctx) => {
      const { rtd } = ctx;
      const open = await openPacket(rtd);
      assert.equal(open.pingInterval, 150);
      assert.equal(open.pingTimeout, 150);
      const good = await ctx.client({ kind: "polling" });
      const mute = await RawWs.connect({ port: rtd.port, path: "/socket.io/?EIO=4&transport=websocket" });
      try {
        mute.eioAutoPong = false; // never answers "2" with "3"
        assert.match(await mute.nextText(), /^0\{/);
        mute.text("40");
        const sid = JSON.parse((await mute.nextText()).slice(2)).sid;
        await waitConnectionRow(rtd.db, sid, (r) => r.status === "active");
        const [[left]] = await good.got.left.waitCount(1, 5000);
        assert.equal(left.socketId, sid);
        await waitConnectionRow(rtd.db, sid, (r) => r.status === "disconnected", "closed after the ping timeout");
        // the client that answers its pings is still there, well after interval + timeout
        assert.ok(good.connected);
        assert.equal((await emitAck(good, "send-message", { sender: "g", text: "alive" })).ok, true);
      } finally {
        mute.destroy();
      }
    },
  );

  rtdTest("--max-payload: announced in the handshake; a longer HTTP body is refused", { args: ["--max-payload", "2000"] }, async (ctx) => {
    const { rtd } = ctx;
    const p = new Polling(rtd.port, "/socket.io/");
    await p.handshake();
    assert.equal(p.open.maxPayload, 2000);
    await p.send("40");
    await p.receive();
    const res = await p.post(`42${JSON.stringify(["send-message", { sender: "x", text: "y".repeat(3000) }])}`);
    assert.equal(res.status, 413, res.text);
    assert.equal(await count(rtd.db, "messages"), 0);
  });

  rtdTest("--connect-timeout: a session that joins no namespace is closed", { args: ["--connect-timeout", "300"] }, async (ctx) => {
    const { rtd } = ctx;
    const idle = new Polling(rtd.port, "/socket.io/");
    await idle.handshake();
    const joined = await ctx.client({ kind: "polling" });
    // the idle session ends: a held GET gets the close packet, or the sid is unknown
    const end = await waitUntil(
      async () => {
        const res = await idle.get({ timeout: 3000 });
        if (res.status === 400) return "gone";
        return res.text.split("\x1e").includes("1") ? "closed" : null;
      },
      { timeout: 5000, interval: 10, what: "the idle session to be closed" },
    );
    assert.ok(end === "gone" || end === "closed");
    assert.ok(joined.connected, "a session that joined a namespace stays");
    assert.equal((await emitAck(joined, "send-message", { sender: "j", text: "still here" })).ok, true);
  });

  rtdTest("--max-message-bytes: the longest text in bytes", { args: ["--max-message-bytes", "20"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    assert.equal((await emitAck(s, "send-message", { sender: "s", text: "x".repeat(20) })).ok, true);
    assert.equal((await emitAck(s, "send-message", { sender: "s", text: "é".repeat(10) })).ok, true);
    await expectRefused(s, "send-message", [{ sender: "s", text: "x".repeat(21) }], "text_too_long");
    await expectRefused(s, "send-message", [{ sender: "s", text: "é".repeat(10) + "x" }], "text_too_long");
    await expectRefused(s, "send-message", [{ sender: "s", text: "x".repeat(21) }], "text_too_long", { ack: false });
    assert.equal(await count(ctx.rtd.db, "messages"), 2);
  });

  for (const mode of ["normal", "full"]) {
    rtdTest(`--sync ${mode}: messages are stored and acked; the database is in WAL mode`, { args: ["--sync", mode], skip: TEST_PG && "SQLite only" }, async (ctx) => {
      const s = await ctx.client({ kind: "polling" });
      const a = await emitAck(s, "send-message", { sender: "s", text: mode });
      assert.equal(a.ok, true);
      assert.deepEqual(await query(ctx.rtd.db, `SELECT message_text FROM messages WHERE id = ${a.id}`), [{ message_text: mode }]);
      assert.deepEqual(await query(ctx.rtd.db, "PRAGMA journal_mode"), [{ journal_mode: "wal" }]);
    });
  }

  rtdTest("--log-level error: no INFO lines", { args: ["--log-level", "error"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    await emitAck(s, "send-message", { sender: "s", text: "quiet" });
    s.disconnect();
    await waitConnectionRow(ctx.rtd.db, (await query(ctx.rtd.db, "SELECT socket_id FROM connections"))[0].socket_id, (r) => r.status === "disconnected");
    await ctx.rtd.stop();
    assert.equal(ctx.rtd.stderr, "", "nothing below ERROR was logged");
  });

  rtdTest("--log-level debug: DEBUG lines too", { args: ["--log-level", "debug"] }, async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    const a = await emitAck(s, "send-message", { sender: "s", text: "loud" });
    await waitUntil(() => ctx.rtd.stderr.includes(`[DEBUG] Message sent {"id":${a.id},`), { what: "the DEBUG line of the message" });
    assert.match(ctx.rtd.stderr, /\[INFO\] Client connected/);
  });

  rtdTest("the default log level is info: INFO lines, no DEBUG", async (ctx) => {
    const s = await ctx.client({ kind: "websocket" });
    await emitAck(s, "send-message", { sender: "s", text: "normal" });
    const id = s.id;
    s.disconnect();
    await waitUntil(() => ctx.rtd.stderr.includes(`Client disconnected {"socketId":"${id}"`), { what: "the disconnect line" });
    assert.doesNotMatch(ctx.rtd.stderr, /\[DEBUG\]/);
  });

  rtdTest("--bind 127.0.0.1 listens on that address only", async (ctx) => {
    // (every test starts rtd with --bind 127.0.0.1; 127.0.0.2 is another loopback address)
    assert.equal(await tryConnect(ctx.rtd.port), true);
    assert.equal(await tryConnect(ctx.rtd.port, 500, "127.0.0.2"), false, "not on 127.0.0.2");
  });

  rtdTest("without --bind, every address", { bind: false }, async (ctx) => {
    assert.equal(await tryConnect(ctx.rtd.port, 500, "127.0.0.2"), true, "127.0.0.2 too");
  });
});

describe("log lines stay JSON whatever the values", () => {
  it("a --client-js path with quotes, a backslash and a line break is escaped in the log", () => withTempDir(async (dir) => {
    const bad = path.join(dir, 'no "such"\\dir\nx.js');
    const r = await runRtd(["--db", path.join(dir, "x.db"), "--port", String(await freePort()), "--bind", "127.0.0.1", "--client-js", bad]);
    assert.notEqual(r.code, 0, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.includes("Cannot read --client-js"));
    assert.ok(line, `the error line: ${r.stderr}`);
    const data = JSON.parse(line.slice(line.indexOf("{")));
    assert.equal(data.path, bad);
  }));
});
