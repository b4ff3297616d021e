#!/usr/bin/env node
// The reference conformance server: the behaviour tests/conformance-server (C) must reproduce,
// built on the Node.js socket.io 4.8 server (and the engine.io server it depends on).
//
//   node js/ref/conformance-ref.mjs --port N [--engine-only] [--allow-eio3]
//
// Default mode: Socket.IO at /socket.io/ (the server of the Socket.IO v5 protocol test suite plus
// the extra events below). --engine-only: plain Engine.IO at /engine.io/ echoing every message.
// Both: pingInterval 300 ms, pingTimeout 200 ms, maxPayload (maxHttpBufferSize) 1 000 000 bytes,
// CORS reflecting any Origin with credentials. --allow-eio3: also accept Engine.IO v3 sessions
// (socket.io-client 2.x; engine.io's allowEIO3), in both modes. It listens on 127.0.0.1, prints
// one line "listening on 127.0.0.1:N" on stdout, and exits 0 on SIGTERM or SIGINT.
//
// Events on "/" (default mode):
//   on connection          emit "auth" with socket.handshake.auth (also on "/custom")
//   "message" ...args      emit "message-back" ...args (binary included)
//   "message-with-ack" ... ack(...args)
//   "server-ack" ...args   emit "ack-request" ...args with an ack callback and a 1000 ms timeout;
//                          the client's ack values come back as "ack-response" ...values,
//                          a timeout as "ack-timeout" (no arguments)
//   "disconnect-me"        socket.disconnect() (DISCONNECT packet for "/", connection kept)
//   "join" room            joins room (a string) and acks true; a non-string room acks false
//   "to-room" room ...args emit "room-message" ...args to every socket of room on "/"
// A trailing ack callback the client attached to an event that does not use one is ignored.

import http from "node:http";
import { Server as IoServer } from "socket.io";
import { Server as EngineServer } from "engine.io";

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const CONNECT_TIMEOUT = 1000;
const SERVER_ACK_TIMEOUT = 1000;

function usage(msg) {
  process.stderr.write(`conformance-ref: ${msg}\nusage: conformance-ref.mjs --port N [--engine-only] [--allow-eio3]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: null, engineOnly: false, allowEio3: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--engine-only") opts.engineOnly = true;
    else if (a === "--allow-eio3") opts.allowEio3 = true;
    else if (a === "--port") {
      const v = argv[++i];
      if (v === undefined || !/^\d+$/.test(v) || Number(v) > 65535) usage("--port needs a number 0-65535");
      opts.port = Number(v);
    } else if (a.startsWith("--port=")) {
      const v = a.slice("--port=".length);
      if (!/^\d+$/.test(v) || Number(v) > 65535) usage("--port needs a number 0-65535");
      opts.port = Number(v);
    } else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (opts.port === null) usage("--port is required");
  return opts;
}

const cors = { origin: true, credentials: true };

// Drops a trailing ack callback: used for events whose contract takes no ack.
function withoutAck(args) {
  return args.length > 0 && typeof args[args.length - 1] === "function" ? args.slice(0, -1) : args;
}

function startSocketIo(httpServer, allowEIO3) {
  const io = new IoServer(httpServer, {
    path: "/socket.io/",
    serveClient: false,
    pingInterval: PING_INTERVAL,
    pingTimeout: PING_TIMEOUT,
    maxHttpBufferSize: MAX_PAYLOAD,
    connectTimeout: CONNECT_TIMEOUT,
    cors,
    allowEIO3,
  });
  const root = io.of("/");

  io.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);

    socket.on("message", (...args) => {
      socket.emit("message-back", ...withoutAck(args));
    });

    socket.on("message-with-ack", (...args) => {
      if (args.length === 0 || typeof args[args.length - 1] !== "function") return;
      const ack = args.pop();
      ack(...args);
    });

    socket.on("server-ack", (...args) => {
      socket.timeout(SERVER_ACK_TIMEOUT).emit("ack-request", ...withoutAck(args), (err, ...values) => {
        if (err) socket.emit("ack-timeout");
        else socket.emit("ack-response", ...values);
      });
    });

    socket.on("disconnect-me", () => {
      socket.disconnect();
    });

    socket.on("join", (room, ack) => {
      const ok = typeof room === "string";
      if (ok) socket.join(room);
      if (typeof ack === "function") ack(ok);
    });

    socket.on("to-room", (room, ...rest) => {
      if (typeof room !== "string") return;
      root.to(room).emit("room-message", ...withoutAck(rest));
    });
  });

  io.of("/custom").on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
  });

  return () => io.close();
}

function startEngine(httpServer, allowEIO3) {
  const engine = new EngineServer({
    pingInterval: PING_INTERVAL,
    pingTimeout: PING_TIMEOUT,
    maxHttpBufferSize: MAX_PAYLOAD,
    cors,
    allowEIO3,
  });
  engine.attach(httpServer, { path: "/engine.io/" });
  engine.on("connection", (socket) => {
    socket.on("message", (data) => socket.send(data));
  });
  return () => engine.close();
}

const opts = parseArgs(process.argv.slice(2));

// Requests outside the Engine.IO path get a 404 (engine.io passes them to the listeners that were
// registered before it attached).
const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("Not Found");
});

const closeProtocol = opts.engineOnly ? startEngine(httpServer, opts.allowEio3) : startSocketIo(httpServer, opts.allowEio3);

httpServer.on("error", (err) => {
  process.stderr.write(`conformance-ref: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(opts.port, "127.0.0.1", () => {
  const { port } = httpServer.address();
  process.stdout.write(`listening on 127.0.0.1:${port} (${opts.engineOnly ? "engine.io" : "socket.io"})\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`conformance-ref: ${signal}, stopping\n`);
  try {
    closeProtocol();
  } catch (err) {
    process.stderr.write(`conformance-ref: close: ${err.message}\n`);
  }
  httpServer.closeAllConnections?.();
  httpServer.close(() => process.exit(0));
  // Open upgraded sockets are not tracked by the HTTP server: do not wait for them forever.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
