// Socket.IO v5 packets by hand (over a raw WebSocket, and some over long-polling): namespace
// connection, events, acks, binary attachments, and the error paths that must end the session.

import assert from "node:assert/strict";
import { Polling } from "./lib/http.mjs";
import { OP, encodeFrame } from "./lib/rawws.mjs";
import { rtdOnly, serverSuite } from "./lib/server.mjs";
import { SioWs, T, decodeSio } from "./lib/sio.mjs";
import { assertSessionGone } from "./lib/eio.mjs";

const placeholders = (n) => Array.from({ length: n }, (_, i) => ({ _placeholder: true, num: i }));

serverSuite("Socket.IO packets over a raw WebSocket", { engineOnly: false }, (ctx) => {
  const open = async (t) => {
    const s = await SioWs.open(ctx.server.port);
    t.after(() => s.destroy());
    return s;
  };
  const connected = async (t, nsp, auth) => {
    const s = await open(t);
    const r = await s.connect(nsp, auth);
    assert.equal(r.type, T.CONNECT, `CONNECT refused: ${r.raw}`);
    return s;
  };

  ctx.test('CONNECT "/": CONNECT back with a Socket.IO sid (not the Engine.IO one), then auth {}', async (t) => {
    const s = await open(t);
    const r = await s.connect("/");
    assert.equal(r.type, T.CONNECT);
    assert.equal(r.nsp, "/");
    assert.deepEqual(Object.keys(r.data), ["sid"]);
    assert.equal(typeof r.data.sid, "string");
    assert.ok(r.data.sid.length > 0);
    assert.notEqual(r.data.sid, s.open.sid);
    assert.deepEqual(r.auth, {});
  });

  ctx.test("CONNECT with an auth payload: it comes back in the auth event", async (t) => {
    const s = await open(t);
    const auth = { token: "t0k3n", nested: { a: [1, 2, "ü"] } };
    const r = await s.connect("/", auth);
    assert.equal(r.type, T.CONNECT);
    assert.deepEqual(r.auth, auth);
  });

  ctx.test('CONNECT "/custom" with auth: CONNECT "/custom" back and the auth event on "/custom"', async (t) => {
    const s = await open(t);
    s.send({ type: T.CONNECT, nsp: "/custom", data: { who: "custom" } });
    const r = await s.next();
    assert.equal(r.type, T.CONNECT);
    assert.equal(r.nsp, "/custom");
    assert.equal(typeof r.data.sid, "string");
    const ev = await s.next();
    assert.deepEqual([ev.type, ev.nsp, ev.data], [T.EVENT, "/custom", ["auth", { who: "custom" }]]);
  });

  ctx.test('CONNECT to an unknown namespace: CONNECT_ERROR {"message":"Invalid namespace"}, the connection stays', async (t) => {
    const s = await open(t);
    const r = await s.connect("/nope");
    assert.equal(r.type, T.CONNECT_ERROR);
    assert.equal(r.nsp, "/nope");
    assert.deepEqual(r.data, { message: "Invalid namespace" });
    const ok = await s.connect("/");
    assert.equal(ok.type, T.CONNECT);
  });

  ctx.test("CONNECT_ERROR and no other namespace: the session ends at connectTimeout", async (t) => {
    const s = await open(t);
    const r = await s.connect("/nope");
    assert.equal(r.type, T.CONNECT_ERROR);
    const c = await s.expectClosed(4000);
    assert.equal(c.code, null);
  });

  ctx.test("no CONNECT within connectTimeout (1000 ms) closes the session", async (t) => {
    const start = Date.now();
    const s = await open(t);
    const c = await s.expectClosed(4000);
    const elapsed = Date.now() - start;
    assert.equal(c.code, null, "close frame without a status code");
    assert.ok(elapsed >= 700 && elapsed < 3000, `closed after ${elapsed} ms, connectTimeout is 1000 ms`);
  });

  ctx.test("a connected session outlives connectTimeout", async (t) => {
    const s = await connected(t, "/");
    await new Promise((r) => setTimeout(r, 1300)); // longer than connectTimeout: the protocol's own timer
    s.send('2["message","still"]');
    const p = await s.next();
    assert.deepEqual(p.data, ["message-back", "still"]);
  });

  ctx.test("EVENT message → EVENT message-back with the same arguments", async (t) => {
    const s = await connected(t, "/");
    const args = ["message", 1, "two", { three: [3, null, true] }, "😀"];
    s.send({ type: T.EVENT, data: args });
    const p = await s.next();
    assert.equal(p.type, T.EVENT);
    assert.equal(p.id, undefined);
    assert.deepEqual(p.data, ["message-back", ...args.slice(1)]);
  });

  ctx.test("EVENT whose name is a number is accepted (no answer, the session stays)", async (t) => {
    const s = await connected(t, "/");
    s.send("2[1,2]");
    s.send('2["message","after"]');
    assert.deepEqual((await s.next()).data, ["message-back", "after"]);
  });

  ctx.test("EVENT without any payload is ignored (as the reference does) and the session stays", async (t) => {
    const s = await connected(t, "/");
    s.send("2");
    s.send('2["message","after"]');
    assert.deepEqual((await s.next()).data, ["message-back", "after"]);
  });

  ctx.test("EVENT with an ack id: ACK with the same id and the arguments", async (t) => {
    const s = await connected(t, "/");
    s.send('217["message-with-ack","a",{"b":2}]');
    const p = await s.next();
    assert.equal(p.type, T.ACK);
    assert.equal(p.id, 17);
    assert.deepEqual(p.data, ["a", { b: 2 }]);
  });

  ctx.test("a large ack id is kept", async (t) => {
    const s = await connected(t, "/");
    s.send('24294967295["message-with-ack","x"]');
    const p = await s.next();
    assert.equal(p.type, T.ACK);
    assert.equal(p.id, 4294967295);
  });

  ctx.test("BINARY_EVENT with one attachment: BINARY_EVENT back with the attachment as a binary frame", async (t) => {
    const s = await connected(t, "/");
    s.send('51-["message",{"_placeholder":true,"num":0},"text"]');
    s.send(Buffer.from([0, 1, 2, 255]));
    const p = await s.next();
    assert.equal(p.type, T.BINARY_EVENT);
    assert.equal(p.attachments, 1);
    assert.equal(p.args[0], "message-back");
    assert.deepEqual([...p.args[1]], [0, 1, 2, 255]);
    assert.equal(p.args[2], "text");
  });

  ctx.test("BINARY_EVENT with an ack id: BINARY_ACK with the same id", async (t) => {
    const s = await connected(t, "/");
    s.send('52-9["message-with-ack",{"_placeholder":true,"num":1},{"x":{"_placeholder":true,"num":0}}]');
    s.send(Buffer.from([7]));
    s.send(Buffer.from([8, 8]));
    const p = await s.next();
    assert.equal(p.type, T.BINARY_ACK);
    assert.equal(p.id, 9);
    assert.equal(p.attachments, 2);
    assert.deepEqual([...p.args[0]], [8, 8]);
    assert.deepEqual([...p.args[1].x], [7]);
  });

  ctx.test("10 attachments in one packet are accepted", async (t) => {
    const s = await connected(t, "/");
    s.send(`510-${JSON.stringify(["message", ...placeholders(10)])}`);
    for (let i = 0; i < 10; i++) s.send(Buffer.from([i]));
    const p = await s.next();
    assert.equal(p.type, T.BINARY_EVENT);
    assert.equal(p.attachments, 10);
    p.args.slice(1).forEach((b, i) => assert.deepEqual([...b], [i]));
  });

  ctx.test("11 attachments in one packet (over the reference's limit of 10) close the session", async (t) => {
    const s = await connected(t, "/");
    s.send(`511-${JSON.stringify(["message", ...placeholders(11)])}`);
    for (let i = 0; i < 11; i++) s.send(Buffer.from([i]));
    await s.expectClosed();
  });

  ctx.test("an absurd attachment count (451000000-) closes the session", async (t) => {
    const s = await connected(t, "/");
    s.send('51000000-["x",{"_placeholder":true,"num":0}]');
    await s.expectClosed();
  });

  ctx.test("a placeholder number beyond the attachments closes the session", async (t) => {
    const s = await connected(t, "/");
    s.send('51-["message",{"_placeholder":true,"num":5}]');
    s.send(Buffer.from([1]));
    await s.expectClosed();
  });

  ctx.test("a text packet while attachments are awaited closes the session", async (t) => {
    const s = await connected(t, "/");
    s.send('51-["message",{"_placeholder":true,"num":0}]');
    s.send('2["message","x"]');
    await s.expectClosed();
  });

  ctx.test("a binary frame with no binary packet announced closes the session", async (t) => {
    const s = await connected(t, "/");
    s.send(Buffer.from([1, 2, 3]));
    await s.expectClosed();
  });

  ctx.test("ACK for an unknown id is ignored and the session stays", async (t) => {
    const s = await connected(t, "/");
    s.send('399["whatever"]');
    s.send('2["message","after"]');
    assert.deepEqual((await s.next()).data, ["message-back", "after"]);
  });

  ctx.test("server-ack: EVENT ack-request with an ack id; the ACK brings ack-response", async (t) => {
    const s = await connected(t, "/");
    s.send('2["server-ack",1,{"two":2}]');
    const req = await s.next();
    assert.equal(req.type, T.EVENT);
    assert.equal(typeof req.id, "number", "ack-request carries an ack id");
    assert.deepEqual(req.data, ["ack-request", 1, { two: 2 }]);
    s.send(`3${req.id}["r",[1]]`);
    const res = await s.next();
    assert.deepEqual([res.type, res.id, res.data], [T.EVENT, undefined, ["ack-response", "r", [1]]]);
  });

  ctx.test("server-ack answered with a BINARY_ACK: ack-response carries the attachment", async (t) => {
    const s = await connected(t, "/");
    s.send('2["server-ack"]');
    const req = await s.next();
    assert.deepEqual(req.data, ["ack-request"]);
    s.send(`61-${req.id}[{"_placeholder":true,"num":0}]`);
    s.send(Buffer.from([4, 2]));
    const res = await s.next();
    assert.equal(res.type, T.BINARY_EVENT);
    assert.equal(res.args[0], "ack-response");
    assert.deepEqual([...res.args[1]], [4, 2]);
  });

  ctx.test("server-ack not answered: ack-timeout, and a late ACK is ignored", async (t) => {
    const s = await connected(t, "/");
    s.send('2["server-ack","x"]');
    const req = await s.next();
    const start = Date.now();
    const to = await s.next(4000);
    assert.deepEqual(to.data, ["ack-timeout"]);
    const waited = Date.now() - start;
    assert.ok(waited >= 700 && waited < 3000, `ack-timeout after ${waited} ms (the timeout is 1000 ms)`);
    s.send(`3${req.id}["late"]`);
    s.send('2["message","after"]');
    assert.deepEqual((await s.next()).data, ["message-back", "after"]);
  });

  ctx.test("disconnect-me: DISCONNECT for the namespace, the connection stays usable", async (t) => {
    const s = await connected(t, "/");
    s.send('2["disconnect-me"]');
    const p = await s.next();
    assert.deepEqual([p.type, p.nsp, p.data], [T.DISCONNECT, "/", undefined]);
    const again = await s.connect("/");
    assert.equal(again.type, T.CONNECT, "the client can connect the namespace again");
  });

  ctx.test("join acks [true]; to-room reaches the room's members on other connections", async (t) => {
    const a = await connected(t, "/");
    const b = await connected(t, "/");
    a.send('21["join","r1"]');
    assert.deepEqual(await a.next().then((p) => [p.type, p.id, p.data]), [T.ACK, 1, [true]]);
    b.send('22["join","r1"]');
    assert.deepEqual(await b.next().then((p) => [p.type, p.id, p.data]), [T.ACK, 2, [true]]);
    b.send('2["to-room","r1","hi",{"n":1}]');
    for (const s of [a, b]) assert.deepEqual((await s.next()).data, ["room-message", "hi", { n: 1 }]);
  });

  ctx.test("client DISCONNECT: the namespace is left, the Engine.IO connection stays", async (t) => {
    const s = await connected(t, "/");
    s.send("1");
    // a round trip on another namespace shows the DISCONNECT was handled and the connection lives
    s.send("0/custom,");
    const r = await s.next();
    assert.deepEqual([r.type, r.nsp], [T.CONNECT, "/custom"]);
    await s.next(); // auth on /custom
    const again = await s.connect("/");
    assert.equal(again.type, T.CONNECT);
  });

  const closingPackets = [
    ["an unknown packet type (7)", "7"],
    ["an unknown packet type (9) with data", '9["x"]'],
    ["an EVENT with an object payload", '2{"a":1}'],
    ["an EVENT with a string payload", '2"message"'],
    ["an EVENT with an empty array", "2[]"],
    ["an EVENT with invalid JSON", '2["message"'],
    ['an EVENT named "disconnect" (reserved)', '2["disconnect"]'],
    ['an EVENT named "connect" (reserved)', '2["connect"]'],
    ["an ACK with an object payload", '31{"a":1}'],
    ["a CONNECT to a namespace already connected", "0"],
    ["a CONNECT_ERROR from the client", '4{"message":"x"}'],
    ["a BINARY_EVENT with a negative attachment count", '5-1-["message"]'],
    ["a BINARY_EVENT without attachment count", '5["message"]'],
    ["an empty Engine.IO message", ""],
  ];
  for (const [what, packet] of closingPackets) {
    ctx.test(`${what} closes the session`, async (t) => {
      const s = await connected(t, "/");
      s.send(packet);
      await s.expectClosed();
    });
  }

  ctx.test("an EVENT before any CONNECT closes the session", async (t) => {
    const s = await open(t);
    s.send('2["message","x"]');
    await s.expectClosed();
  });

  ctx.test("an EVENT for a namespace that is not connected closes the session", async (t) => {
    const s = await connected(t, "/");
    s.send('2/custom,["message","x"]');
    await s.expectClosed();
  });

  for (const [what, auth] of [
    ["a string", '"token"'],
    ["an array", "[1]"],
  ]) {
    ctx.test(`a CONNECT whose auth payload is ${what} closes the session`, async (t) => {
      const s = await open(t);
      s.send(`0${auth}`);
      await s.expectClosed();
    });
  }

  // rtd parses payloads with json-c at a bounded depth of 32 (the array of arguments counts as
  // one level); Node.js has no bound beyond its stack. Deeper input ends the session, as any
  // payload rtd cannot parse does.
  ctx.test("rtdOnly: a payload nested 32 deep is delivered; 33 deep closes the session", rtdOnly(), async (t) => {
    const nest = (d) => "[".repeat(d) + "]".repeat(d);
    const s = await connected(t, "/");
    s.send(`2["message",${nest(31)}]`);
    const r = await s.next();
    assert.deepEqual(r.data[0], "message-back");
    assert.equal(JSON.stringify(r.data[1]), nest(31));
    const deep = await connected(t, "/");
    deep.send(`2["message",${nest(32)}]`);
    await deep.expectClosed();
  });

  ctx.test("rtdOnly: an EVENT sent right behind its CONNECT (same TCP write) is delivered", rtdOnly(), async (t) => {
    // The reference adds the socket to the namespace asynchronously and closes the connection
    // when the EVENT comes first. Official clients wait for the CONNECT answer, so rtd may (and
    // does) simply handle packets in order.
    const s = await open(t);
    s.ws.write(Buffer.concat([encodeFrame(OP.TEXT, "40"), encodeFrame(OP.TEXT, '42["message","eager"]')]));
    const r = await s.next();
    assert.equal(r.type, T.CONNECT);
    const got = [await s.next(), await s.next()].map((p) => p.data);
    assert.deepEqual(got, [["auth", {}], ["message-back", "eager"]]);
  });
});

serverSuite("Socket.IO packets over raw long-polling", { engineOnly: false }, (ctx) => {
  const session = async () => {
    const p = new Polling(ctx.server.port, "/socket.io/");
    await p.handshake();
    return p;
  };
  // all Socket.IO packets of the next responses until n are collected (pings answered)
  const take = async (p, n) => {
    const got = [];
    while (got.length < n) got.push(...(await p.receive()));
    assert.equal(got.length, n, `packets: ${JSON.stringify(got)}`);
    return got;
  };

  ctx.test("CONNECT with auth, then an EVENT round trip", async () => {
    const p = await session();
    await p.send('40{"k":"v"}');
    const [c, auth] = await take(p, 2);
    assert.match(c, /^40\{"sid":"[^"]+"\}$/);
    assert.deepEqual(decodeSio(auth.slice(1)).data, ["auth", { k: "v" }]);
    await p.send('42["message","polling","ü"]', '42["message",2]');
    const packets = await take(p, 2);
    assert.deepEqual(packets.map((x) => decodeSio(x.slice(1)).data), [["message-back", "polling", "ü"], ["message-back", 2]]);
  });

  ctx.test("binary attachments travel as b+base64 packets in the same payload", async () => {
    const p = await session();
    await p.send("40");
    await take(p, 2);
    await p.send('451-["message",{"_placeholder":true,"num":0},"s"]', "bAQID");
    const [head, att] = await take(p, 2);
    const d = decodeSio(head.slice(1));
    assert.equal(d.type, T.BINARY_EVENT);
    assert.equal(d.attachments, 1);
    assert.deepEqual(d.data, ["message-back", { _placeholder: true, num: 0 }, "s"]);
    assert.equal(att, "bAQID");
  });

  ctx.test("no CONNECT within connectTimeout: the pending GET gets a close packet", async () => {
    const p = await session();
    const start = Date.now();
    let packets;
    for (;;) {
      packets = await p.getPackets({ timeout: 4000 });
      if (packets.includes("2")) await p.send("3");
      if (packets.some((x) => x !== "2")) break;
    }
    assert.deepEqual(packets.filter((x) => x !== "2" && x !== "6"), ["1"]);
    const waited = Date.now() - start;
    assert.ok(waited >= 700 && waited < 3000, `closed after ${waited} ms (connectTimeout is 1000 ms)`);
    await assertSessionGone(p);
  });

  ctx.test("an invalid Socket.IO packet ends the session: the next GET gets the close packet", async () => {
    const p = await session();
    await p.send("40");
    await take(p, 2);
    await p.post("4hello"); // not a Socket.IO packet
    const res = await p.get({ timeout: 3000 });
    if (res.status === 200) {
      // the reference answers "6\x1e1" (noop + close) to the GET that finds the session closing
      assert.equal(res.text.split("\x1e").filter((x) => x !== "6").join(), "1");
    } else {
      assert.equal(res.status, 400);
    }
    await assertSessionGone(p);
  });

  ctx.test("disconnect-me over polling: DISCONNECT packet 41", async () => {
    const p = await session();
    await p.send("40");
    await take(p, 2);
    await p.send('42["disconnect-me"]');
    assert.deepEqual(await take(p, 1), ["41"]);
  });
});
