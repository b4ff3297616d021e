// Engine.IO v4 over WebSocket, by hand: the WebSocket-only handshake, messages, heartbeat, and
// the upgrade from long-polling (probe, noop, upgrade packet) with its error cases.

import assert from "node:assert/strict";
import { Polling, decodePayload, eioPath } from "./lib/http.mjs";
import { OP, RawWs, eioWebSocket, frameSummary } from "./lib/rawws.mjs";
import { rtdOnly, serverSuite } from "./lib/server.mjs";
import { ERR, MODES, assertEioError, assertOpenData, assertSessionGone } from "./lib/eio.mjs";

// The server closed the session: a close frame without a status code (what the reference sends
// when it closes a session), then the TCP connection ends once the close is answered.
async function assertServerClose(ws, what = "") {
  const c = await ws.waitClose(3000);
  assert.equal(c.code, null, `${what}: close frame without a status code (got ${c.code} ${c.reason})`);
  ws.sendClose();
  await ws.waitEnd(3000);
  return c;
}

for (const mode of MODES) {
  serverSuite(`Engine.IO WebSocket (${mode.name} mode, ${mode.base})`, { engineOnly: mode.engineOnly }, (ctx) => {
    const port = () => ctx.server.port;
    const q = (query) => eioPath(mode.base, query);
    const wsSession = async (t, opts) => {
      const s = await eioWebSocket(port(), mode.base, opts);
      t.after(() => s.ws.destroy());
      return s;
    };
    // In Socket.IO mode, connects "/" over ws so that connectTimeout does not interfere.
    const sioConnect = async (ws) => {
      if (mode.engineOnly) return;
      ws.text("40");
      assert.match(await ws.nextText(), /^40\{"sid":/);
      assert.equal(await ws.nextText(), '42["auth",{}]');
    };

    ctx.test("handshake: 101 with a valid Sec-WebSocket-Accept, then the open packet (upgrades [])", async (t) => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket" }) });
      assert.equal(r.status, 101);
      assert.ok(r.ws, "Sec-WebSocket-Accept checked by the client");
      t.after(() => r.ws.destroy());
      assert.equal(String(r.headers.upgrade).toLowerCase(), "websocket");
      assert.match(String(r.headers.connection), /upgrade/i);
      const f = await r.ws.nextFrame();
      assert.equal(f.opcode, OP.TEXT);
      assert.equal(f.fin, true);
      assert.equal(f.masked, false, "server frames are not masked");
      assert.equal(f.rsv, 0);
      const text = f.payload.toString();
      assert.equal(text[0], "0");
      assertOpenData(JSON.parse(text.slice(1)), []);
    });

    ctx.test("heartbeat: pings every pingInterval, answered pongs keep the session", async (t) => {
      const { ws } = await wsSession(t, { autoPong: false });
      await sioConnect(ws);
      const start = Date.now();
      for (let i = 0; i < 3; i++) {
        const text = await ws.nextText(2000);
        assert.equal(text, "2");
        ws.text("3");
      }
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 500 && elapsed < 3000, `3 pings in ${elapsed} ms with a pingInterval of 300 ms`);
      assert.equal(ws.ended, false);
    });

    ctx.test("heartbeat: no pong within pingTimeout closes the session", async (t) => {
      const { ws } = await wsSession(t, { autoPong: false });
      await sioConnect(ws);
      assert.equal(await ws.nextText(2000), "2");
      const start = Date.now();
      await assertServerClose(ws, "ping timeout");
      const waited = Date.now() - start;
      assert.ok(waited >= 100 && waited < 1500, `closed ${waited} ms after the ping (pingTimeout is 200 ms)`);
    });

    ctx.test("upgrade: 2probe → 3probe, the pending GET gets a noop, 5 completes, messages go over WebSocket", async (t) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      if (!mode.engineOnly) {
        await p.send("40");
        const got = [];
        while (got.length < 2) got.push(...(await p.receive()));
      }
      const pending = p.startGet();
      await pending.sent;
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.eioAutoPong = true;
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      const released = await pending.response;
      assert.equal(released.status, 200);
      assert.deepEqual(decodePayload(released.text).filter((x) => x !== "2"), ["6"]);
      ws.text("5");
      if (mode.engineOnly) {
        ws.text("4over websocket");
        assert.equal(await ws.nextText(), "4over websocket");
        ws.binary(Buffer.from([9, 8, 7]));
        const m = await ws.nextMessage();
        assert.equal(m.opcode, OP.BINARY);
        assert.deepEqual([...m.data], [9, 8, 7]);
      } else {
        ws.text('42["message","over websocket"]');
        assert.equal(await ws.nextText(), '42["message-back","over websocket"]');
      }
      // polling is over for this session
      await assertEioError(p.get(), ERR.BAD_REQUEST, "GET after the upgrade");
      await assertEioError(p.post("6"), ERR.BAD_REQUEST, "POST after the upgrade");
    });

    ctx.test("upgrade: a GET during the probe is answered with a noop right away", async (t) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.eioAutoPong = true;
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      const res = await p.get({ timeout: 2000 });
      assert.equal(res.status, 200);
      assert.deepEqual(decodePayload(res.text).filter((x) => x !== "2"), ["6"]);
      ws.text("5");
      ws.text(mode.engineOnly ? "4x" : "40");
      assert.match(await ws.nextText(), mode.engineOnly ? /^4x$/ : /^40\{"sid":/);
    });

    ctx.test("upgrade: a second WebSocket with the same sid after the upgrade is closed, the first goes on", async (t) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.eioAutoPong = true;
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      ws.text("5");
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      if (r.ws) {
        t.after(() => r.ws.destroy());
        const c = await r.ws.waitClose(3000);
        assert.deepEqual(c.skipped.map(frameSummary), [], "nothing before the close frame");
        assert.equal(c.code, null, `close frame without a status code (got ${c.code})`);
      } else {
        // the reference switches protocols and then closes; refusing the upgrade is as good
        assert.equal(r.status, 400, `refused upgrade: ${r.statusLine}`);
      }
      ws.text(mode.engineOnly ? "4still" : "40");
      assert.match(await ws.nextText(), mode.engineOnly ? /^4still$/ : /^40\{"sid":/);
    });

    ctx.test("upgrade: a second probe while one is in progress is closed", async (t) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      if (r.ws) {
        // what the reference does: switch protocols, then close without a status code
        t.after(() => r.ws.destroy());
        const c = await r.ws.waitClose(3000);
        assert.deepEqual(c.skipped.map(frameSummary), []);
        assert.equal(c.code, null);
      } else assert.equal(r.status, 400, `refused upgrade: ${r.statusLine}`);
      // the first probe is still good
      ws.eioAutoPong = true;
      ws.text("5");
      ws.text(mode.engineOnly ? "4x" : "40");
      assert.match(await ws.nextText(), mode.engineOnly ? /^4x$/ : /^40\{"sid":/);
    });

    ctx.test("upgrade: anything but a probe on the probing WebSocket closes it; polling goes on", async (t) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.text("4not a probe");
      const c = await ws.waitClose(3000);
      assert.deepEqual(c.skipped.map(frameSummary), []);
      assert.equal(c.code, null, `close frame without a status code (got ${c.code})`);
      await p.send(mode.engineOnly ? "4still polling" : "40");
      const got = await p.receive();
      if (mode.engineOnly) assert.deepEqual(got, ["4still polling"]);
      else assert.match(got[0], /^40\{"sid":/);
    });

    ctx.test("upgrade: the probing WebSocket going away leaves the polling session working", async () => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: p.sid }) });
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      ws.destroy();
      await p.send(mode.engineOnly ? "4still polling" : "40");
      const got = await p.receive();
      if (mode.engineOnly) assert.deepEqual(got, ["4still polling"]);
      else assert.match(got[0], /^40\{"sid":/);
    });

    ctx.test("upgrade with an unknown sid: HTTP 400 with the bare message, no switch", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: "no-such-session" }) });
      assert.equal(r.status, 400);
      assert.equal(r.body.toString(), "Session ID unknown");
    });

    ctx.test("upgrade with an unknown transport: HTTP 400 with the bare message", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "foo" }) });
      assert.equal(r.status, 400);
      assert.equal(r.body.toString(), "Transport unknown");
    });

    ctx.test("upgrade with Sec-WebSocket-Version 12: HTTP 400", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket" }), version: 12 });
      assert.equal(r.status, 400);
    });

    ctx.test("upgrade with an invalid Sec-WebSocket-Key: HTTP 400", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket" }), key: "not-a-key" });
      assert.equal(r.status, 400);
    });

    ctx.test("upgrade without EIO: no Engine.IO session is opened", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ transport: "websocket" }) });
      if (r.status !== 101) {
        assert.equal(r.status, 400);
        return;
      }
      // the reference switches protocols, then writes an HTTP error into the stream and closes
      r.ws.eioAutoPong = false;
      let opened = false;
      try {
        for (;;) {
          const f = await r.ws.nextFrame(2000);
          if (f.opcode === OP.TEXT && f.payload[0] === 0x30) opened = true;
          if (f.opcode === OP.CLOSE) break;
        }
      } catch {
        // the connection ended (or sent bytes that are not a frame)
      }
      r.ws.destroy();
      assert.equal(opened, false, "no open packet");
    });

    ctx.test("rtdOnly: upgrade without EIO is refused with HTTP 400 before switching protocols", rtdOnly(), async () => {
      // the reference answers 101 and then writes "HTTP/1.1 400 ..." into the WebSocket stream
      const r = await RawWs.handshake({ port: port(), path: q({ transport: "websocket" }) });
      r.ws?.destroy();
      assert.equal(r.status, 400);
      assert.equal(r.body.toString(), "Unsupported protocol version");
    });

    ctx.test("rtdOnly: a second WebSocket with the sid of a WebSocket-only session is closed", rtdOnly(), async (t) => {
      // the reference treats it as an upgrade probe and only drops it after upgradeTimeout (10 s)
      const { ws, open } = await wsSession(t);
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 4, transport: "websocket", sid: open.sid }) });
      if (r.ws) {
        t.after(() => r.ws.destroy());
        const c = await r.ws.waitClose(2000);
        assert.deepEqual(c.skipped.map(frameSummary), []);
      } else assert.equal(r.status, 400);
      ws.text(mode.engineOnly ? "4still" : "40");
      assert.match(await ws.nextText(), mode.engineOnly ? /^4still$/ : /^40\{"sid":/);
    });

    if (mode.engineOnly) {
      ctx.test("echo: text messages (with UTF-8) and binary messages come back as they were sent", async (t) => {
        const { ws } = await wsSession(t);
        ws.text("4hello");
        assert.equal(await ws.nextText(), "4hello");
        ws.text("4héllo 😀 日本語");
        assert.equal(await ws.nextText(), "4héllo 😀 日本語");
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        ws.binary(all);
        const m = await ws.nextMessage();
        assert.equal(m.opcode, OP.BINARY);
        assert.ok(m.data.equals(all), "binary comes back raw (no b64 prefix over WebSocket)");
        ws.binary(Buffer.alloc(0));
        const e = await ws.nextMessage();
        assert.equal(e.opcode, OP.BINARY);
        assert.equal(e.data.length, 0);
      });

      ctx.test("a message of 900 000 bytes goes both ways", async (t) => {
        const { ws } = await wsSession(t);
        const big = "4" + "z".repeat(899999);
        ws.text(big);
        assert.equal(await ws.nextText(5000), big);
        const bin = Buffer.alloc(900000, 0xab);
        ws.binary(bin);
        const m = await ws.nextMessage(5000);
        assert.ok(m.data.equals(bin));
      });

      ctx.test("a noop packet is ignored and the session goes on", async (t) => {
        const { ws } = await wsSession(t);
        ws.text("6");
        ws.text("4after noop");
        assert.equal(await ws.nextText(), "4after noop");
      });

      ctx.test("an invalid Engine.IO packet closes the session", async (t) => {
        const { ws, open } = await wsSession(t);
        ws.text("9garbage");
        await assertServerClose(ws, "invalid packet");
        const p = new Polling(port(), mode.base);
        p.sid = open.sid;
        await assertSessionGone(p);
      });

      ctx.test("an empty text frame closes the session", async (t) => {
        const { ws } = await wsSession(t);
        ws.text("");
        await assertServerClose(ws, "empty packet");
      });

      ctx.test('a ping "2" from the client (wrong heartbeat direction in v4) closes the session', async (t) => {
        const { ws } = await wsSession(t);
        ws.text("2");
        await assertServerClose(ws, "client ping");
      });
    }
  });
}
