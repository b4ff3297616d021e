// The README's Laravel section, run as written: its laravel-echo-server.json starts rtd with
// the command line shown (no unknown key), Laravel's own RedisBroadcaster publishing with the
// prefix the section names reaches Laravel Echo 2.5 on socket.io-client 4.8 and 2.5, and the
// pusher SDK configured from the section's PUSHER_* values broadcasts to them and reads the
// channel back with a signed GET. A README example that drifts from rtd fails here.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import Echo from "laravel-echo";
import Pusher from "pusher";
import io2 from "sio2";
import { io as io4 } from "socket.io-client";
import { eventually, sleep, startRtd, TESTS_DIR, withTempDir } from "./lib.mjs";
import { startRedis } from "./redis.mjs";

const README = path.resolve(TESTS_DIR, "../README.md");

// The section from its heading to the next "## " heading, and its fenced blocks by language.
function section() {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf("## Laravel: in place of laravel-echo-server\n");
  assert.ok(start >= 0, "the README has its Laravel section");
  const end = text.indexOf("\n## ", start + 10);
  const body = text.slice(start, end < 0 ? undefined : end);
  const blocks = [...body.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
  return { body, blocks };
}

function envOf(block) {
  const env = {};
  for (const line of block.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

function php(args) {
  return new Promise((resolve, reject) =>
    execFile("php", args, { timeout: 20000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
}

describe("README: Laravel", () => {
  it("the config file, the command, the redis and pusher drivers and Echo work as written", () => withTempDir(async (dir) => {
    const { blocks } = section();
    const json = blocks.find((b) => b.lang === "json");
    assert.ok(json, "a laravel-echo-server.json example");
    const cfg = JSON.parse(json.text);
    const cmd = blocks.find((b) => b.lang === "sh" && /rtd --laravel-config/.test(b.text));
    assert.ok(cmd, "the rtd command line");
    // the command's flags, the file name replaced by ours
    const words = cmd.text.trim().split(/\s+/).slice(1);
    const file = path.join(dir, "laravel-echo-server.json");
    writeFileSync(file, json.text);
    const args = words.map((w, i) => (words[i - 1] === "--laravel-config" ? file : w));
    const pusherEnv = envOf(blocks.find((b) => b.lang === "ini" && /PUSHER_APP_ID/.test(b.text)).text);
    const client = cfg.clients.find((c) => c.secret);
    assert.ok(client, "a clients entry with a secret");
    assert.deepEqual([pusherEnv.PUSHER_APP_ID, pusherEnv.PUSHER_APP_KEY, pusherEnv.PUSHER_APP_SECRET],
      [client.appId, client.key, client.secret], "the .env's PUSHER_* are the clients entry");
    assert.equal(pusherEnv.PUSHER_PORT, String(cfg.port));

    const redis = await startRedis();
    // startRtd's --port and --bind win over the file's; Redis's port comes from the variable
    const rtd = await startRtd({ args, dir, env: { LARAVEL_ECHO_SERVER_REDIS_PORT: String(redis.port) } });
    const echos = [];
    try {
      assert.deepEqual(rtd.logLines(/Unknown key|Bad --laravel-config/), [], "every key of the example is known");
      await eventually(() => assert.match(rtd.stderr, /Laravel Redis subscriber.*"state":"up"/), { timeout: 15000, what: "the Redis subscriber" });
      const got = [];
      for (const [name, client] of [["4.x", io4], ["2.x", io2]]) {
        const e = new Echo({ broadcaster: "socket.io", host: rtd.url, client, transports: ["websocket"], forceNew: true });
        echos.push(e);
        e.channel("orders").listen("OrderShipped", (ev) => got.push([name, ev]));
      }
      const channelUrl = `${rtd.url}/apps/${client.appId}/channels/orders?auth_key=${client.key}`;
      await eventually(async () => assert.equal((await (await fetch(channelUrl)).json()).subscription_count, 2),
        { timeout: 10000, what: "both Echo clients subscribed" });

      // the redis driver: Laravel's RedisBroadcaster with the prefix of Laravel 6 to 12 for
      // APP_NAME=Laravel, which the example's keyPrefix must match
      await php([path.join(TESTS_DIR, "laravel/publish.php"), "127.0.0.1", String(redis.port),
        "laravel_database_", "orders", "App\\Events\\OrderShipped", '{"order":{"id":1}}']);
      await eventually(() => assert.equal(got.length, 2), { timeout: 10000, what: "the Redis event on both clients" });
      assert.deepEqual(got.map((g) => g[1].order), [{ id: 1 }, { id: 1 }]);

      // the pusher driver's settings, through the pusher SDK (what Laravel's driver wraps)
      const u = new URL(rtd.url);
      const pusher = new Pusher({ appId: pusherEnv.PUSHER_APP_ID, key: pusherEnv.PUSHER_APP_KEY,
        secret: pusherEnv.PUSHER_APP_SECRET, host: u.hostname, port: u.port, useTLS: pusherEnv.PUSHER_SCHEME === "https" });
      const r = await pusher.trigger("orders", "App\\Events\\OrderShipped", { order: { id: 2 } });
      assert.equal(r.status, 200);
      await eventually(() => assert.equal(got.length, 4), { timeout: 10000, what: "the Pusher event on both clients" });
      assert.deepEqual(got.slice(2).map((g) => g[1].order), [{ id: 2 }, { id: 2 }]);
      const s = await pusher.get({ path: "/channels/orders" });
      assert.equal(s.status, 200);
      assert.equal((await s.json()).subscription_count, 2);
      await sleep(100);
    } finally {
      for (const e of echos) e.disconnect();
      await rtd.stop();
      await redis.stop();
    }
  }));
});
