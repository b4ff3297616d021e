// Helpers of the cluster tests: Debian's redis-server on a free loopback port in a temporary
// folder (no persistence), a Node.js socket.io 4.8 node with @socket.io/redis-adapter 8.3.0
// on it, and rtd nodes started with --redis. Every process is started and stopped by pid.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { freePort, HOST } from "../js/lib/server.mjs";
import { sleep, tempDir, tryConnect, within } from "./lib.mjs";

// redis-server must be installed (scripts/install-deps.sh --test): a missing one fails the
// cluster tests rather than skipping them, so that CI cannot pass without them.
export function redisServerPath() {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("redis-server is not installed: run scripts/install-deps.sh --test");
  }
}

export class Redis {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.proc = null;
    this.log = "";
  }

  get url() {
    return `redis://${HOST}:${this.port}`;
  }

  async start() {
    const bin = redisServerPath();
    this.proc = spawn(bin, ["--port", String(this.port), "--bind", HOST, "--save", "", "--appendonly", "no",
      "--dir", this.dir], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout.setEncoding("utf8").on("data", (d) => (this.log = (this.log + d).slice(-20000)));
    this.proc.stderr.setEncoding("utf8").on("data", (d) => (this.log = (this.log + d).slice(-20000)));
    this.exited = new Promise((resolve) => this.proc.once("exit", resolve));
    const end = Date.now() + 10000;
    while (Date.now() < end) {
      if (await tryConnect(this.port)) return this;
      await sleep(20);
    }
    throw new Error(`redis-server did not start on ${this.port}\n${this.log}`);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGKILL");
    await within(this.exited, 5000, "redis-server to exit");
    this.proc = null;
  }

  // A command through a short-lived client, e.g. ["PUBSUB", "NUMSUB", "socket.io-request#/#"].
  async command(args) {
    const c = createClient({ url: this.url });
    await c.connect();
    try {
      return await c.sendCommand(args);
    } finally {
      await c.quit();
    }
  }
}

export async function startRedis() {
  return new Redis(await freePort(), tempDir("rtd-redis-")).start();
}

// A Node.js socket.io node with the classic adapter; opts go to createAdapter.
export async function startNodeNode(redis, opts = {}) {
  const pub = createClient({ url: redis.url });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(pub, sub, { requestsTimeout: 3000, ...opts }) });
  await new Promise((r) => http.listen(0, HOST, r));
  return {
    io,
    pub,
    url: `http://${HOST}:${http.address().port}`,
    async close() {
      await new Promise((r) => io.close(r));
      for (const c of [sub, pub]) { // sub first: no request may arrive once pub is gone
        try {
          if (c.isOpen) await c.quit();
        } catch {}
      }
    },
  };
}

// Waits until an rtd node's /health says its Redis link is up.
export async function waitRedisUp(rtd, what = "rtd's Redis link to be up", timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const res = await fetch(`${rtd.url}/health`);
      last = await res.json();
      if (last.redis?.state === "up") return last.redis;
    } catch {}
    await sleep(50);
  }
  assert.fail(`${what}: last /health ${JSON.stringify(last)}`);
}

export async function health(rtd) {
  const res = await fetch(`${rtd.url}/health`);
  return (await res.json()).redis;
}
