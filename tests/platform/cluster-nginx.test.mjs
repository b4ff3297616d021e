// Two rtd nodes (--redis) behind Debian's nginx with deploy/nginx/cluster.conf's upstream
// (hash $remote_addr consistent): long-polling clients through nginx stay on one node and
// talk to a client of the other node through Redis; a polling request that reaches the
// wrong node gets Node.js's HTTP 400 {"code":1,"message":"Session ID unknown"}.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import { freePort, HOST } from "../js/lib/server.mjs";
import { emitAck, eventually, rtdTest, sleep, startRtd, tempDir, tryConnect, within } from "./lib.mjs";
import { health, startRedis, waitRedisUp } from "./redis.mjs";

const SLOW = process.env.RTD_VALGRIND ? 4 : 1;

function nginxPath() {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx"]) {
    try {
      execFileSync(p, ["-v"], { stdio: "ignore" });
      return p;
    } catch {}
  }
  throw new Error("nginx is not installed: run scripts/install-deps.sh");
}

// The upstream block of deploy/nginx/cluster.conf with our two ports.
function upstream(ports) {
  const conf = readFileSync(new URL("../../deploy/nginx/cluster.conf", import.meta.url), "utf8");
  const block = conf.match(/^upstream rtd_socket \{[\s\S]*?^\}/m)[0];
  let i = 0;
  return block.replace(/server 127\.0\.0\.1:\d+;/g, () => `server ${HOST}:${ports[i++]};`);
}

async function startNginx(ports) {
  const dir = tempDir("rtd-nginx-");
  mkdirSync(path.join(dir, "tmp"));
  const port = await freePort();
  const user = process.getuid() === 0 ? "user root root;" : "";
  writeFileSync(path.join(dir, "nginx.conf"), `${user}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    ${upstream(ports)}
    server {
        listen ${HOST}:${port};
        location /socket.io/ {
            proxy_pass http://rtd_socket;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }
    }
}
`);
  const proc = spawn(nginxPath(), ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")],
    { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (log += d));
  const exited = new Promise((r) => proc.once("exit", r));
  const end = Date.now() + 10000;
  while (Date.now() < end && proc.exitCode === null) {
    if (await tryConnect(port)) break;
    await sleep(20);
  }
  if (proc.exitCode !== null) throw new Error(`nginx did not start: ${log}${readFileSync(path.join(dir, "error.log"), "utf8")}`);
  return {
    url: `http://${HOST}:${port}`,
    async stop() {
      proc.kill("SIGTERM");
      await within(exited, 5000, "nginx to exit");
    },
  };
}

describe("cluster behind nginx (deploy/nginx/cluster.conf)", () => {
  rtdTest("polling clients stay on one node; the wrong node says Session ID unknown", { start: false, timeout: 90000 * SLOW }, async (ctx) => {
    const redis = await startRedis();
    let nginx;
    try {
      const args = ["--redis", redis.url];
      ctx.rtd = await startRtd({ args, readyTimeout: 10000 * SLOW });
      const b = await ctx.startExtra({ args, readyTimeout: 10000 * SLOW });
      await waitRedisUp(ctx.rtd);
      await waitRedisUp(b);
      nginx = await startNginx([ctx.rtd.port, b.port]);
      const front = { url: nginx.url };
      const p = [];
      for (let i = 0; i < 3; i++) p.push(await ctx.client({ kind: "polling" }, front));
      const viaWs = await ctx.client({ kind: "websocket" }, front);
      const conn = async () => [(await (await fetch(`${ctx.rtd.url}/health`)).json()).connections,
        (await (await fetch(`${b.url}/health`)).json()).connections];
      const [ca, cb] = await conn();
      assert.ok((ca === 4 && cb === 0) || (ca === 0 && cb === 4), `one node holds them all: ${ca}/${cb}`);
      const other = ca === 4 ? b : ctx.rtd;
      const direct = await ctx.client({ kind: "polling" }, other);
      for (let i = 0; i < p.length; i++) await emitAck(p[i], "send-message", { sender: `p${i}`, text: `m${i}` });
      for (const c of [...p, viaWs, direct]) await c.got.messages.waitCount(3, 10000 * SLOW);
      for (const c of [...p, viaWs, direct])
        assert.deepEqual(c.got.messages.items.map(([m]) => m.text).sort(), ["m0", "m1", "m2"]);
      // a session's request on the other node
      const hs = await fetch(`${nginx.url}/socket.io/?EIO=4&transport=polling`);
      const body = await hs.text();
      const sid = JSON.parse(body.slice(1)).sid;
      assert.equal(sid.length, 20);
      const wrong = await fetch(`${other.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.equal(wrong.status, 400);
      assert.deepEqual(await wrong.json(), { code: 1, message: "Session ID unknown" });
      const h = await health(other);
      assert.equal(h.dropped, 0);
    } finally {
      ctx.closeClients();
      await nginx?.stop();
      await redis.stop();
    }
  });
});
