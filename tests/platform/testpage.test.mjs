// The test page (static/test.html, served by rtd at /) in headless Chromium: after "Connect"
// with the default transports (polling, then the upgrade), the status follows the engine's
// upgrade and shows "connected (websocket)", and loading the page fails no request (no 404
// for a favicon or anything else, no console error).

import assert from "node:assert/strict";
import { describe } from "node:test";
import { CLIENT_JS, STATIC_DIR, httpGet, launchChromium, rtdTest, sleep } from "./lib.mjs";

describe("the test page in Chromium", () => {
  rtdTest(
    "shows the transport after the upgrade, and no request fails",
    { args: ["--static-dir", STATIC_DIR, "--client-js", CLIENT_JS], timeout: 60000 },
    async (ctx) => {
      const { rtd } = ctx;
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const problems = [];
        browser.on("response", (r) => {
          if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
        });
        browser.on("requestfailed", (r) => {
          // the long-poll the client aborts when it upgrades is not a failure of the page
          if (!r.url().includes("/socket.io/?")) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
        });
        page.on("console", (m) => {
          // a 404 the page itself did not ask for (the favicon) shows only here
          if (m.type() === "error") problems.push(`console error: ${m.text()} (${m.location().url})`);
        });
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

        await page.goto(`${rtd.url}/`, { timeout: 15000, waitUntil: "load" });
        await page.waitForFunction(() => typeof window.io === "function", null, { timeout: 10000 });
        await page.click("#connect");
        await page.waitForSelector("#status.on", { timeout: 10000 });
        // the engine really upgraded (the page's socket is a global of its script)
        await page.waitForFunction(() => socket.io.engine.transport.name === "websocket", null, { timeout: 15000 });
        await page.waitForFunction(() => document.querySelector("#status").textContent === "connected (websocket)",
          null, { timeout: 5000 }).catch(async () => {
          assert.fail(`the status shows ${JSON.stringify(await page.textContent("#status"))} after the upgrade`);
        });
        // the page names its icon, rtd serves it; give the browser the time to fetch it
        const icon = await page.$eval("link[rel~=icon]", (l) => l.href).catch(() => null);
        assert.ok(icon, "the page names an icon (else the browser asks for /favicon.ico)");
        const res = await httpGet(rtd, new URL(icon).pathname);
        assert.equal(res.status, 200, `GET ${icon}`);
        await sleep(1000);
        assert.deepEqual(problems, [], "no failed request, no console error");
        await page.close();
      } finally {
        await browser.close();
      }
    },
  );
});
