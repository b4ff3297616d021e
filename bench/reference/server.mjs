#!/usr/bin/env node
// The Node.js reference for bench/run.sh: socket.io 4.8 (installed here with `npm ci`) serving
// rtd's platform events on "/" with the same wire format, and no database.
//
//   node bench/reference/server.mjs [--port N] [--ping-interval MS] [--ping-timeout MS]
//                                   [--presence on|off] [--max-payload BYTES] [--redis URL]
//
//   identify {userId, platform, appVersion} -> "identified" {socketId, userId, platform}
//                                              (and the same in the ack)
//   join / leave {room} or "room"           -> ack {ok:true}
//   send-message {sender, text, platform?, room?}
//       -> receive-message {id, socketId, sender, text, platform, room, createdAt} to everyone
//          (or the room), then ack {ok:true, id, createdAt}; ids count up from 1
//   user-connected / user-disconnected {socketId, totalConnections} unless --presence off
// Validation follows rtd's rules on types and lengths (sender <= 100 characters, text <= 10 000
// bytes, room 1..128 bytes) and answers {ok:false, error, code} the same way. Socket.IO's
// defaults otherwise: no per-message deflate, no rate limit. It prints "listening on PORT" once
// ready and exits on SIGTERM/SIGINT. --redis URL makes it one node of a cluster with
// @socket.io/redis-adapter 8.3 (classic), as rtd --redis (bench/run.sh's cluster step).

import http from "node:http";
import { Server } from "socket.io";

function usage(msg) {
  process.stderr.write(`server.mjs: ${msg}\n`);
  process.exit(2);
}

const opts = { port: 3001, pingInterval: 25000, pingTimeout: 20000, presence: true, maxPayload: 1000000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = argv[i + 1];
  const num = (name) => {
    if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a number`);
    i++;
    return Number(v);
  };
  if (a === "--port") opts.port = num(a);
  else if (a === "--ping-interval") opts.pingInterval = num(a);
  else if (a === "--ping-timeout") opts.pingTimeout = num(a);
  else if (a === "--max-payload") opts.maxPayload = num(a);
  else if (a === "--redis") {
    if (!v) usage("--redis needs a URL");
    opts.redis = v;
    i++;
  }
  else if (a === "--presence") {
    if (v !== "on" && v !== "off") usage("--presence needs on or off");
    opts.presence = v === "on";
    i++;
  } else usage(`unknown argument ${JSON.stringify(a)}`);
}

const MAX_SENDER_CHARS = 100;
const MAX_TEXT_BYTES = 10000;
const MAX_ROOM_BYTES = 128;
const PLATFORM_RE = /^[a-z0-9._-]{1,32}$/;

const httpServer = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok", connections: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("Not Found");
});

const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
});
if (opts.redis) {
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { createClient } = await import("redis");
  const pub = createClient({ url: opts.redis });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}
const root = io.of("/");

let nextId = 1;

const refuse = (socket, ack, code, error) => {
  if (typeof ack === "function") ack({ ok: false, error, code });
  else socket.emit("error", { code, message: error });
};

const roomOf = (arg) => {
  const room = typeof arg === "string" ? arg : arg && typeof arg === "object" ? arg.room : undefined;
  if (typeof room !== "string") return null;
  const n = Buffer.byteLength(room);
  return n >= 1 && n <= MAX_ROOM_BYTES ? room : null;
};

const presence = (event, socket) => {
  if (!opts.presence) return;
  socket.broadcast.emit(event, { socketId: socket.id, totalConnections: root.sockets.size });
};

root.on("connection", (socket) => {
  let platform = "unknown";
  let userId = null;
  presence("user-connected", socket);

  socket.on("identify", (data, ack) => {
    if (!data || typeof data !== "object") return refuse(socket, ack, "invalid_payload", "identify expects {userId, platform, appVersion}");
    if (data.userId !== undefined && data.userId !== null) {
      const u = typeof data.userId === "number" ? String(data.userId) : data.userId;
      if (typeof u !== "string" || u.length === 0 || Buffer.byteLength(u) > 128)
        return refuse(socket, ack, "invalid_user_id", "userId must be a string of 1 to 128 bytes");
      userId = u;
    }
    if (data.platform !== undefined && data.platform !== null) {
      const p = typeof data.platform === "string" ? data.platform.toLowerCase() : null;
      if (!p || !PLATFORM_RE.test(p))
        return refuse(socket, ack, "invalid_platform", "platform must be a short token such as flutter, laravel or web");
      platform = p;
    }
    const out = { socketId: socket.id, userId, platform };
    socket.emit("identified", out);
    if (typeof ack === "function") ack(out);
  });

  socket.on("join", (arg, ack) => {
    const room = roomOf(arg);
    if (!room) return refuse(socket, ack, "invalid_room", "join expects {room} with a room of 1 to 128 bytes");
    socket.join(room);
    if (typeof ack === "function") ack({ ok: true });
  });

  socket.on("leave", (arg, ack) => {
    const room = roomOf(arg);
    if (!room) return refuse(socket, ack, "invalid_room", "leave expects {room} with a room of 1 to 128 bytes");
    socket.leave(room);
    if (typeof ack === "function") ack({ ok: true });
  });

  socket.on("send-message", (data, ack) => {
    if (!data || typeof data !== "object") return refuse(socket, ack, "invalid_payload", "send-message expects {sender, text, platform, room}");
    const { sender, text } = data;
    if (typeof sender !== "string" || sender.length === 0 || [...sender].length > MAX_SENDER_CHARS)
      return refuse(socket, ack, "invalid_sender", "sender must be a non-empty string of at most 100 characters");
    if (typeof text !== "string" || text.length === 0) return refuse(socket, ack, "invalid_text", "text must be a non-empty string");
    if (Buffer.byteLength(text) > MAX_TEXT_BYTES) return refuse(socket, ack, "text_too_long", `text is longer than ${MAX_TEXT_BYTES} bytes`);
    let plat = platform;
    if (data.platform !== undefined && data.platform !== null) {
      const p = typeof data.platform === "string" ? data.platform.toLowerCase() : null;
      if (!p || !PLATFORM_RE.test(p)) return refuse(socket, ack, "invalid_platform", "platform must be a short token");
      plat = p;
    }
    let room = null;
    if (data.room !== undefined && data.room !== null) {
      room = roomOf(data.room);
      if (!room || typeof data.room !== "string") return refuse(socket, ack, "invalid_room", "room must be a string of 1 to 128 bytes");
    }
    const id = nextId++;
    const createdAt = new Date().toISOString();
    const msg = { id, socketId: socket.id, sender, text, platform: plat, room, createdAt };
    if (room) root.to(room).emit("receive-message", msg);
    else root.emit("receive-message", msg);
    if (typeof ack === "function") ack({ ok: true, id, createdAt });
  });

  socket.on("disconnect", () => presence("user-disconnected", socket));
});

httpServer.on("error", (err) => {
  process.stderr.write(`server.mjs: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(opts.port, () => {
  process.stdout.write(`listening on ${httpServer.address().port}\n`);
});

let stopping = false;
const stop = () => {
  if (stopping) process.exit(0);
  stopping = true;
  io.close();
  httpServer.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
