// --laravel-config: rtd reading laravel-echo-server.json (keys and defaults of
// laravel-echo-server 1.6.3), serving Laravel Echo's subscribe/unsubscribe on "/" and
// Laravel's RedisBroadcaster messages from Redis.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { runRtd, startRtd, withTempDir } from "./lib.mjs";

function config(dir, obj, name = "laravel-echo-server.json") {
  const f = path.join(dir, name);
  writeFileSync(f, typeof obj === "string" ? obj : JSON.stringify(obj));
  return f;
}

describe("--laravel-config", () => {
  it("refuses bad values at start with a message naming the key", () => withTempDir(async (dir) => {
    const db = path.join(dir, "x.db");
    for (const [cfg, re] of [
      ["{nope", /cannot read/],
      [[1], /expected a JSON object/],
      [{ protocol: "ftp" }, /protocol: 'ftp'/],
      [{ protocol: "https" }, /https is not served/],
      [{ port: "abc" }, /port: expected a port/],
      [{ authHost: 5 }, /authHost/],
      [{ authHost: "localhost" }, /authHost: 'localhost' is not an http/],
      [{ clients: [{ appId: "a" }] }, /clients\[0\]/],
      [{ devMode: "yes" }, /devMode: expected true or false/],
      [{ databaseConfig: { redis: { port: [] } } }, /databaseConfig.redis.port/],
      [{ database: "mysql" }, /database: 'mysql'/],
    ]) {
      const r = await runRtd(["--db", db, "--laravel-config", config(dir, cfg)]);
      assert.notEqual(r.code, 0, JSON.stringify(cfg));
      assert.match(r.stderr, re, JSON.stringify(cfg));
    }
    const r = await runRtd(["--db", db, "--laravel-config", path.join(dir, "missing.json")]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /missing\.json/);
  }));

  it("warns about unknown keys; LARAVEL_ECHO_SERVER_* override the file; --port wins", () => withTempDir(async (dir) => {
    const db = path.join(dir, "x.db");
    const f = config(dir, { port: "http://example:61/", bogus: true, databaseConfig: { redis: { zz: 1 } }, subscribers: { redis: false } });
    // the environment is read after the file: a bad port there is refused
    const bad = await runRtd(["--db", db, "--laravel-config", f], { env: { LARAVEL_ECHO_SERVER_PORT: "x" } });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /LARAVEL_ECHO_SERVER_PORT/);
    const viaVar = await runRtd(["--db", db, "--laravel-config", f], { env: { LARAVEL_ECHO_SERVER_PROTO: "${MY_PROTO}", MY_PROTO: "gopher" } });
    assert.match(viaVar.stderr, /protocol: 'gopher'/);
    // startRtd gives --port and --bind: they win over the file's port 61
    const rtd = await startRtd({ args: ["--laravel-config", f], dir });
    try {
      const r = await fetch(`${rtd.url}/health`);
      assert.equal(r.status, 200);
      assert.match(rtd.stderr, /Unknown key in the Laravel config: ignored \{"key":"bogus"\}/);
      assert.match(rtd.stderr, /"key":"databaseConfig.redis.zz"/);
    } finally {
      await rtd.stop();
    }
  }));
});

