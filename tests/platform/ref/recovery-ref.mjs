#!/usr/bin/env node
// The Node.js reference for connection-state recovery: the part of rtd's platform protocol
// that recovery touches, on the Node.js socket.io 4.8 server with connectionStateRecovery,
// so that tests/platform/recovery-ref.test.mjs runs the same cases against rtd and Node.js.
//
//   node platform/ref/recovery-ref.mjs --port N [--window MS] [--auth-secret FILE]
//                                      [--ping-interval MS] [--ping-timeout MS]
//
// --window MS: connectionStateRecovery { maxDisconnectionDuration: MS } (skipMiddlewares is
// left at its default, true); 0 or absent: recovery off, as rtd without --recovery-window.
// --auth-secret FILE: an io.use() middleware that wants an HS256 JWT in auth.token (with a
// sub, exp/nbf honoured), as rtd's --auth-secret; it refuses with "unauthorized".
// Events on "/" (rtd's, README "Events"; presence is off, as rtd --presence off):
//   send-message {sender, text, room?}  broadcasts receive-message {id, socketId, sender, text,
//                                       platform, room, createdAt} to everyone or to the room,
//                                       acks {ok:true, id, createdAt}
//   join {room} / leave {room}          acks {ok:true}
//   identify {userId?, platform?}       acks {socketId, userId, platform}; kept in socket.data,
//                                       which recovery restores
// It listens on 127.0.0.1, prints "listening on 127.0.0.1:N", and exits 0 on SIGTERM.

import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { Server } from "socket.io";

function usage(msg) {
  process.stderr.write(`recovery-ref: ${msg}\n`);
  process.exit(2);
}

const opts = { port: null, window: 0, secret: null, pingInterval: 25000, pingTimeout: 20000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const num = () => {
    const v = argv[++i];
    if (v === undefined || !/^\d{1,9}$/.test(v)) usage(`${a} needs a number`);
    return Number(v);
  };
  if (a === "--port") opts.port = num();
  else if (a === "--window") opts.window = num();
  else if (a === "--ping-interval") opts.pingInterval = num();
  else if (a === "--ping-timeout") opts.pingTimeout = num();
  else if (a === "--auth-secret") {
    const f = argv[++i];
    if (!f) usage("--auth-secret needs a file");
    opts.secret = readFileSync(f, "utf8").replace(/[\r\n]+$/, "");
  } else usage(`unknown argument ${JSON.stringify(a)}`);
}
if (opts.port === null || opts.port > 65535) usage("--port N is required");

// The subject of a valid HS256 token, or null.
function verify(token) {
  if (typeof token !== "string" || token.length > 8192) return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  let head, body;
  try {
    head = JSON.parse(Buffer.from(parts[0], "base64url").toString());
    body = JSON.parse(Buffer.from(parts[1], "base64url").toString());
  } catch {
    return null;
  }
  if (head?.alg !== "HS256") return null;
  const want = crypto.createHmac("sha256", opts.secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], "base64url");
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  const now = Date.now() / 1000;
  if (body.exp !== undefined && !(body.exp > now)) return null;
  if (body.nbf !== undefined && body.nbf > now) return null;
  return typeof body.sub === "string" && body.sub ? body.sub : null;
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  ...(opts.window ? { connectionStateRecovery: { maxDisconnectionDuration: opts.window } } : {}),
});

if (opts.secret) {
  io.use((socket, next) => {
    const sub = verify(socket.handshake.auth?.token);
    if (!sub) return next(new Error("unauthorized"));
    socket.data.userId = sub;
    next();
  });
}

let nextId = 1;
const ackFn = (args) => (typeof args[args.length - 1] === "function" ? args[args.length - 1] : () => {});
const roomOf = (x) => (typeof x === "string" ? x : x && typeof x.room === "string" ? x.room : null);

io.on("connection", (socket) => {
  if (!socket.recovered) socket.data.platform ??= "unknown";
  socket.on("identify", (who, ...rest) => {
    if (who && typeof who.userId === "string") socket.data.userId = who.userId;
    if (who && typeof who.platform === "string") socket.data.platform = who.platform;
    ackFn(rest)({ socketId: socket.id, userId: socket.data.userId ?? null, platform: socket.data.platform });
  });
  socket.on("join", (r, ...rest) => {
    socket.join(roomOf(r));
    ackFn(rest)({ ok: true });
  });
  socket.on("leave", (r, ...rest) => {
    socket.leave(roomOf(r));
    ackFn(rest)({ ok: true });
  });
  socket.on("send-message", (m, ...rest) => {
    const id = nextId++;
    const createdAt = new Date().toISOString();
    const room = typeof m?.room === "string" ? m.room : null;
    const msg = { id, socketId: socket.id, sender: m.sender, text: m.text, platform: socket.data.platform, room, createdAt };
    (room ? io.to(room) : io).emit("receive-message", msg);
    ackFn(rest)({ ok: true, id, createdAt });
  });
});

httpServer.listen(opts.port, "127.0.0.1", () => {
  process.stdout.write(`listening on 127.0.0.1:${httpServer.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
