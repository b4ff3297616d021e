// Engine.IO v4 over HTTP long-polling, by hand: handshake, errors, payload encoding, the
// session rules (one GET at a time, close packets, heartbeat) and CORS. Both modes of the
// conformance server: plain Engine.IO (/engine.io/, echo) and Socket.IO (/socket.io/).

import assert from "node:assert/strict";
import { Polling, SEP, decodePayload, eioPath, request } from "./lib/http.mjs";
import { eioWebSocket } from "./lib/rawws.mjs";
import { serverSuite } from "./lib/server.mjs";
import { ERR, MODES, assertEioError, assertOpenData, assertSessionGone, assertTextPlain } from "./lib/eio.mjs";
import { waitUntil } from "./lib/util.mjs";

const ORIGIN = "http://app.example.com";

for (const mode of MODES) {
  serverSuite(`Engine.IO long-polling (${mode.name} mode, ${mode.base})`, { engineOnly: mode.engineOnly }, (ctx) => {
    const port = () => ctx.server.port;
    const q = (query) => eioPath(mode.base, query);
    // A new session. In Socket.IO mode, connectNsp also connects "/" (so that connectTimeout
    // does not end a session that lives longer than 1000 ms) and reads the server's answer.
    const newSession = async ({ connectNsp = false } = {}) => {
      const p = new Polling(port(), mode.base);
      await p.handshake();
      if (connectNsp && !mode.engineOnly) {
        await p.send("40");
        const got = [];
        while (got.length < 2) got.push(...(await p.receive()));
        assert.match(got[0], /^40\{"sid":/);
      }
      return p;
    };

    // Starts a GET and makes sure the server holds it: the request has been sent, and a POST
    // of a noop packet (no effect on the session) sent after it has been answered.
    const heldGet = async (p) => {
      const g = p.startGet();
      await g.sent;
      const res = await p.post("6");
      assert.equal(res.status, 200, `noop POST: ${res.status} ${res.text}`);
      return g;
    };

    ctx.test("handshake: 200, text/plain, one open packet with the configured fields", async () => {
      const res = await request({ port: port(), path: q({ EIO: 4, transport: "polling" }) });
      assert.equal(res.status, 200);
      assertTextPlain(res);
      const packets = decodePayload(res.text);
      assert.equal(packets.length, 1, `one packet, got ${JSON.stringify(res.text)}`);
      assert.equal(packets[0][0], "0");
      assertOpenData(JSON.parse(packets[0].slice(1)), ["websocket"]);
    });

    ctx.test("handshake: every session gets its own sid", async () => {
      const sids = new Set();
      for (let i = 0; i < 5; i++) sids.add((await newSession()).sid);
      assert.equal(sids.size, 5);
    });

    ctx.test("handshake: extra query parameters (t, b64, custom) are accepted", async () => {
      const res = await request({ port: port(), path: q({ EIO: 4, transport: "polling", t: "NdFx3b1", b64: 1, foo: "bar" }) });
      assert.equal(res.status, 200);
      assertOpenData(JSON.parse(res.text.slice(1)), ["websocket"]);
    });

    const errorCases = [
      ["unknown transport", "GET", { EIO: 4, transport: "foo" }, ERR.UNKNOWN_TRANSPORT],
      ["missing transport", "GET", { EIO: 4 }, ERR.UNKNOWN_TRANSPORT],
      ["unknown transport is checked before the protocol version", "GET", { EIO: 9, transport: "foo" }, ERR.UNKNOWN_TRANSPORT],
      ["unknown sid (GET)", "GET", { EIO: 4, transport: "polling", sid: "no-such-session" }, ERR.UNKNOWN_SID],
      ["unknown sid (POST)", "POST", { EIO: 4, transport: "polling", sid: "no-such-session" }, ERR.UNKNOWN_SID],
      ["POST handshake", "POST", { EIO: 4, transport: "polling" }, ERR.BAD_HANDSHAKE_METHOD],
      ["PUT handshake", "PUT", { EIO: 4, transport: "polling" }, ERR.BAD_HANDSHAKE_METHOD],
      ["missing EIO", "GET", { transport: "polling" }, ERR.UNSUPPORTED_PROTOCOL_VERSION],
      ["EIO=5", "GET", { EIO: 5, transport: "polling" }, ERR.UNSUPPORTED_PROTOCOL_VERSION],
      ["EIO=abc", "GET", { EIO: "abc", transport: "polling" }, ERR.UNSUPPORTED_PROTOCOL_VERSION],
      ["transport=websocket without an Upgrade", "GET", { EIO: 4, transport: "websocket" }, ERR.BAD_REQUEST],
    ];
    for (const [what, method, query, err] of errorCases) {
      ctx.test(`HTTP 400 {"code":${err.code},"message":"${err.message}"} for ${what}`, async () => {
        const body = method === "GET" ? undefined : "4hello";
        await assertEioError(request({ port: port(), method, path: q(query), body }), err, what);
      });
    }

    ctx.test('polling with the sid of a WebSocket session: 400 {"code":3,"message":"Bad request"}', async (t) => {
      const { ws, open } = await eioWebSocket(port(), mode.base);
      t.after(() => ws.destroy());
      await assertEioError(request({ port: port(), path: q({ EIO: 4, transport: "polling", sid: open.sid }) }), ERR.BAD_REQUEST);
      await assertEioError(
        request({ port: port(), method: "POST", body: "40", path: q({ EIO: 4, transport: "polling", sid: open.sid }) }),
        ERR.BAD_REQUEST,
      );
    });

    ctx.test('a POST is answered 200 "ok"', async () => {
      const p = await newSession();
      const res = await p.post("40"); // a Socket.IO CONNECT, or an echoed "0" in engine-only mode
      assert.equal(res.status, 200);
      assert.equal(res.text, "ok");
    });

    ctx.test('a second GET while one is pending: 400, the first gets a close packet "1", the session ends', async () => {
      const p = await newSession();
      const first = await heldGet(p);
      const second = await p.get();
      assert.equal(second.status, 400, "the overlapping GET is refused");
      const res = await first.response;
      assert.equal(res.status, 200);
      assert.deepEqual(decodePayload(res.text), ["1"]);
      await assertSessionGone(p);
    });

    ctx.test("an aborted (cancelled) pending GET ends the session", async () => {
      const p = await newSession();
      const g = await heldGet(p); // the GET is pending now
      g.abort();
      await waitUntil(
        async () => {
          const res = await p.post("6");
          return res.status === 400 ? res : null;
        },
        { timeout: 3000, what: "the session to be closed after the aborted GET" },
      ).then((res) => assertEioError(res, ERR.UNKNOWN_SID));
    });

    for (const [what, body] of [
      ["an unknown packet type", "9"],
      ["an empty body", ""],
      ["garbage", "xyz"],
      ["an invalid packet after a separator", `6${SEP}9`],
    ]) {
      ctx.test(`an invalid packet (${what}) closes the session: the pending GET gets "1"`, async () => {
        const p = await newSession();
        const g = await heldGet(p);
        await p.post(body).catch(() => {}); // its answer is not part of the contract
        const res = await g.response;
        assert.equal(res.status, 200);
        assert.deepEqual(decodePayload(res.text), ["1"]);
        await assertSessionGone(p);
      });
    }

    ctx.test('a client close packet "1": 200 "ok", the pending GET gets a noop "6", the session ends', async () => {
      const p = await newSession();
      const g = await heldGet(p);
      const res = await p.post("1");
      assert.equal(res.status, 200);
      assert.equal(res.text, "ok");
      const got = await g.response;
      assert.equal(got.status, 200);
      assert.deepEqual(decodePayload(got.text), ["6"]);
      await assertSessionGone(p);
    });

    ctx.test('a client close packet "1" without a pending GET ends the session', async () => {
      const p = await newSession();
      const res = await p.post("1");
      assert.equal(res.status, 200);
      await assertSessionGone(p);
    });

    ctx.test("heartbeat: the server pings after pingInterval, a pong keeps the session", async () => {
      const start = Date.now();
      const p = await newSession({ connectNsp: true });
      const first = await p.get();
      assertTextPlain(first);
      assert.deepEqual(decodePayload(first.text), ["2"]);
      const t1 = Date.now() - start;
      assert.ok(t1 >= 200 && t1 < 2000, `first ping after ${t1} ms (pingInterval is 300 ms)`);
      assert.equal((await p.post("3")).text, "ok");
      assert.deepEqual(await p.getPackets(), ["2"]);
      assert.equal((await p.post("3")).text, "ok");
      const res = await p.post("6");
      assert.equal(res.status, 200, "the session is still there");
    });

    ctx.test('heartbeat: no pong within pingTimeout closes the session (pending GET gets "1")', async () => {
      const p = await newSession({ connectNsp: true });
      assert.deepEqual(await p.getPackets(), ["2"]);
      const start = Date.now();
      const res = await p.get({ timeout: 3000 });
      const waited = Date.now() - start;
      assert.deepEqual(decodePayload(res.text), ["1"]);
      assert.ok(waited >= 100 && waited < 1500, `closed ${waited} ms after the ping (pingTimeout is 200 ms)`);
      await assertSessionGone(p);
    });

    ctx.test('a ping "2" from the client (wrong heartbeat direction in v4) closes the session', async () => {
      const p = await newSession();
      const g = await heldGet(p);
      await p.post("2").catch(() => {});
      const res = await g.response;
      assert.deepEqual(decodePayload(res.text), ["1"]);
      await assertSessionGone(p);
    });

    ctx.test("a binary (application/octet-stream) POST is refused with 400 and ends the session", async () => {
      const p = await newSession();
      const res = await p.post(Buffer.from([4, 1, 2, 3]), { headers: { "Content-Type": "application/octet-stream" } });
      assert.equal(res.status, 400);
      await assertSessionGone(p);
    });

    ctx.test("a POST body over maxPayload (1 000 001 bytes) is refused with 413", async () => {
      const p = await newSession();
      const res = await p.post("4" + "x".repeat(1000000), { timeout: 10000 }).catch((err) => ({ status: `error ${err.code || err.message}` }));
      assert.equal(res.status, 413);
    });

    ctx.test("CORS: preflight OPTIONS is answered 204 with the Access-Control-Allow-* headers", async () => {
      const res = await request({
        port: port(),
        method: "OPTIONS",
        path: q({ EIO: 4, transport: "polling" }),
        headers: { Origin: ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-custom" },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers["access-control-allow-origin"], ORIGIN);
      assert.equal(res.headers["access-control-allow-credentials"], "true");
      const methods = String(res.headers["access-control-allow-methods"]).split(/\s*,\s*/);
      for (const m of ["GET", "POST"]) assert.ok(methods.includes(m), `Access-Control-Allow-Methods ${methods} has ${m}`);
      assert.deepEqual(String(res.headers["access-control-allow-headers"]).toLowerCase().split(/\s*,\s*/).sort(), ["content-type", "x-custom"]);
      assert.equal(res.body.length, 0);
    });

    ctx.test("CORS: handshake, GET, POST and error responses reflect the Origin with credentials", async () => {
      const h = { Origin: ORIGIN };
      const check = (res, what) => {
        assert.equal(res.headers["access-control-allow-origin"], ORIGIN, `${what}: Access-Control-Allow-Origin`);
        assert.equal(res.headers["access-control-allow-credentials"], "true", `${what}: Access-Control-Allow-Credentials`);
      };
      const p = new Polling(port(), mode.base);
      check(await p.handshake(h), "handshake");
      const post = await p.post("6", { headers: h });
      assert.equal(post.status, 200);
      check(post, "POST");
      const g = await p.get({ headers: h });
      assert.equal(g.status, 200);
      check(g, "GET");
      check(await request({ port: port(), path: q({ EIO: 4, transport: "polling", sid: "nope" }), headers: h }), "400 error");
    });

    if (mode.engineOnly) {
      ctx.test("echo: a message posted comes back on the next GET", async () => {
        const p = await newSession();
        await p.send("4hello");
        const res = await p.get();
        assertTextPlain(res);
        assert.deepEqual(decodePayload(res.text), ["4hello"]);
      });

      ctx.test("payloads: packets joined with \\x1e, in order, in one response; binary as b+base64", async () => {
        const p = await newSession();
        const sent = ["4a", "4b", "bAQIDBA==", "4é😀日本", "4", "bAA==", "4last"];
        await p.send(...sent);
        assert.deepEqual(await p.receive(), sent);
      });

      ctx.test("binary: all 256 byte values survive base64 both ways", async () => {
        const p = await newSession();
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await p.send("b" + all.toString("base64"));
        const [pk] = await p.receive();
        assert.equal(pk[0], "b");
        assert.ok(Buffer.from(pk.slice(1), "base64").equals(all));
      });

      ctx.test("a message with UTF-8 text: the byte length is used, not the character count", async () => {
        const p = await newSession();
        const text = "4" + "€😀ü".repeat(1000);
        await p.send(text);
        const res = await p.get();
        assert.equal(res.text, text);
        assert.equal(Number(res.headers["content-length"] ?? res.body.length), Buffer.byteLength(text));
      });

      ctx.test("a POST body of exactly maxPayload (1 000 000 bytes) is accepted and echoed", async () => {
        const p = await newSession();
        const body = "4" + "y".repeat(999999);
        const res = await p.post(body, { timeout: 10000 });
        assert.equal(res.status, 200);
        assert.equal(res.text, "ok");
        const [pk] = await p.receive({ timeout: 10000 });
        assert.equal(pk, body);
      });

      ctx.test("messages sent while no GET is pending wait for the next GET", async () => {
        const p = await newSession();
        await p.send("4one");
        await p.send("4two");
        assert.deepEqual(await p.receive(), ["4one", "4two"]);
      });
    }
  });
}
