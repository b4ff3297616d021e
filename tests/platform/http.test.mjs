// What rtd serves besides Socket.IO: the browser client (--client-js), the test page
// (--static-dir), and the --backup command.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import {
  CLIENT_JS,
  STATIC_DIR,
  TEST_PG,
  count,
  emitAck,
  httpGet,
  launchChromium,
  query,
  rtdTest,
  runRtd,
  tempDir,
  waitConnectionRow,
} from "./lib.mjs";

describe("--client-js", () => {
  rtdTest("serves the file at /socket.io/socket.io.js", { args: ["--client-js", CLIENT_JS] }, async (ctx) => {
    const res = await httpGet(ctx.rtd, "/socket.io/socket.io.js");
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^application\/javascript\b/);
    assert.ok(res.body.equals(readFileSync(CLIENT_JS)), "the file's exact bytes");
    // Socket.IO itself is still served under /socket.io/
    const s = await ctx.client({ kind: "polling" });
    assert.ok(s.connected);
  });

  rtdTest("without --client-js, nothing is served there", async (ctx) => {
    const res = await httpGet(ctx.rtd, "/socket.io/socket.io.js");
    assert.notEqual(res.status, 200);
  });
});

describe("the test page", () => {
  rtdTest("GET / and /test.html serve static/test.html", { args: ["--static-dir", STATIC_DIR] }, async (ctx) => {
    const page = readFileSync(path.join(STATIC_DIR, "test.html"));
    for (const p of ["/", "/test.html"]) {
      const res = await httpGet(ctx.rtd, p);
      assert.equal(res.status, 200, p);
      assert.match(String(res.headers["content-type"]), /^text\/html\b/, p);
      assert.ok(res.body.equals(page), `${p} is test.html`);
    }
  });

  rtdTest(
    "the page works in Chromium: connect, identify as web, send; the rows are there",
    { args: ["--static-dir", STATIC_DIR, "--client-js", CLIENT_JS], timeout: 60000 },
    async (ctx) => {
      const { rtd } = ctx;
      const browser = await launchChromium();
      try {
        // a Node client watches what the page does
        const watcher = await ctx.client({ kind: "websocket" });
        const page = await browser.newPage();
        const errors = [];
        page.on("pageerror", (e) => errors.push(e.message));
        await page.goto(`${rtd.url}/`, { timeout: 15000 });
        await page.waitForFunction(() => typeof window.io === "function", null, { timeout: 10000 });
        await page.click("#connect");
        await page.waitForSelector("#status.on", { timeout: 10000 });
        const [joined] = await watcher.got.joined.next();
        const pageId = joined.socketId;
        await page.fill("#userId", "browser-user");
        await page.fill("#platform", "web");
        await page.click("#identify");
        await waitConnectionRow(rtd.db, pageId, (r) => r.platform === "web" && r.user_id === "browser-user", "identified from the page");
        await page.fill("#sender", "Browser");
        await page.fill("#text", "hello from chromium");
        await page.click("#send");
        const [[m]] = await watcher.got.messages.waitCount(1);
        assert.equal(m.socketId, pageId);
        assert.equal(m.sender, "Browser");
        assert.equal(m.text, "hello from chromium");
        assert.equal(m.platform, "web");
        // the page shows it too
        await page.waitForFunction(() => document.querySelector("#messages").textContent.includes("hello from chromium"), null, { timeout: 10000 });
        const [row] = await query(rtd.db, `SELECT sender, message_text, platform FROM messages WHERE id = ${m.id}`);
        assert.deepEqual(row, { sender: "Browser", message_text: "hello from chromium", platform: "web" });
        assert.deepEqual(errors, [], "no script errors on the page");
        await page.close();
        await watcher.got.left.next();
        await waitConnectionRow(rtd.db, pageId, (r) => r.status === "disconnected", "closed when the page closed");
      } finally {
        await browser.close();
      }
    },
  );
});

describe("--backup", () => {
  rtdTest("copies the database while rtd runs: integrity ok, the rows are there", { args: ["--rate-limit", "0"], skip: TEST_PG && "SQLite only (pg.test.mjs checks the PostgreSQL refusal)" }, async (ctx) => {
    const { rtd } = ctx;
    const a = await ctx.identified("websocket", { userId: "a", platform: "flutter", appVersion: "1" });
    const b = await ctx.identified("polling", { userId: "b", platform: "laravel", appVersion: "1" });
    const sent = [];
    for (let i = 0; i < 40; i++) sent.push((await emitAck(i % 2 ? a : b, "send-message", { sender: "s", text: `message ${i}` })).id);
    await waitConnectionRow(rtd.db, b.id, (r) => r.platform === "laravel");

    const dest = path.join(tempDir("rtd-backup-"), "copy.db");
    // messages keep coming during the backup
    const during = Promise.all(Array.from({ length: 20 }, (_, i) => emitAck(a, "send-message", { sender: "s", text: `during ${i}` })));
    const r = await runRtd(["--db", rtd.db, "--backup", dest]);
    await during;
    assert.equal(r.code, 0, `rtd --backup: ${r.stderr}`);
    assert.deepEqual(await query(dest, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
    const ids = new Set((await query(dest, "SELECT id FROM messages")).map((x) => x.id));
    for (const id of sent) assert.ok(ids.has(id), `message ${id} is in the copy`);
    const conns = await query(dest, "SELECT socket_id, platform, user_id FROM connections ORDER BY id");
    assert.deepEqual(conns, [
      { socket_id: a.id, platform: "flutter", user_id: "a" },
      { socket_id: b.id, platform: "laravel", user_id: "b" },
    ]);
    assert.equal(await count(dest, "messages", "message_text LIKE 'message %'"), 40);
    assert.ok(rtd.exit === null, "the running rtd was not disturbed");
    assert.equal((await emitAck(a, "send-message", { sender: "s", text: "after" })).ok, true);

    // the copy is a whole database, usable on its own: another rtd serves its history
    const other = await ctx.startExtra({ dir: path.dirname(dest), db: dest });
    const c = await ctx.client({ kind: "websocket" }, other);
    const hist = await emitAck(c, "get-messages", { limit: 200 });
    for (const id of sent) assert.ok(hist.some((m) => m.id === id), `message ${id} in the copy's history`);
  });

  rtdTest("--backup to a path that cannot be written fails with a message and status 1", async (ctx) => {
    const r = await runRtd(["--db", ctx.rtd.db, "--backup", "/nonexistent-dir/copy.db"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^rtd: backup failed: /m);
  });
});
