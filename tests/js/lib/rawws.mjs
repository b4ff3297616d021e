// A raw WebSocket client on node:net. It does its own opening handshake and framing so that a
// test can send anything (unmasked frames, reserved bits, bad opcodes, fragments, lying lengths)
// and read exactly what the server sends back: every frame, the close code, the TCP close.

import crypto from "node:crypto";
import net from "node:net";
import { HOST } from "./server.mjs";
import { within } from "./util.mjs";

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export function acceptKey(key) {
  return crypto.createHash("sha1").update(key + GUID).digest("base64");
}

// Encodes one client frame. payload: Buffer or string. Options:
//   fin (true), rsv (0..7, the RSV1-3 bits), mask (true), maskKey (4 bytes),
//   lengthForm: "auto" | 16 | 64 (force a longer length encoding), declaredLength (lie about it).
export function encodeFrame(opcode, payload = Buffer.alloc(0), opts = {}) {
  const { fin = true, rsv = 0, mask = true, lengthForm = "auto" } = opts;
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, "utf8");
  const len = opts.declaredLength ?? data.length;
  let header;
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  const maskBit = mask ? 0x80 : 0;
  if (lengthForm === 64 || (lengthForm === "auto" && len > 0xffff)) {
    header = Buffer.alloc(10);
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  } else if (lengthForm === 16 || (lengthForm === "auto" && len > 125)) {
    header = Buffer.alloc(4);
    header[1] = maskBit | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(2);
    header[1] = maskBit | len;
  }
  header[0] = b0;
  if (!mask) return Buffer.concat([header, data]);
  const key = opts.maskKey ?? crypto.randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([header, key, masked]);
}

export function closePayload(code, reason = "") {
  if (code === undefined) return Buffer.alloc(0);
  const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason, "utf8");
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

function parseHead(text) {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) throw new Error(`bad HTTP status line ${JSON.stringify(lines[0])}`);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
  }
  return { status: Number(m[1]), statusLine: lines[0], headers };
}

export class RawWs {
  constructor(sock, rest) {
    this.sock = sock;
    this.buf = rest;
    this.frames = []; // parsed, not yet read
    this.waiters = [];
    this.error = null; // a framing error in what the server sent
    this.ended = false; // server half-closed (FIN) or connection gone
    this.closed = false; // TCP connection fully closed
    this.closeFrameSent = false;
    this.eioAutoPong = false;
    this.closedPromise = new Promise((resolve) => sock.once("close", resolve));
    sock.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    sock.on("end", () => {
      this.ended = true;
      this.wake();
    });
    sock.on("close", () => {
      this.ended = true;
      this.closed = true;
      this.wake();
    });
    sock.on("error", () => {});
    this.parse();
  }

  // Opens a WebSocket. Resolves to a RawWs on 101; otherwise rejects with an Error carrying
  // .response = { status, headers, body } (use handshake() to get that without a throw).
  static async connect(opts) {
    const r = await RawWs.handshake(opts);
    if (!r.ws) {
      const e = new Error(`WebSocket handshake refused: ${r.statusLine} ${r.body.toString()}`);
      e.response = r;
      throw e;
    }
    return r.ws;
  }

  // Does the opening handshake. Resolves to { status, statusLine, headers, body, ws } where ws is
  // a RawWs when the status was 101 (Sec-WebSocket-Accept checked), otherwise undefined.
  static handshake({ port, path, headers = {}, key, version = 13, timeout = 5000, omit = [] }) {
    const wsKey = key ?? crypto.randomBytes(16).toString("base64");
    const h = {
      Host: `${HOST}:${port}`,
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": wsKey,
      "Sec-WebSocket-Version": String(version),
      ...headers,
    };
    for (const k of omit) delete h[k];
    const reqText = `GET ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
    const p = new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port });
      sock.setNoDelay(true);
      let buf = Buffer.alloc(0);
      let head = null;
      const fail = (err) => {
        sock.destroy();
        reject(err);
      };
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        if (!head) {
          const i = buf.indexOf("\r\n\r\n");
          if (i < 0) return;
          try {
            head = parseHead(buf.subarray(0, i).toString("latin1"));
          } catch (e) {
            return fail(e);
          }
          buf = buf.subarray(i + 4);
          if (head.status === 101) {
            sock.off("data", onData);
            sock.off("end", onEnd);
            sock.off("error", onError);
            const expected = acceptKey(wsKey);
            if (head.headers["sec-websocket-accept"] !== expected) {
              return fail(new Error(`bad Sec-WebSocket-Accept ${head.headers["sec-websocket-accept"]} (expected ${expected})`));
            }
            resolve({ ...head, body: Buffer.alloc(0), ws: new RawWs(sock, buf) });
            return;
          }
        }
        const cl = head.headers["content-length"];
        if (cl !== undefined && buf.length >= Number(cl)) {
          sock.destroy();
          resolve({ ...head, body: buf.subarray(0, Number(cl)), ws: undefined });
        }
      };
      const onEnd = () => {
        if (!head) return fail(new Error(`connection closed during the WebSocket handshake (got ${JSON.stringify(buf.toString("latin1").slice(0, 200))})`));
        sock.destroy();
        resolve({ ...head, body: buf, ws: undefined });
      };
      const onError = (err) => {
        if (head) onEnd();
        else fail(err);
      };
      sock.on("data", onData);
      sock.on("end", onEnd);
      sock.on("error", onError);
      sock.on("close", () => {
        if (head && head.status !== 101) onEnd();
      });
      sock.write(reqText);
    });
    return within(p, timeout, `the WebSocket handshake of ${path}`);
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  changed(ms, what) {
    return within(new Promise((resolve) => this.waiters.push(resolve)), ms, what);
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = (b[0] >> 4) & 7;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.error = new Error("server sent a frame with an absurd length");
          this.sock.destroy();
          return;
        }
        len = Number(big);
        off = 10;
      }
      let key = null;
      if (masked) {
        if (b.length < off + 4) return;
        key = b.subarray(off, off + 4);
        off += 4;
      }
      if (b.length < off + len) return;
      let payload = Buffer.from(b.subarray(off, off + len));
      if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      this.buf = b.subarray(off + len);
      const frame = { fin, rsv, opcode, masked, payload };
      if (this.eioAutoPong && opcode === OP.TEXT && fin && payload.length === 1 && payload[0] === 0x32) {
        // an Engine.IO ping "2": answer "3" and do not surface it
        this.send(OP.TEXT, "3");
      } else {
        this.frames.push(frame);
      }
      this.wake();
    }
  }

  // Writes raw bytes on the connection.
  write(bytes) {
    if (!this.sock.destroyed) this.sock.write(bytes);
  }

  send(opcode, payload, opts) {
    this.write(encodeFrame(opcode, payload, opts));
  }

  text(str, opts) {
    this.send(OP.TEXT, str, opts);
  }

  binary(buf, opts) {
    this.send(OP.BINARY, buf, opts);
  }

  sendClose(code, reason, opts) {
    this.closeFrameSent = true;
    this.send(OP.CLOSE, closePayload(code, reason), opts);
  }

  // The next frame the server sent (data or control), in order.
  async nextFrame(ms = 5000) {
    const end = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.error) throw this.error;
      if (this.ended) throw new Error("connection closed while waiting for a frame");
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for a frame`);
      await this.changed(left, "a WebSocket frame");
    }
    return this.frames.shift();
  }

  // The next whole message (fragments reassembled): { opcode, data (Buffer), text }. Pongs are
  // skipped; a ping or close frame in the way is an error unless allowControl, which returns it.
  async nextMessage(ms = 5000, { allowControl = false } = {}) {
    const end = Date.now() + ms;
    let first = null;
    const parts = [];
    for (;;) {
      const f = await this.nextFrame(Math.max(1, end - Date.now()));
      if (f.opcode === OP.PONG && !allowControl) continue;
      if (f.opcode >= 0x8) {
        if (allowControl) return { opcode: f.opcode, data: f.payload, text: f.payload.toString("utf8"), frame: f };
        throw new Error(`expected a data frame, got opcode ${f.opcode} (${f.opcode === OP.CLOSE ? describeClose(f.payload) : f.payload.toString("hex")})`);
      }
      if (!first) {
        if (f.opcode === OP.CONT) throw new Error("server sent a continuation frame without a start");
        first = f;
      } else if (f.opcode !== OP.CONT) throw new Error(`server sent opcode ${f.opcode} inside a fragmented message`);
      parts.push(f.payload);
      if (f.fin) {
        const data = Buffer.concat(parts);
        return { opcode: first.opcode, data, text: data.toString("utf8") };
      }
    }
  }

  // Next text message as a string (fails on a binary one).
  async nextText(ms = 5000) {
    const m = await this.nextMessage(ms);
    if (m.opcode !== OP.TEXT) throw new Error(`expected a text message, got opcode ${m.opcode}: ${m.data.toString("hex")}`);
    return m.text;
  }

  // Reads until the server's close frame: resolves { code, reason, payload, skipped } where code
  // is null when the close frame had no status code (1005), skipped the frames read before it.
  async waitClose(ms = 5000) {
    const end = Date.now() + ms;
    const skipped = [];
    for (;;) {
      let f;
      try {
        f = await this.nextFrame(Math.max(1, end - Date.now()));
      } catch (e) {
        if (this.ended && this.frames.length === 0) {
          const err = new Error(`the connection closed without a close frame (frames before: ${skipped.map(frameSummary).join(", ") || "none"})`);
          err.noCloseFrame = true;
          throw err;
        }
        throw e;
      }
      if (f.opcode === OP.CLOSE) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
        const reason = f.payload.length > 2 ? f.payload.subarray(2).toString("utf8") : "";
        return { code, reason, payload: f.payload, frame: f, skipped };
      }
      skipped.push(f);
    }
  }

  // Resolves once the TCP connection is closed by the server (our side stays open until then).
  async waitEnd(ms = 5000) {
    const end = Date.now() + ms;
    while (!this.ended) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for the server to close the TCP connection`);
      await this.changed(left, "the TCP close");
    }
  }

  destroy() {
    this.sock.destroy();
  }
}

function describeClose(payload) {
  return payload.length >= 2 ? `close ${payload.readUInt16BE(0)} ${payload.subarray(2).toString()}` : "close (no code)";
}

export function frameSummary(f) {
  if (f.opcode === OP.TEXT) return `text ${JSON.stringify(f.payload.toString("utf8").slice(0, 60))}`;
  if (f.opcode === OP.CLOSE) return describeClose(f.payload);
  return `opcode ${f.opcode} (${f.payload.length} bytes)`;
}

// Opens a WebSocket Engine.IO session at base (/engine.io/ or /socket.io/) and reads the open
// packet. Returns { ws, open }. autoPong answers the server's pings ("2") with pongs ("3").
export async function eioWebSocket(port, base, { autoPong = true, query = {}, headers } = {}) {
  const qs = new URLSearchParams({ EIO: "4", transport: "websocket", ...query }).toString();
  const ws = await RawWs.connect({ port, path: `${base}?${qs}`, headers });
  ws.eioAutoPong = autoPong;
  const first = await ws.nextText();
  if (first[0] !== "0") throw new Error(`expected the open packet, got ${JSON.stringify(first)}`);
  return { ws, open: JSON.parse(first.slice(1)) };
}
