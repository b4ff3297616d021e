// The Admin UI itself (@socket.io/admin-ui 0.5.1's built ui/dist), served same-origin by rtd at
// /admin/live/ from --static-dir (DIR/admin-live), logged into in headless Chromium with an
// admin made by admin-fcgi --create-admin: it shows this server.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import { RTD_BIN, TESTS_DIR, connectSocket, httpGet, launchChromium, makeClient, rtdTest, startRtd, tempDir } from "./lib.mjs";

const ADMIN_BIN = process.env.ADMIN_BIN ?? path.resolve(path.dirname(RTD_BIN), "../admin-fcgi/admin-fcgi");
const UI_DIST = path.join(TESTS_DIR, "node_modules/@socket.io/admin-ui/ui/dist");

describe("the Admin UI in Chromium", () => {
  rtdTest("served at /admin/live/, logs in, shows the server and the connected clients", { start: false, timeout: 60000 }, async (ctx) => {
    const dir = tempDir();
    const stat = path.join(dir, "static");
    execFileSync("mkdir", ["-p", stat]);
    symlinkSync(UI_DIST, path.join(stat, "admin-live"));
    ctx.rtd = await startRtd({ dir, args: ["--admin-ui", "development", "--static-dir", stat] });
    const { rtd } = ctx;
    execFileSync(ADMIN_BIN, ["--db", rtd.db, "--create-admin", "ops"], { input: "chromium password\n", stdio: ["pipe", "ignore", "ignore"] });
    const index = await httpGet(rtd, "/admin/live/");
    assert.equal(index.status, 200);
    assert.match(String(index.body), /Socket\.IO Admin UI/);
    assert.equal((await httpGet(rtd, "/admin/live/../rtd.db")).status, 404);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems = [];
      browser.on("response", (r) => {
        if (r.status() >= 400 && r.url().startsWith(rtd.url)) problems.push(`${r.status()} ${r.url()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      // two test clients on "/" before the login (the UI then selects "/"): their ids
      // appear on the Sockets page
      const users = [makeClient(rtd), makeClient(rtd, { kind: "polling" })];
      users.forEach((u) => ctx.track(u));
      await Promise.all(users.map((u) => connectSocket(u)));
      await page.goto(`${rtd.url}/admin/live/`, { timeout: 15000, waitUntil: "load" });
      await page.getByLabel("Server URL").fill(rtd.url, { timeout: 15000 });
      await page.getByLabel("Username").fill("ops");
      await page.getByLabel("Password").fill("chromium password");
      await page.getByRole("button", { name: /connect/i }).click();
      await page.goto(`${rtd.url}/admin/live/#/servers`, { timeout: 15000, waitUntil: "load" }).catch(() => {});
      const hostname = execFileSync("hostname", { encoding: "utf8" }).trim();
      await page.getByText(hostname).first().waitFor({ timeout: 15000 });
      await page.getByText(/^\s*healthy\s*$/i).first().waitFor({ timeout: 15000 });
      await page.getByText(/^\s*connected\s*$/i).first().waitFor({ timeout: 15000 });
      await page.goto(`${rtd.url}/admin/live/#/sockets`, { timeout: 15000, waitUntil: "load" }).catch(() => {});
      try {
        for (const u of users) await page.getByText(u.id).first().waitFor({ timeout: 15000 });
      } finally {
        if (process.env.ADMINUI_SHOT) await page.screenshot({ path: process.env.ADMINUI_SHOT });
      }
      if (process.env.ADMINUI_SHOT) await page.screenshot({ path: process.env.ADMINUI_SHOT });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
});
