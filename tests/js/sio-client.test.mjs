// The official socket.io-client 4.8 against the server under test, over WebSocket only, HTTP
// long-polling only, and the default (polling, then upgrade to WebSocket).

import assert from "node:assert/strict";
import { Manager, io } from "socket.io-client";
import { IS_REF, serverSuite } from "./lib/server.mjs";
import { collect, nextEvent, within } from "./lib/util.mjs";

const TRANSPORTS = [
  { name: "websocket", transports: ["websocket"] },
  { name: "polling", transports: ["polling"] },
  { name: "default (polling then upgrade)", transports: undefined },
];

// Binary values become Buffers, so that received data compares with what was sent.
function norm(v) {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

function hasBuffer(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return true;
  if (Array.isArray(v)) return v.some(hasBuffer);
  if (v && typeof v === "object") return Object.values(v).some(hasBuffer);
  return false;
}

// Emits ev with args and an ack callback; resolves to the list of the ack's arguments.
function emitAck(socket, ev, ...args) {
  return within(new Promise((resolve) => socket.emit(ev, ...args, (...res) => resolve(res))), 10000, `the ack of "${ev}"`);
}

const bytes = (n, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

// Argument lists sent with "message" and "message-with-ack".
const PAYLOADS = {
  "a string": ["hello"],
  "an empty string": [""],
  numbers: [0, 1, -1, 42.5, -0.125, 1e21, 2 ** 53 - 1, Number.MIN_SAFE_INTEGER],
  "booleans and null": [true, false, null],
  "an object": [{ a: 1, b: "two", c: [1, 2, { d: null }], e: { f: { g: true } } }],
  "several arguments of mixed types": ["x", 1, { y: [true] }, [1, "2", null]],
  "unicode (accents, emoji, CJK, RTL)": ["héllo wörld", "😀🎉👍🏽", "日本語のテキスト", "中文字符", "한국어", "مرحبا", "a\u0000b\u001ec\u001fd\n\t\"\\"],
  "unicode object keys": [{ "clé": "valeur", "キー": "値", "🔑": "🚪" }],
  "a binary Buffer": [bytes(256)],
  "an empty Buffer": [Buffer.alloc(0)],
  "a Uint8Array": [new Uint8Array([1, 2, 3, 255])],
  "several binary attachments": [bytes(10, 1), "between", bytes(20, 2), bytes(30, 3)],
  "binary nested in objects and arrays": [{ file: { name: "a.bin", data: bytes(64, 5) }, parts: [bytes(3, 9), { deep: [bytes(5, 11)] }] }],
};

for (const { name, transports } of TRANSPORTS) {
  serverSuite(`socket.io-client 4.8 over ${name}`, {}, (ctx) => {
    // Creates a client (own Manager, no automatic reconnection) that is closed after the test.
    function client(t, nsp = "/", opts = {}) {
      const socket = io(ctx.server.url + nsp, {
        forceNew: true,
        reconnection: false,
        timeout: 5000,
        ...(transports ? { transports } : {}),
        ...opts,
      });
      t.after(() => {
        socket.disconnect();
        socket.io.engine?.close();
      });
      return socket;
    }

    function connected(socket, ms = 5000) {
      if (socket.connected) return Promise.resolve();
      return within(
        new Promise((resolve, reject) => {
          socket.once("connect", resolve);
          socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
        }),
        ms,
        "connect",
      );
    }

    // A connected client whose "auth" event has arrived; returns { socket, auth }.
    async function connect(t, nsp = "/", opts = {}) {
      const socket = client(t, nsp, opts);
      const auth = collect(socket, "auth");
      await connected(socket);
      const [payload] = await auth.next();
      auth.stop();
      return { socket, auth: payload };
    }

    // Waits for the transport to be WebSocket in the default mode, to check the upgrade happened.
    async function upgraded(socket) {
      const engine = socket.io.engine;
      if (engine.transport.name === "websocket") return;
      await within(new Promise((resolve) => engine.once("upgrade", resolve)), 5000, "the upgrade to WebSocket");
    }

    ctx.test("connects, and the auth payload comes back in the auth event", async (t) => {
      const authPayload = { token: "abc-123", user: { id: 7, name: "Zoë" }, list: [1, "2"] };
      const { socket, auth } = await connect(t, "/", { auth: authPayload });
      assert.deepEqual(auth, authPayload);
      assert.equal(typeof socket.id, "string");
      assert.ok(socket.id.length > 0);
      assert.notEqual(socket.id, socket.io.engine.id, "the Socket.IO id differs from the Engine.IO sid");
      if (transports) assert.equal(socket.io.engine.transport.name, transports[0]);
      else await upgraded(socket);
    });

    ctx.test("without auth the auth event carries an empty object", async (t) => {
      const { auth } = await connect(t);
      assert.deepEqual(auth, {});
    });

    ctx.test('"/custom" is multiplexed on the same connection as "/", each with its own auth', async (t) => {
      const manager = new Manager(ctx.server.url, {
        reconnection: false,
        timeout: 5000,
        ...(transports ? { transports } : {}),
      });
      const root = manager.socket("/", { auth: { ns: "root" } });
      const custom = manager.socket("/custom", { auth: { ns: "custom" } });
      t.after(() => {
        root.disconnect();
        custom.disconnect();
        manager.engine?.close();
      });
      const rootAuth = collect(root, "auth");
      const customAuth = collect(custom, "auth");
      root.connect();
      custom.connect();
      await Promise.all([connected(root), connected(custom)]);
      assert.deepEqual((await rootAuth.next())[0], { ns: "root" });
      assert.deepEqual((await customAuth.next())[0], { ns: "custom" });
      assert.equal(root.io, custom.io, "one Manager");
      assert.ok(manager.engine.id, "one Engine.IO session");
      assert.notEqual(root.id, custom.id);
      // "/" still answers on the shared connection
      const back = nextEvent(root, "message-back");
      root.emit("message", "still here");
      assert.deepEqual(await back, ["still here"]);
      // no "message" handler on "/custom": nothing comes back there, "/" keeps working
      custom.emit("message", "ignored");
      const back2 = nextEvent(root, "message-back");
      root.emit("message", "after custom");
      assert.deepEqual(await back2, ["after custom"]);
    });

    for (const [what, args] of Object.entries(PAYLOADS)) {
      ctx.test(`message → message-back with ${what}`, async (t) => {
        const { socket } = await connect(t);
        const back = nextEvent(socket, "message-back");
        socket.emit("message", ...args);
        const got = await back;
        assert.deepEqual(norm(got), norm(args));
        if (hasBuffer(args)) assert.ok(hasBuffer(got), "binary stays binary");
      });
    }

    ctx.test("message → message-back with a lone UTF-16 surrogate in a string", async (t) => {
      // JSON.stringify writes "\ud800" as an escape. The reference hands it back unchanged;
      // rtd keeps text as UTF-8, where a lone surrogate cannot exist, so it comes back as
      // U+FFFD (the documented difference; the rest of the string is intact).
      const { socket } = await connect(t);
      const back = nextEvent(socket, "message-back");
      socket.emit("message", "a\ud800b", "\udfff");
      assert.deepEqual(await back, IS_REF ? ["a\ud800b", "\udfff"] : ["a\ufffdb", "\ufffd"]);
    });

    ctx.test("message-back events keep their order", async (t) => {
      const { socket } = await connect(t);
      const backs = collect(socket, "message-back");
      for (let i = 0; i < 100; i++) socket.emit("message", i, i % 10 === 0 ? bytes(4, i) : `s${i}`);
      const got = await backs.waitCount(100);
      got.forEach((args, i) => assert.deepEqual(norm(args), norm([i, i % 10 === 0 ? bytes(4, i) : `s${i}`])));
    });

    ctx.test("message-with-ack is acknowledged with its arguments (text)", async (t) => {
      const { socket } = await connect(t);
      const args = ["one", 2, { three: [3] }, "😀"];
      const res = await emitAck(socket, "message-with-ack", ...args);
      assert.deepEqual(res, args);
    });

    ctx.test("message-with-ack is acknowledged with its arguments (binary)", async (t) => {
      const { socket } = await connect(t);
      const args = [bytes(100), "mid", { nested: bytes(7, 3) }];
      const res = await emitAck(socket, "message-with-ack", ...args);
      assert.deepEqual(norm(res), norm(args));
      assert.ok(Buffer.isBuffer(norm(res[0])));
    });

    ctx.test("message-with-ack with no arguments acks with none", async (t) => {
      const { socket } = await connect(t);
      const res = await emitAck(socket, "message-with-ack");
      assert.deepEqual(res, []);
    });

    ctx.test("concurrent acks are matched to their emits", async (t) => {
      const { socket } = await connect(t);
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => emitAck(socket, "message-with-ack", i, `v${i}`)),
      );
      results.forEach((r, i) => assert.deepEqual(r, [i, `v${i}`]));
    });

    ctx.test("server-to-client ack: ack-request, client acks, ack-response carries the values", async (t) => {
      const { socket } = await connect(t);
      const requests = collect(socket, "ack-request");
      const response = nextEvent(socket, "ack-response");
      socket.on("ack-request", (...args) => {
        const cb = args.pop();
        assert.equal(typeof cb, "function", "ack-request comes with an ack id");
        cb("got", args.length, { echoed: args });
      });
      socket.emit("server-ack", 1, "two", { three: 3 });
      const [reqArgs] = await requests.waitCount(1);
      assert.deepEqual(reqArgs.slice(0, -1), [1, "two", { three: 3 }]);
      assert.deepEqual(await response, ["got", 3, { echoed: [1, "two", { three: 3 }] }]);
    });

    ctx.test("server-to-client ack with binary values", async (t) => {
      const { socket } = await connect(t);
      socket.on("ack-request", (...args) => {
        const cb = args.pop();
        cb(bytes(33, 4), { b: args[0] });
      });
      const response = nextEvent(socket, "ack-response");
      socket.emit("server-ack", bytes(12, 8));
      const got = await response;
      assert.deepEqual(norm(got), norm([bytes(33, 4), { b: bytes(12, 8) }]));
    });

    ctx.test("server-to-client ack not answered: ack-timeout after about 1000 ms", async (t) => {
      const { socket } = await connect(t);
      const responses = collect(socket, "ack-response");
      let requested = 0;
      socket.on("ack-request", () => {
        requested++; // never acknowledged
      });
      const start = Date.now();
      const timeout = nextEvent(socket, "ack-timeout", 5000);
      socket.emit("server-ack", "please");
      const args = await timeout;
      const elapsed = Date.now() - start;
      assert.deepEqual(args, []);
      assert.equal(requested, 1);
      assert.equal(responses.items.length, 0);
      assert.ok(elapsed >= 700 && elapsed < 3000, `ack-timeout came after ${elapsed} ms (the timeout is 1000 ms)`);
    });

    ctx.test("a payload close to maxPayload (900 000 characters) goes both ways", async (t) => {
      const { socket } = await connect(t);
      const big = "x".repeat(450000) + "é".repeat(10) + "y".repeat(449990);
      const back = nextEvent(socket, "message-back", 10000);
      socket.emit("message", big);
      const [got] = await back;
      assert.equal(got.length, big.length);
      assert.ok(got === big, "900 000-character string comes back unchanged");
    });

    if (transports && transports[0] === "websocket") {
      ctx.test("a binary payload close to maxPayload (900 000 bytes) goes both ways", async (t) => {
        const { socket } = await connect(t);
        const big = bytes(900000, 17);
        const res = await emitAck(socket, "message-with-ack", big);
        assert.ok(norm(res[0]).equals(big));
      });
    }

    ctx.test("client disconnect() then connect() reconnects", async (t) => {
      const authPayload = { again: true };
      const socket = client(t, "/", { auth: authPayload });
      const auths = collect(socket, "auth");
      await connected(socket);
      await auths.waitCount(1);
      const firstId = socket.id;
      const disc = nextEvent(socket, "disconnect");
      socket.disconnect();
      assert.equal((await disc)[0], "io client disconnect");
      assert.equal(socket.connected, false);
      socket.connect();
      await connected(socket);
      await auths.waitCount(2);
      assert.deepEqual(auths.items[1][0], authPayload);
      assert.notEqual(socket.id, firstId, "a new Socket.IO session");
      const back = nextEvent(socket, "message-back");
      socket.emit("message", "after reconnect");
      assert.deepEqual(await back, ["after reconnect"]);
    });

    ctx.test('server-side disconnect-me: the client gets "io server disconnect" and does not reconnect by itself', async (t) => {
      const { socket } = await connect(t, "/", { reconnection: true, reconnectionDelay: 50 });
      const disc = nextEvent(socket, "disconnect");
      socket.emit("disconnect-me");
      const [reason] = await disc;
      assert.equal(reason, "io server disconnect");
      assert.equal(socket.connected, false);
      assert.equal(socket.active, false, "no automatic reconnection after a server disconnect");
      // the client may connect again on its own initiative
      const auth = nextEvent(socket, "auth");
      socket.connect();
      await connected(socket);
      await auth;
      const back = nextEvent(socket, "message-back");
      socket.emit("message", "back again");
      assert.deepEqual(await back, ["back again"]);
    });

    ctx.test('disconnect-me leaves only "/": "/custom" on the same connection stays connected', async (t) => {
      const manager = new Manager(ctx.server.url, { reconnection: false, timeout: 5000, ...(transports ? { transports } : {}) });
      const root = manager.socket("/");
      const custom = manager.socket("/custom");
      t.after(() => {
        root.disconnect();
        custom.disconnect();
        manager.engine?.close();
      });
      const rootAuth = nextEvent(root, "auth");
      const customAuth = nextEvent(custom, "auth");
      root.connect();
      custom.connect();
      await Promise.all([connected(root), connected(custom), rootAuth, customAuth]);
      const engineId = manager.engine.id;
      const customDisc = collect(custom, "disconnect");
      const disc = nextEvent(root, "disconnect");
      root.emit("disconnect-me");
      assert.equal((await disc)[0], "io server disconnect");
      // reconnecting "/" goes over the same Engine.IO session, which was never closed
      const again = nextEvent(root, "auth");
      root.connect();
      await connected(root);
      await again;
      assert.equal(manager.engine.id, engineId, "same Engine.IO session");
      assert.equal(custom.connected, true);
      assert.equal(customDisc.items.length, 0, `"/custom" was disconnected: ${customDisc.items}`);
    });

    ctx.test('an unknown namespace gives connect_error "Invalid namespace"', async (t) => {
      const socket = client(t, "/does-not-exist");
      const err = await within(
        new Promise((resolve, reject) => {
          socket.once("connect_error", resolve);
          socket.once("connect", () => reject(new Error("connected to an unknown namespace")));
        }),
        5000,
        "connect_error",
      );
      assert.equal(err.message, "Invalid namespace");
      assert.equal(socket.connected, false);
    });

    ctx.test("rooms: join acks true, to-room reaches exactly the room's members (sender included)", async (t) => {
      const [a, b, c] = (await Promise.all([connect(t), connect(t), connect(t)])).map((x) => x.socket);
      const join = (s, room) => emitAck(s, "join", room);
      assert.deepEqual(await join(a, "room-ab"), [true]);
      assert.deepEqual(await join(b, "room-ab"), [true]);
      assert.deepEqual(await join(c, "room-c"), [true]);
      const ra = collect(a, "room-message");
      const rb = collect(b, "room-message");
      const rc = collect(c, "room-message");
      a.emit("to-room", "room-ab", "hello", { n: 1 }, bytes(5, 2));
      // sentinels: c's first room-message must be its own room's; a and b get "end" after "hello"
      a.emit("to-room", "room-c", "sentinel");
      a.emit("to-room", "room-ab", "end");
      await rc.waitCount(1);
      await ra.waitCount(2);
      await rb.waitCount(2);
      const expected = [norm(["hello", { n: 1 }, bytes(5, 2)]), ["end"]];
      assert.deepEqual(ra.items.map(norm), expected);
      assert.deepEqual(rb.items.map(norm), expected);
      assert.deepEqual(rc.items, [["sentinel"]]);
    });

    ctx.test("rooms: to-room for a room nobody joined reaches nobody", async (t) => {
      const { socket } = await connect(t);
      assert.deepEqual(await emitAck(socket, "join", "mine"), [true]);
      const rm = collect(socket, "room-message");
      socket.emit("to-room", "empty-room", "lost");
      socket.emit("to-room", "mine", "kept");
      await rm.waitCount(1);
      assert.deepEqual(rm.items, [["kept"]]);
    });

    // 50 clients, except over long-polling only: there every poll is a new TCP connection (the
    // client's default), and 50 clients with pings every 300 ms and a 200 ms pong deadline load
    // this 2-core machine enough for the reference server itself to miss pongs now and then.
    // Clients join in waves of 10 (in the default mode each wave upgrades before the next one
    // comes), so that the test is about isolation, not about a burst of handshakes.
    const MANY = transports && transports[0] === "polling" ? 20 : 50;
    ctx.test(`${MANY} concurrent clients each get only their own echoes`, { timeout: 40000 }, async (t) => {
      const PER = 5;
      const clients = [];
      while (clients.length < MANY) {
        const wave = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const socket = client(t);
            const disconnects = collect(socket, "disconnect");
            await connected(socket);
            if (!transports) await upgraded(socket);
            return { socket, disconnects };
          }),
        );
        clients.push(...wave);
      }
      const why = ({ socket, disconnects }) =>
        `disconnects: ${disconnects.items.map((d) => `${d[0]} ${d[1]?.description?.message ?? d[1]?.description ?? ""}`).join("; ") || "none"}; ` +
        `connected ${socket.connected}, Engine.IO ${socket.io.engine.readyState} over ${socket.io.engine.transport?.name}`;
      const results = await Promise.all(
        clients.map(async (c, i) => {
          const { socket } = c;
          const backs = collect(socket, "message-back");
          for (let k = 0; k < PER; k++) socket.emit("message", `c${i}`, k, k === 2 ? bytes(8, i) : null);
          try {
            await backs.waitCount(PER, 15000);
            // a final round trip: anything still in flight would have arrived before its answer
            assert.deepEqual(await emitAck(socket, "message-with-ack", "done"), ["done"]);
          } catch (err) {
            throw new Error(`client ${i}: ${err.message}; ${why(c)}`);
          }
          return backs.items;
        }),
      );
      results.forEach((items, i) => {
        assert.equal(items.length, PER, `client ${i} got ${items.length} echoes`);
        items.forEach((args, k) => assert.deepEqual(norm(args), norm([`c${i}`, k, k === 2 ? bytes(8, i) : null])));
      });
    });
  });
}
