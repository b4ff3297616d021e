// Engine.IO v3 and the Socket.IO v4 protocol (socket.io-client 2.x) by hand, on servers started
// with --allow-eio3 beside the current protocol, and the refusal of EIO=3 without the flag. Both
// modes of the conformance server: plain Engine.IO (/engine.io/, echo) and Socket.IO
// (/socket.io/). The reference runs them with engine.io's allowEIO3 (conformance-ref.mjs
// --allow-eio3). Spec: docs/engine.io-protocol/v3.md and docs/socket.io-protocol/v4.md of
// socketio/socket.io; the encodings are described in lib/eio3.mjs.

import assert from "node:assert/strict";
import { Polling, eioPath, request } from "./lib/http.mjs";
import { OP, RawWs } from "./lib/rawws.mjs";
import { IS_REF, rtdOnly, serverSuite } from "./lib/server.mjs";
import { ERR, MODES, assertEioError, assertOpenData, assertTextPlain } from "./lib/eio.mjs";
import {
  ALLOW_EIO3,
  Polling3,
  decodeBinary3,
  decodeText3,
  encodeBinary3,
  encodeText3,
  eio3WebSocket,
  unwrapJsonp,
} from "./lib/eio3.mjs";
import { SioWs, decodeSio } from "./lib/sio.mjs";
import { collect, nextEvent, sleep, waitUntil, within } from "./lib/util.mjs";
import io2 from "sio2";
import { io as io4 } from "socket.io-client";

// The open packet of a v3 session: what the official v3 test suite accepts (maxPayload absent or
// the configured value).
function assertOpen3(open, upgrades) {
  assert.equal(typeof open.sid, "string");
  assert.ok(open.sid.length > 0, "sid is not empty");
  assert.equal(encodeURIComponent(open.sid), open.sid, "sid is usable in a query string as it is");
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.ok(open.maxPayload === undefined || open.maxPayload === 1000000, `maxPayload ${open.maxPayload}`);
  for (const k of Object.keys(open)) assert.ok(["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"].includes(k), `unexpected key ${k}`);
}

// The session is closed: a GET with its sid is refused with code 1 (Session ID unknown).
async function assertGone3(p, what = "after the session closed") {
  await assertEioError(p.get(), ERR.UNKNOWN_SID, what);
}

// The server closes a WebSocket session: a close frame, then the end of the TCP connection.
async function assertWsClosed(ws) {
  const c = await ws.waitClose(3000);
  ws.sendClose();
  await ws.waitEnd(3000);
  return c;
}

// GETs until n packets have come (strings; binary packets of a binary payload as byte arrays).
async function receiveN(p, n, { timeout = 5000 } = {}) {
  const end = Date.now() + timeout;
  const got = [];
  while (got.length < n) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${n} packets (got ${JSON.stringify(got)})`);
    got.push(...(await p.getPackets({ timeout: left })).map((x) => (typeof x === "string" ? x : [...x])));
  }
  assert.equal(got.length, n, `exactly ${n} packets: ${JSON.stringify(got)}`);
  return got;
}

const octets = (res) => {
  assert.match(String(res.headers["content-type"]), /^application\/octet-stream$/, "Content-Type of a binary payload");
  return [...res.body];
};

// ---- without the flag -----------------------------------------------------------------------

for (const mode of MODES) {
  serverSuite(`Engine.IO v3 without --allow-eio3 (${mode.name} mode, ${mode.base})`, { engineOnly: mode.engineOnly }, (ctx) => {
    const port = () => ctx.server.port;
    const q = (query) => eioPath(mode.base, query);

    ctx.test('EIO=3 polling handshake: HTTP 400 {"code":5,"message":"Unsupported protocol version"}', async () => {
      await assertEioError(request({ port: port(), path: q({ EIO: 3, transport: "polling" }) }), ERR.UNSUPPORTED_PROTOCOL_VERSION, "EIO=3");
      await assertEioError(request({ port: port(), path: q({ EIO: 3, transport: "polling", b64: 1, t: "N8hyd6w" }) }), ERR.UNSUPPORTED_PROTOCOL_VERSION, "EIO=3&b64=1");
      await assertEioError(request({ port: port(), path: q({ EIO: 3, transport: "polling", j: 0 }) }), ERR.UNSUPPORTED_PROTOCOL_VERSION, "EIO=3&j=0 (JSONP)");
    });

    ctx.test("EIO=3 WebSocket handshake: no Engine.IO session is opened", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 3, transport: "websocket" }) });
      if (r.status !== 101) {
        assert.equal(r.status, 400);
        return;
      }
      // the reference switches protocols, then writes an HTTP 400 into the stream and closes
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

    ctx.test("rtdOnly: EIO=3 WebSocket handshake is refused with HTTP 400 before switching protocols", rtdOnly(), async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 3, transport: "websocket" }) });
      r.ws?.destroy();
      assert.equal(r.status, 400);
      assert.equal(r.body.toString(), "Unsupported protocol version");
    });

    ctx.test("EIO=4 is served as usual", async () => {
      const p = new Polling(port(), mode.base);
      const res = await p.handshake();
      assert.equal(res.packets.length, 1);
      assertOpenData(p.open, ["websocket"]);
    });
  });
}

// ---- with the flag: Engine.IO level, both modes -----------------------------------------------

for (const mode of MODES) {
  serverSuite(`Engine.IO v3 (${mode.name} mode, ${mode.base}, --allow-eio3)`, { engineOnly: mode.engineOnly, args: [ALLOW_EIO3] }, (ctx) => {
    const port = () => ctx.server.port;
    const q = (query) => eioPath(mode.base, query);
    // A v3 polling session. In Socket.IO mode the server connects it to "/" at once: the first
    // GET brings "40" and the conformance server's "auth" event, read here.
    const newSession = async (opts) => {
      const p = new Polling3(port(), mode.base, opts);
      await p.handshake();
      if (!mode.engineOnly) {
        const got = await receiveN(p, 2);
        assert.equal(got[0], "40", `the implicit connection to "/": ${JSON.stringify(got)}`);
        assert.match(got[1], /^42\["auth",/);
      }
      return p;
    };
    // A GET the server holds: sent, and a noop POST after it answered.
    const heldGet = async (p) => {
      const g = p.startGet();
      await g.sent;
      const res = await p.post(encodeText3(["6"]));
      assert.equal(res.status, 200, `noop POST: ${res.status} ${res.text}`);
      return g;
    };
    const wsSession = async (t, opts) => {
      const s = await eio3WebSocket(port(), mode.base, opts);
      t.after(() => s.ws.destroy());
      if (!mode.engineOnly) {
        assert.equal(await s.ws.nextText(), "40", 'the implicit connection to "/"');
        assert.match(await s.ws.nextText(), /^42\["auth",/);
      }
      return s;
    };

    ctx.test("polling handshake: 200, text/plain, <length>:0{...} with the length in characters", async () => {
      const res = await request({ port: port(), path: q({ EIO: 3, transport: "polling" }) });
      assert.equal(res.status, 200);
      assertTextPlain(res);
      const m = /^(\d+):(0\{.*\})$/s.exec(res.text);
      assert.ok(m, `a length-prefixed open packet: ${JSON.stringify(res.text)}`);
      assert.equal(Number(m[1]), m[2].length);
      assertOpen3(JSON.parse(m[2].slice(1)), ["websocket"]);
    });

    // Regression (was a bug, now fixed): rtd's v3 open packet has no "maxPayload" (eio.c, eio_open_payload: the protocol 3
    // branch leaves it out); the reference (engine.io 6 with allowEIO3) sends the same fields as
    // to v4 clients: {"sid","upgrades","pingInterval","pingTimeout","maxPayload":1000000}.
    ctx.test("the v3 open packet has the reference's fields, maxPayload included", async (t) => {
      const p = new Polling3(port(), mode.base);
      await p.handshake();
      assertOpenData(p.open, ["websocket"]);
      const { ws, open } = await eio3WebSocket(port(), mode.base);
      t.after(() => ws.destroy());
      assertOpenData(open, []);
    });

    ctx.test("handshake with b64=1, t and other parameters; every session gets its own sid", async () => {
      const sids = new Set();
      for (const query of [{}, { b64: 1 }, { t: "N8hyd6w", foo: "bar" }, { b64: "1", t: "x" }]) {
        const p = new Polling3(port(), mode.base, { query });
        const res = await p.handshake();
        assert.equal(res.packets.length, 1);
        assertOpen3(p.open, ["websocket"]);
        sids.add(p.sid);
      }
      assert.equal(sids.size, 4);
    });

    ctx.test("EIO=3 and EIO=4 sessions side by side on the same path", async () => {
      const v4 = new Polling(port(), mode.base);
      const r4 = await v4.handshake();
      assert.equal(r4.text[0], "0", `v4 open packet without a length prefix: ${r4.text}`);
      assertOpenData(v4.open, ["websocket"]);
      const v3 = new Polling3(port(), mode.base);
      const r3 = await v3.handshake();
      assert.match(r3.text, /^\d+:0\{/);
      assert.notEqual(v3.sid, v4.sid);
    });

    ctx.test("WebSocket handshake: 101, then the open packet (upgrades []) in its own text frame", async (t) => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 3, transport: "websocket" }) });
      assert.equal(r.status, 101);
      t.after(() => r.ws.destroy());
      const f = await r.ws.nextFrame();
      assert.equal(f.opcode, OP.TEXT);
      const text = f.payload.toString();
      assert.equal(text[0], "0", "no length prefix over WebSocket");
      assertOpen3(JSON.parse(text.slice(1)), []);
    });

    ctx.test('polling heartbeat: the client pings "2", the server answers "3" (without the ping\'s data)', async () => {
      const p = await newSession({ b64: true });
      for (let i = 0; i < 3; i++) {
        await p.send("2");
        const res = await p.get();
        assert.equal(res.status, 200);
        assertTextPlain(res);
        assert.equal(res.text, "1:3");
      }
      await p.send("2abc");
      assert.equal((await p.get()).text, "1:3");
    });

    ctx.test("polling heartbeat: without pings the session ends after pingInterval + pingTimeout; a held GET gets 1:1", async () => {
      const p = await newSession();
      const start = Date.now();
      const res = await p.get({ timeout: 3000 });
      const waited = Date.now() - start;
      assert.equal(res.status, 200);
      assert.equal(res.text, "1:1", "a close packet");
      assert.ok(waited >= 350 && waited < 1500, `closed after ${waited} ms (pingInterval + pingTimeout = 500 ms)`);
      await assertGone3(p);
    });

    ctx.test("WebSocket heartbeat: pings keep the session past pingInterval + pingTimeout; the server never pings", async (t) => {
      const { ws } = await wsSession(t);
      const start = Date.now();
      let pings = 0;
      const got = [];
      while (Date.now() - start < 1100) {
        ws.text("2");
        pings++;
        got.push(await ws.nextText(1000));
        await sleep(150);
      }
      assert.deepEqual(got, new Array(pings).fill("3"), "only pongs, one per ping");
      assert.equal(ws.ended, false);
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3", "a ping with data gets a bare pong too");
    });

    ctx.test("WebSocket heartbeat: without pings the server closes the session after pingInterval + pingTimeout", async (t) => {
      const { ws } = await wsSession(t);
      const start = Date.now();
      const c = await assertWsClosed(ws);
      const waited = Date.now() - start;
      assert.deepEqual(c.skipped, [], "nothing before the close frame (no server ping)");
      assert.ok(waited >= 350 && waited < 1500, `closed after ${waited} ms`);
    });

    ctx.test('a client pong "3" is a protocol error in v3: the session ends', async (t) => {
      const p = await newSession({ b64: true });
      const g = await heldGet(p);
      await p.post(encodeText3(["3"])).catch(() => {}); // its answer is not part of the contract
      assert.equal((await g.response).text, "1:1");
      await assertGone3(p);
      const { ws } = await wsSession(t);
      ws.text("3");
      await assertWsClosed(ws);
    });

    ctx.test('a close packet "1:1": 200 "ok", the held GET gets a noop "1:6", the session ends', async () => {
      const p = await newSession({ b64: true });
      const g = await heldGet(p);
      const res = await p.post("1:1");
      assert.equal(res.status, 200);
      assert.equal(res.text, "ok");
      assert.equal((await g.response).text, "1:6");
      await assertGone3(p);
    });

    ctx.test('a close packet "1" over WebSocket ends the session', async (t) => {
      const { ws } = await wsSession(t);
      ws.text("1");
      await assertWsClosed(ws);
    });

    for (const [what, body] of [
      ["no length prefix", "abc"],
      ["an empty length", ":4hi"],
      ["a length beyond the body", "5:4hi"],
      ["a length counted in bytes instead of characters", "4:4€"],
      ["an unknown packet type", "2:9x"],
      ["an empty packet", "0:"],
      ["an open packet from the client", "1:0"],
    ]) {
      ctx.test(`an invalid text payload (${what}) closes the session: the held GET gets 1:1`, async () => {
        const p = await newSession({ b64: true });
        const g = await heldGet(p);
        await p.post(body).catch(() => {}); // its answer is not part of the contract
        const res = await g.response;
        assert.equal(res.status, 200);
        assert.equal(res.text, "1:1");
        await assertGone3(p);
      });
    }

    ctx.test("garbage after a valid packet closes the session (the packet before it may be handled)", async () => {
      const p = await newSession({ b64: true });
      const g = await heldGet(p);
      const msg = mode.engineOnly ? "4hello" : '42["message","hello"]';
      await p.post(encodeText3([msg]) + "1").catch(() => {});
      const res = await g.response;
      assert.equal(res.status, 200);
      // the reference echoes "4hello" first, then closes; rtd closes at once
      const echo = mode.engineOnly ? "4hello" : '42["message-back","hello"]';
      for (const pkt of decodeText3(res.text)) assert.ok(pkt === "1" || pkt === echo, `held GET got ${JSON.stringify(res.text)}`);
      await waitUntil(async () => (await p.get({ timeout: 2000 })).status === 400, { timeout: 3000, what: "the session to end" });
      await assertGone3(p);
    });

    for (const [what, bytes] of [
      ["no length digits", [0, 255, 0x34]],
      ["a length beyond the body, nothing after the separator", [0, 1, 255]],
    ]) {
      ctx.test(`an invalid binary payload (${what}) closes the session`, async () => {
        const p = await newSession();
        const g = await heldGet(p);
        await p.post(Buffer.from(bytes), { headers: { "Content-Type": "application/octet-stream" } }).catch(() => {});
        assert.equal((await g.response).text, "1:1");
        await assertGone3(p);
      });
    }

    // The reference decodes base64 leniently (Node's Buffer ignores what is not base64) and
    // keeps the session; rtd refuses a "b" packet whose data is not base64.
    ctx.test("rtdOnly: a base64 packet that is not base64 closes the session", rtdOnly(), async () => {
      for (const body of ["4:b4!!", "3:b4A", "7:b4A=QI"]) {
        const p = await newSession({ b64: true });
        const g = await heldGet(p);
        await p.post(body).catch(() => {});
        assert.equal((await g.response).text, "1:1", body);
        await assertGone3(p);
      }
    });

    ctx.test("invalid WebSocket messages close the session (unknown type, empty binary frame, open packet)", async (t) => {
      for (const send of [(ws) => ws.text("abc"), (ws) => ws.binary(Buffer.from([9, 1])), (ws) => ws.binary(Buffer.alloc(0)), (ws) => ws.text("0")]) {
        const { ws } = await wsSession(t);
        send(ws);
        await assertWsClosed(ws);
      }
    });

    ctx.test("upgrade: 2probe → 3probe, the held GET gets a noop 1:6, 5 completes, then WebSocket only", async (t) => {
      const p = await newSession({ b64: true });
      const g = await heldGet(p);
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 3, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      const held = await g.response;
      assert.equal(held.status, 200);
      assert.equal(held.text, "1:6");
      ws.text("5");
      const msg = mode.engineOnly ? "4hello" : '42["message","hello"]';
      ws.text(msg);
      assert.equal(await ws.nextText(), mode.engineOnly ? "4hello" : '42["message-back","hello"]');
      if (mode.engineOnly) {
        ws.binary(Buffer.from([4, 1, 2, 3]));
        const m = await ws.nextMessage();
        assert.equal(m.opcode, OP.BINARY);
        assert.deepEqual([...m.data], [4, 1, 2, 3]);
      }
      // polling is over for this session
      await assertEioError(p.get(), ERR.BAD_REQUEST, "GET after the upgrade");
      ws.text("2");
      assert.equal(await ws.nextText(), "3");
    });

    ctx.test("upgrade: a GET during the probe is answered with a noop 1:6 at once", async (t) => {
      const p = await newSession({ b64: true });
      const ws = await RawWs.connect({ port: port(), path: q({ EIO: 3, transport: "websocket", sid: p.sid }) });
      t.after(() => ws.destroy());
      ws.text("2probe");
      assert.equal(await ws.nextText(), "3probe");
      const res = await p.get({ timeout: 2000 });
      assert.equal(res.text, "1:6");
      ws.text("5");
      ws.text("2");
      assert.equal(await ws.nextText(), "3");
    });

    ctx.test("upgrade: a probe with an unknown sid is refused (HTTP 400)", async () => {
      const r = await RawWs.handshake({ port: port(), path: q({ EIO: 3, transport: "websocket", sid: "no-such-session" }) });
      r.ws?.destroy();
      assert.equal(r.status, 400);
    });
  });
}

// ---- with the flag: payloads, plain Engine.IO (echo) -----------------------------------------

serverSuite("Engine.IO v3 payloads (engine-only mode, /engine.io/, echo, --allow-eio3)", { engineOnly: true, args: [ALLOW_EIO3] }, (ctx) => {
  const port = () => ctx.server.port;
  const base = "/engine.io/";
  const session = async (opts) => {
    const p = new Polling3(port(), base, opts);
    await p.handshake();
    return p;
  };

  ctx.test("text payloads: one and several packets both ways, the POST answered 200 ok", async () => {
    const p = await session({ b64: true });
    const res = await p.post("6:4hello");
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
    const got = await p.get();
    assertTextPlain(got);
    assert.equal(got.text, "6:4hello");
    await p.send("4test1", "4test2", "4test3");
    assert.equal((await p.get()).text, "6:4test16:4test26:4test3");
    await p.send("4");
    assert.equal((await p.get()).text, "1:4", "an empty message");
  });

  ctx.test("lengths count UTF-16 code units both ways: € is 1, an emoji outside the BMP is 2", async () => {
    const p = await session({ b64: true });
    await p.send("4€");
    assert.equal((await p.get()).text, "2:4€");
    await p.send("4😀");
    assert.equal((await p.get()).text, "3:4😀");
    const mixed = ["4hello", "4€", "4😀", "4a😀€b", "4日本語", "4", "4:7:"];
    await p.send(...mixed);
    const res = await p.get();
    assert.equal(res.text, "6:4hello2:4€3:4😀6:4a😀€b4:4日本語1:44:4:7:");
    assert.deepEqual(decodeText3(res.text), mixed);
  });

  ctx.test("b64=1: binary packets travel as b<type><base64> both ways, mixed with text", async () => {
    const p = await session({ b64: true });
    await p.send("4hello", { type: 4, data: Buffer.from([1, 2, 3, 4]) });
    const res = await p.get();
    assertTextPlain(res);
    assert.equal(res.text, "6:4hello10:b4AQIDBA==");
    await p.send({ type: 4, data: Buffer.alloc(0) }, { type: 4, data: Buffer.from([0xff, 0x00, 0xfe]) });
    assert.equal((await p.get()).text, "2:b46:b4/wD+");
  });

  ctx.test("without b64: a GET with a binary packet answers in the binary payload format", async () => {
    const p = await session();
    await p.send("4hello", { type: 4, data: Buffer.from([1, 2, 3, 4]) });
    assert.deepEqual(octets(await p.get()), [0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4]);
    // string lengths in bytes there
    await p.send("4€", { type: 4, data: Buffer.from([1, 2, 3, 4]) });
    assert.deepEqual(octets(await p.get()), [0, 4, 255, 52, 0xe2, 0x82, 0xac, 1, 5, 255, 4, 1, 2, 3, 4]);
    // text only: the text format
    await p.send("4€", "4hello");
    const text = await p.get();
    assertTextPlain(text);
    assert.equal(text.text, "2:4€6:4hello");
    // ten bytes and more: several length digits
    const big = Buffer.alloc(300, 7);
    await p.send({ type: 4, data: big });
    const got = decodeBinary3((await p.get()).body);
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], Buffer.concat([Buffer.from([4]), big]));
  });

  ctx.test("binary payload POST (application/octet-stream): strings and binary, echoed", async () => {
    const p = await session();
    const res = await p.postBinary(["4hello", Buffer.from([4, 1, 2, 3, 4])]);
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
    assert.deepEqual(octets(await p.get()), [0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4]);
    assert.equal((await p.postBinary(["4€😀"])).text, "ok");
    assert.equal((await p.get()).text, "4:4€😀", "a string-only echo goes back in the text format");
    const big = Buffer.alloc(1234, 0xab);
    await p.postBinary([Buffer.concat([Buffer.from([4]), big]), "4x"]);
    const got = decodeBinary3((await p.get()).body);
    assert.deepEqual(got, [Buffer.concat([Buffer.from([4]), big]), "4x"]);
  });

  ctx.test("a b64 session gets base64 even after posting in the binary payload format", async () => {
    const p = await session({ b64: true });
    await p.postBinary([Buffer.from([4, 9, 8, 7])]);
    const res = await p.get();
    assertTextPlain(res);
    assert.equal(res.text, "6:b4CQgH");
  });

  ctx.test("WebSocket: text frames carry one packet without a length; binary frames start with the type byte", async (t) => {
    const { ws } = await eio3WebSocket(port(), base);
    t.after(() => ws.destroy());
    ws.text("4hello €😀");
    assert.equal(await ws.nextText(), "4hello €😀");
    ws.binary(Buffer.from([4, 1, 2, 3, 4]));
    const m = await ws.nextMessage();
    assert.equal(m.opcode, OP.BINARY);
    assert.deepEqual([...m.data], [4, 1, 2, 3, 4]);
    ws.binary(Buffer.from([4]));
    const e = await ws.nextMessage();
    assert.equal(e.opcode, OP.BINARY);
    assert.deepEqual([...e.data], [4], "an empty binary message");
  });

  ctx.test("polling and WebSocket sessions exchange nothing: each echo goes to its own session", async (t) => {
    const p = await session();
    const { ws } = await eio3WebSocket(port(), base);
    t.after(() => ws.destroy());
    await p.send("4from polling");
    ws.text("4from ws");
    assert.equal(await ws.nextText(), "4from ws");
    assert.equal((await p.get()).text, "13:4from polling");
  });

  // Regression (was a bug, now fixed): socket.io-client 2.x with forceBase64: true over WebSocket connects with b64=1 and sends
  // binary packets as text frames "b<type><base64>". The reference decodes them as binary
  // messages and answers a b64 session with "b4..." text frames; rtd (eio3_decode_ws) takes
  // "b..." for an unknown packet type and closes the session, and sends binary frames to b64
  // sessions.
  ctx.test('WebSocket with b64=1 (forceBase64): "b4<base64>" text frames both ways', async (t) => {
    const { ws } = await eio3WebSocket(port(), base, { query: { b64: 1 } });
    t.after(() => ws.destroy());
    ws.binary(Buffer.from([4, 1, 2, 3, 4]));
    assert.equal(await ws.nextText(), "b4AQIDBA==", "a binary echo to a b64 session");
    ws.text("b4AQIDBA==");
    assert.equal(await ws.nextText(), "b4AQIDBA==");
  });

  // Regression (was a bug, now fixed): the same without b64: a "b4<base64>" text frame is a binary message for the reference
  // (it answers with a binary frame); rtd closes the session.
  ctx.test('WebSocket: a "b4<base64>" text frame is a binary message', async (t) => {
    const { ws } = await eio3WebSocket(port(), base);
    t.after(() => ws.destroy());
    ws.text("b4AQIDBA==");
    const m = await ws.nextMessage(2000, { allowControl: true });
    assert.equal(m.opcode, OP.BINARY, `got opcode ${m.opcode}`);
    assert.deepEqual([...m.data], [4, 1, 2, 3, 4]);
  });

  // Regression (was a bug, now fixed): rtd encodes a long queue in batches of 256 packets (eio_polling.c, respond_queue) and
  // chooses the format per batch: with a binary packet in the first batch and text only in a
  // later one, the text-format tail ("5:4m256...") is appended to a binary payload, which no
  // client can decode. (With the binary packet in a later batch the answer is a text payload
  // with "b4..." where the reference uses the binary format: decodable, so accepted here.)
  ctx.test("more than 256 queued packets with a binary one: one well-formed payload, every packet in order", async () => {
    const text = Array.from({ length: 300 }, (_, i) => `4m${i}`);
    const bin = { type: 4, data: Buffer.from([1, 2, 3]) };
    for (const [what, pkts] of [
      ["binary first", [bin, ...text]],
      ["binary last", [...text, bin]],
    ]) {
      const p = await session();
      await p.send(...pkts);
      const res = await p.get();
      assert.equal(res.status, 200);
      const binary = /^application\/octet-stream/.test(String(res.headers["content-type"]));
      let got;
      try {
        got = binary ? decodeBinary3(res.body) : decodeText3(res.text);
      } catch (e) {
        assert.fail(`${what}: the answer (${res.headers["content-type"]}, ${res.body.length} bytes) does not decode: ${e.message}`);
      }
      const norm = got.map((x) => (Buffer.isBuffer(x) ? `bin:${[...x]}` : x === "b4AQID" ? "bin:4,1,2,3" : x));
      const expected = pkts.map((x) => (typeof x === "string" ? x : "bin:4,1,2,3"));
      assert.deepEqual(norm, expected, what);
    }
  });

  ctx.test("upgrade: packets queued for polling (text and binary) arrive over the WebSocket after 5", async (t) => {
    const p = await session();
    await p.send("4queued text", { type: 4, data: Buffer.from([7, 7]) });
    const ws = await RawWs.connect({ port: port(), path: eioPath(base, { EIO: 3, transport: "websocket", sid: p.sid }) });
    t.after(() => ws.destroy());
    ws.text("2probe");
    assert.equal(await ws.nextText(), "3probe");
    ws.text("5");
    assert.equal(await ws.nextText(), "4queued text");
    const m = await ws.nextMessage();
    assert.equal(m.opcode, OP.BINARY);
    assert.deepEqual([...m.data], [4, 7, 7]);
  });

  ctx.test("heartbeat: messages do not replace pings, a v3 session that only sends messages times out", async () => {
    const p = await session({ b64: true });
    const start = Date.now();
    for (;;) {
      const res = await p.post(encodeText3(["4keep"]));
      if (res.status !== 200) break;
      const g = await p.get({ timeout: 2000 });
      if (g.status !== 200 || decodeText3(g.text).includes("1")) break;
      assert.ok(Date.now() - start < 1500, "still open after 1500 ms of messages without a ping");
      await sleep(100);
    }
    const waited = Date.now() - start;
    assert.ok(waited >= 350, `closed after ${waited} ms (pingInterval + pingTimeout = 500 ms)`);
  });

  ctx.test("maxPayload: a 1 000 000-byte POST is echoed, 1 000 001 bytes get 413 and end the session", async () => {
    const p = await session({ b64: true });
    const sized = (size) => {
      let n = size - 8;
      for (;;) {
        const body = encodeText3(["4" + "x".repeat(n)]);
        if (body.length === size) return body;
        n += size - body.length;
      }
    };
    const ok = await p.post(sized(1000000), { timeout: 10000 });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, "ok");
    const echo = await p.get({ timeout: 10000 });
    assert.equal(echo.text, sized(1000000));
    const res = await p.post(sized(1000001), { timeout: 10000 }).catch((err) => ({ status: `error ${err.code || err.message}` }));
    assert.equal(res.status, 413);
    await waitUntil(async () => (await p.get({ timeout: 2000 })).status === 400, { timeout: 3000, what: "the session to end" });
  });

  ctx.test("maxPayload over WebSocket: a 1 000 000-byte message is echoed, one byte more closes with 1009", async (t) => {
    const { ws } = await eio3WebSocket(port(), base);
    t.after(() => ws.destroy());
    ws.text("4" + "y".repeat(999999));
    assert.equal((await ws.nextText(10000)).length, 1000000);
    ws.text("4" + "y".repeat(1000000));
    const c = await ws.waitClose(5000);
    assert.equal(c.code, 1009);
  });

  ctx.test("CORS: v3 handshake, POST and GET reflect the Origin with credentials", async () => {
    const origin = "http://app.example.com";
    const p = new Polling3(port(), base, { b64: true });
    const hs = await p.handshake({ Origin: origin });
    const post = await p.post("6:4hello", { headers: { Origin: origin } });
    const get = await p.startGet({ headers: { Origin: origin } }).response;
    for (const [what, res] of [["handshake", hs], ["POST", post], ["GET", get]]) {
      assert.equal(res.headers["access-control-allow-origin"], origin, what);
      assert.equal(res.headers["access-control-allow-credentials"], "true", what);
    }
    assert.equal(get.text, "6:4hello");
  });

  ctx.test("JSONP: the handshake answers ___eio[j](\"<payload>\"); j keeps its digits", async () => {
    const p = new Polling3(port(), base, { j: 4, b64: true });
    const res = await p.handshake();
    assert.equal(res.status, 200);
    // the reference says text/plain; rtd says text/javascript (what a <script> expects)
    assert.match(String(res.headers["content-type"]), IS_REF ? /^text\/plain; ?charset=utf-8$/i : /^text\/javascript; ?charset=utf-8$/i);
    assert.match(res.text, /^___eio\[4\]\("\d+:0\{\\"sid\\":/);
    assert.ok(res.text.endsWith('");'));
    const payload = unwrapJsonp(res.text, 4);
    assert.equal(payload, res.payload);
    assertOpen3(p.open, ["websocket"]);
    const odd = await request({ port: port(), path: eioPath(base, { EIO: 3, transport: "polling", j: "1x2", b64: 1 }) });
    assert.match(odd.text, /^___eio\[12\]\("/);
  });

  ctx.test("JSONP: d= form POSTs with escaped newlines, answers wrapped as JavaScript strings", async () => {
    const p = new Polling3(port(), base, { j: 0, b64: true });
    await p.handshake();
    const packets = ["4hello", "4a\nb", "4c\\nd", '4"quoted" </script>', "4€😀", "4x\u2028y"];
    const res = await p.post(encodeText3(packets));
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
    const got = await p.get();
    assert.equal(got.status, 200);
    const payload = unwrapJsonp(got.text, 0);
    assert.deepEqual(decodeText3(payload), packets);
    assert.ok(got.text.includes("\\u2028"), "U+2028 is escaped (JSON is not JavaScript there)");
    assert.ok(!got.text.includes("\u2028"));
    // binary: base64 (a JSONP client always asks for b64)
    await p.send({ type: 4, data: Buffer.from([1, 2, 3, 4]) });
    assert.equal((await p.get()).text, '___eio[0]("10:b4AQIDBA==");');
    // ping
    await p.send("2");
    assert.equal((await p.get()).text, '___eio[0]("1:3");');
  });

  ctx.test("JSONP: an invalid payload in d closes the session", async () => {
    const p = new Polling3(port(), base, { j: 1, b64: true });
    await p.handshake();
    await p.post("5:4hi").catch(() => {});
    await assertEioError(p.get(), ERR.UNKNOWN_SID, "after an invalid JSONP payload");
  });
});

// ---- with the flag: Socket.IO v4 protocol ----------------------------------------------------

serverSuite("Socket.IO v4 protocol over Engine.IO v3 (socket.io mode, /socket.io/, --allow-eio3)", { args: [ALLOW_EIO3] }, (ctx) => {
  const port = () => ctx.server.port;
  const base = "/socket.io/";

  // A v3 polling session connected to "/" (implicitly): returns it and the "auth" event's data.
  const connected = async (opts) => {
    const p = new Polling3(port(), base, opts);
    await p.handshake();
    const got = await receiveN(p, 2);
    assert.equal(got[0], "40", `CONNECT without data: ${JSON.stringify(got)}`);
    const ev = decodeSio(got[1].slice(1));
    assert.equal(ev.data[0], "auth");
    return { p, auth: ev.data[1] };
  };

  ctx.test('the implicit connection to "/": "40" without data, then the connection event', async () => {
    const { auth } = await connected({ b64: true, query: { token: "abc", x: "é" } });
    // rtd makes the handshake query the auth payload of the implicit connection (so that 2.x
    // clients can send a token); the reference gives {}.
    if (IS_REF) assert.deepEqual(auth, {});
    else assert.deepEqual(auth, { EIO: "3", transport: "polling", b64: "1", token: "abc", x: "é" });
  });

  ctx.test('over WebSocket too: "40", then the connection event', async (t) => {
    const { ws } = await eio3WebSocket(port(), base, { query: { token: "t1" } });
    t.after(() => ws.destroy());
    assert.equal(await ws.nextText(), "40");
    const ev = decodeSio((await ws.nextText()).slice(1));
    assert.equal(ev.data[0], "auth");
    if (IS_REF) assert.deepEqual(ev.data[1], {});
    else assert.deepEqual(ev.data[1], { EIO: "3", transport: "websocket", token: "t1" });
  });

  ctx.test("events and acks both ways, with the v3 length prefix counting UTF-16 units", async () => {
    const { p } = await connected({ b64: true });
    await p.send('42["message","héllo😀"]');
    assert.equal((await p.get()).text, '28:42["message-back","héllo😀"]');
    await p.send('421["message-with-ack",1,"two"]', '42["message",1]');
    const got = await receiveN(p, 2);
    assert.deepEqual(got, ['431[1,"two"]', '42["message-back",1]']);
    await p.send('42["server-ack","q"]');
    const [req] = await receiveN(p, 1);
    const m = /^42(\d+)\["ack-request","q"\]$/.exec(req);
    assert.ok(m, `an event with an ack id: ${req}`);
    await p.send(`43${m[1]}["answer",2]`);
    assert.deepEqual(await receiveN(p, 1), ['42["ack-response","answer",2]']);
  });

  ctx.test("binary events over polling with b64=1: the attachment as b4<base64>", async () => {
    const { p } = await connected({ b64: true });
    await p.send('451-["message",{"_placeholder":true,"num":0}]', { type: 4, data: Buffer.from([1, 2, 3]) });
    assert.equal((await p.get()).text, '50:451-["message-back",{"_placeholder":true,"num":0}]6:b4AQID');
    await p.send('451-6["message-with-ack",{"_placeholder":true,"num":0}]', { type: 4, data: Buffer.from([9]) });
    assert.deepEqual(await receiveN(p, 2), ['461-6[{"_placeholder":true,"num":0}]', "b4CQ=="]);
  });

  ctx.test("binary events over polling without b64: the binary payload format both ways", async () => {
    const { p } = await connected();
    await p.postBinary(['451-["message",{"_placeholder":true,"num":0}]', Buffer.from([4, 1, 2, 3])]);
    const res = await p.get();
    assert.deepEqual(octets(res), [...encodeBinary3(['451-["message-back",{"_placeholder":true,"num":0}]', Buffer.from([4, 1, 2, 3])])]);
  });

  ctx.test("binary events over WebSocket: attachments in binary frames led by the type byte", async (t) => {
    const { ws } = await eio3WebSocket(port(), base);
    t.after(() => ws.destroy());
    assert.equal(await ws.nextText(), "40");
    await ws.nextText(); // auth
    ws.text('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    ws.binary(Buffer.from([4, 1, 2]));
    ws.binary(Buffer.from([4, 3]));
    assert.equal(await ws.nextText(), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    for (const expected of [[4, 1, 2], [4, 3]]) {
      const m = await ws.nextMessage();
      assert.equal(m.opcode, OP.BINARY);
      assert.deepEqual([...m.data], expected);
    }
  });

  ctx.test("CONNECT to another namespace carries its auth in a query: 40/custom?x=1", async () => {
    const { p } = await connected({ b64: true });
    await p.send("40/custom?x=1&y=%C3%A9");
    const got = await receiveN(p, 2);
    assert.deepEqual(got, ["40/custom,", '42/custom,["auth",{"x":"1","y":"é"}]']);
    await p.send("41/custom,");
    await p.send('42["message","still on /"]');
    assert.deepEqual(await receiveN(p, 1), ['42["message-back","still on /"]']);
  });

  ctx.test('an unknown namespace: 44/nope,{"message":"Invalid namespace"}, the session stays', async () => {
    const { p } = await connected({ b64: true });
    await p.send("40/nope");
    assert.deepEqual(await receiveN(p, 1), ['44/nope,{"message":"Invalid namespace"}']);
    await p.send('42["message",1]');
    assert.deepEqual(await receiveN(p, 1), ['42["message-back",1]']);
  });

  ctx.test("rooms shared by v3 and v4 clients: a room message from either reaches both", async (t) => {
    const { p } = await connected({ b64: true });
    const v4 = await SioWs.open(port());
    t.after(() => v4.destroy());
    assert.equal((await v4.connect("/")).type, 0);
    await p.send('421["join","mixed"]');
    assert.deepEqual(await receiveN(p, 1), ["431[true]"]);
    v4.send('21["join","mixed"]');
    assert.equal((await v4.next()).raw, "431[true]");
    await p.send('42["to-room","mixed","from v3","€"]');
    assert.deepEqual(await receiveN(p, 1), ['42["room-message","from v3","€"]']);
    const a = await v4.next();
    assert.deepEqual(a.data, ["room-message", "from v3", "€"]);
    v4.send('2["to-room","mixed","from v4",{"n":1}]');
    assert.deepEqual((await v4.next()).data, ["room-message", "from v4", { n: 1 }]);
    assert.deepEqual(await receiveN(p, 1), ['42["room-message","from v4",{"n":1}]']);
  });

  ctx.test("an invalid Socket.IO packet ends the v3 session", async () => {
    const { p } = await connected({ b64: true });
    const g = p.startGet();
    await g.sent;
    await p.send("6");
    await p.post(encodeText3(["4x"])).catch(() => {});
    assert.equal((await g.response).text, "1:1");
    await assertGone3(p);
  });
});

// ---- socket.io-client 2.5 against the conformance server --------------------------------------

const SIO2_KINDS = [
  { name: "polling", opts: { transports: ["polling"] } },
  { name: "websocket", opts: { transports: ["websocket"] } },
  { name: "polling then upgrade", opts: {}, upgrade: true },
  { name: "polling with forceBase64", opts: { transports: ["polling"], forceBase64: true } },
  // Regression (was a bug, now fixed): fails on rtd, see 'WebSocket with b64=1 (forceBase64)' above: the session dies at the
  // first binary packet.
  { name: "websocket with forceBase64", opts: { transports: ["websocket"], forceBase64: true }, bug: true },
  { name: "upgrade with forceBase64", opts: { forceBase64: true }, upgrade: true, bug: true },
];

const buf = (v) => (Buffer.isBuffer(v) ? [...v] : v instanceof ArrayBuffer ? [...Buffer.from(v)] : v);

serverSuite("socket.io-client 2.5 against the conformance server (socket.io mode, --allow-eio3)", { args: [ALLOW_EIO3] }, (ctx) => {
  function client2(t, nsp = "/", opts = {}) {
    const s = io2(ctx.server.url + nsp, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
    t.after(() => s.close());
    return s;
  }
  const connect2 = (s) =>
    within(
      new Promise((resolve, reject) => {
        s.once("connect", resolve);
        s.once("connect_error", (e) => reject(new Error(`connect_error: ${e?.message ?? e}`)));
      }),
      5000,
      "the 2.x client's connect",
    );
  const ack2 = (s, ev, ...args) => within(new Promise((resolve) => s.emit(ev, ...args, (...r) => resolve(r))), 5000, `the ack of "${ev}"`);

  for (const kind of SIO2_KINDS) {
    ctx.test(`${kind.name}: connect, acks, binary both ways, server acks`, async (t) => {
      const s = client2(t, "/", { ...kind.opts, query: { token: "abc" } });
      const auth = nextEvent(s, "auth");
      await connect2(s);
      assert.equal(s.id, s.io.engine.id, 'the socket id on "/" is the Engine.IO id (what 2.x clients assume)');
      const [a] = await auth;
      if (IS_REF) assert.deepEqual(a, {});
      else assert.equal(a.token, "abc", "rtd: the query is the auth of the implicit connection");
      if (kind.upgrade) await within(new Promise((resolve) => (s.io.engine.transport.name === "websocket" ? resolve() : s.io.engine.once("upgrade", resolve))), 5000, "the upgrade");
      const r = await ack2(s, "message-with-ack", "héllo😀", 7, { k: [true, null] }, Buffer.from([1, 2, 3]));
      assert.deepEqual(r.map(buf), ["héllo😀", 7, { k: [true, null] }, [1, 2, 3]]);
      const back = nextEvent(s, "message-back");
      s.emit("message", { file: Buffer.from([9, 8, 7]), name: "f" }, Buffer.alloc(0));
      const got = await back;
      assert.deepEqual([buf(got[0].file), got[0].name, buf(got[1])], [[9, 8, 7], "f", []]);
      const req = nextEvent(s, "ack-request");
      const res = nextEvent(s, "ack-response");
      s.emit("server-ack", "q", Buffer.from([5]));
      const [q1, b1, cb] = await req;
      assert.deepEqual([q1, buf(b1)], ["q", [5]]);
      cb("answer", Buffer.from([6, 6]));
      assert.deepEqual((await res).map(buf), ["answer", [6, 6]]);
      if (kind.upgrade) assert.equal(s.io.engine.transport.name, "websocket");
    });
  }

  ctx.test("a namespace with a query: auth from the query, socket id <nsp>#<engine id>", async (t) => {
    const s = client2(t, "/custom", { transports: ["websocket"], query: { x: "1", y: "é" } });
    const auth = nextEvent(s, "auth");
    await connect2(s);
    assert.equal(s.id, `/custom#${s.io.engine.id}`);
    const [a] = await auth;
    assert.equal(a.x, "1");
    assert.equal(a.y, "é");
  });

  ctx.test('an unknown namespace: the 2.x client gets an "error" event with the message', async (t) => {
    const s = client2(t, "/nope", { transports: ["polling"] });
    const [e] = await nextEvent(s, "error");
    assert.deepEqual(e, { message: "Invalid namespace" });
  });

  ctx.test("a room shared by 2.5 and 4.8 clients: messages from either reach both", async (t) => {
    const old = client2(t, "/", { transports: ["polling"] });
    await connect2(old);
    const cur = io4(ctx.server.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    t.after(() => cur.close());
    await within(new Promise((resolve, reject) => {
      cur.once("connect", resolve);
      cur.once("connect_error", reject);
    }), 5000, "the 4.8 client's connect");
    assert.deepEqual(await ack2(old, "join", "r"), [true]);
    assert.deepEqual(await within(cur.emitWithAck("join", "r"), 5000, "join ack"), true);
    const oldGot = collect(old, "room-message");
    const curGot = collect(cur, "room-message");
    old.emit("to-room", "r", "from 2.5", Buffer.from([1]));
    cur.emit("to-room", "r", "from 4.8", Buffer.from([2]));
    for (const c of [oldGot, curGot]) {
      const items = (await c.waitCount(2)).map((args) => args.map(buf));
      assert.deepEqual(
        items.sort((x, y) => x[0].localeCompare(y[0])),
        [
          ["from 2.5", [1]],
          ["from 4.8", [2]],
        ],
      );
    }
  });
});
