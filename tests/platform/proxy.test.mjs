// --trust-proxy ADDR[,ADDR]: the client's address from a trusted proxy's X-Forwarded-For (the
// right-most address that is not a trusted proxy) or X-Real-IP, for the connections table
// and --max-connections-per-ip; the same headers from any other peer are ignored.
// The tests' clients connect from 127.0.0.1, which plays the proxy.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { connectionRow, request, rtdTest, runRtd, waitConnectionRow } from "./lib.mjs";

const handshake = (rtd, headers) =>
  request({ port: rtd.port, path: "/socket.io/?EIO=4&transport=polling", headers }).then((r) => r.status);

describe("--trust-proxy", () => {
  rtdTest("a trusted proxy's X-Forwarded-For is the client's address: stored, and counted per address", { args: ["--trust-proxy", "10.0.0.1,127.0.0.1", "--max-connections-per-ip", "1"] }, async (ctx) => {
    const { rtd } = ctx;
    const addrOf = async (headers, kind = "websocket") => {
      const s = await ctx.client({ kind, extraHeaders: headers });
      return (await waitConnectionRow(rtd.db, s.id)).remote_addr;
    };
    assert.equal(await addrOf({ "X-Forwarded-For": "203.0.113.7" }), "203.0.113.7");
    // the right-most address that is not a trusted proxy; what the client wrote on the left is not believed
    assert.equal(await addrOf({ "X-Forwarded-For": "198.51.100.1, 203.0.113.8, 10.0.0.1" }, "polling"), "203.0.113.8");
    assert.equal(await addrOf({ "X-Forwarded-For": "2001:DB8::0:1" }), "2001:db8::1");
    assert.equal(await addrOf({ "X-Real-IP": "203.0.113.9" }), "203.0.113.9");
    // not an IP address: ignored (the peer's own address)
    assert.equal(await addrOf({ "X-Forwarded-For": "203.0.113.10, <script>" }), "127.0.0.1");
    // --max-connections-per-ip 1 counts the believed address, not the proxy's
    assert.equal(await handshake(rtd, { "X-Forwarded-For": "203.0.113.7" }), 429, "a second session for 203.0.113.7");
    assert.equal(await handshake(rtd, { "X-Forwarded-For": "203.0.113.7" }), 429);
    assert.equal(await handshake(rtd, { "X-Forwarded-For": "203.0.113.77" }), 200, "another client behind the same proxy");
  });

  rtdTest("an untrusted peer's X-Forwarded-For and X-Real-IP are ignored", { args: ["--trust-proxy", "10.0.0.1", "--max-connections-per-ip", "1"] }, async (ctx) => {
    const { rtd } = ctx;
    const s = await ctx.client({ kind: "websocket", extraHeaders: { "X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8" } });
    assert.equal((await waitConnectionRow(rtd.db, s.id)).remote_addr, "127.0.0.1");
    // a client cannot escape the per-address limit by naming another address
    assert.equal(await handshake(rtd, { "X-Forwarded-For": "203.0.113.99" }), 429);
    assert.equal((await connectionRow(rtd.db, s.id)).remote_addr, "127.0.0.1");
  });

  rtdTest("without --trust-proxy the headers are never believed", { args: ["--max-connections-per-ip", "1"] }, async (ctx) => {
    const s = await ctx.client({ kind: "polling", extraHeaders: { "X-Forwarded-For": "203.0.113.7" } });
    assert.equal((await waitConnectionRow(ctx.rtd.db, s.id)).remote_addr, "127.0.0.1");
    assert.equal(await handshake(ctx.rtd, { "X-Forwarded-For": "203.0.113.98" }), 429);
  });

  rtdTest("--trust-proxy takes IP addresses only", { start: false }, async () => {
    for (const bad of ["localhost", "127.0.0.1,", "10.0.0.0/8", ""]) {
      const r = await runRtd(["--trust-proxy", bad, "--port", "0"]);
      assert.equal(r.code, 2, `--trust-proxy ${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /trust-proxy/);
    }
  });
});
