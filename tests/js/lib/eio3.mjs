// Engine.IO v3 by hand (the protocol of socket.io-client 2.x, accepted with --allow-eio3).
//
// v3 on the wire (docs/engine.io-protocol/v3.md of socketio/socket.io):
//   text payload     <length>:<packet>[<length>:<packet>...], lengths in UTF-16 code units (what
//                    JavaScript's String#length counts), binary packets as "b<type><base64>"
//   binary payload   per packet <0 string | 1 binary><length digits, one byte each><0xFF><packet>,
//                    lengths in bytes, the type of a binary packet as a byte (4), of a string one
//                    as a character ("4"); answered as application/octet-stream
//   JSONP            GET answers ___eio[<j>]("<payload as a JSON string>"); POST bodies are forms
//                    d=<payload>, the client having escaped "\n" as "\\n" and newlines as "\n"
//   WebSocket        one packet per frame; binary frames start with the packet type byte
// The server never pings: the client sends "2", the server answers "3", and a session that
// hears nothing for pingInterval + pingTimeout is closed.

import { eioPath, request, startRequest } from "./http.mjs";
import { RawWs } from "./rawws.mjs";
import { IS_REF } from "./server.mjs";

export const ALLOW_EIO3 = "--allow-eio3";

// ---- payload encodings -----------------------------------------------------------------------

// A v3 text payload. packets: strings ("4hello") or { type, data: Buffer } for binary packets
// (sent as "b<type><base64>").
export function encodeText3(packets) {
  return packets
    .map((p) => {
      const s = typeof p === "string" ? p : `b${p.type ?? 4}${p.data.toString("base64")}`;
      return `${s.length}:${s}`;
    })
    .join("");
}

// Splits a v3 text payload into its packets (strings, "b..." ones left as they are). Throws on
// anything malformed.
export function decodeText3(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    const digits = colon < 0 ? "" : text.slice(i, colon);
    if (!/^\d+$/.test(digits)) throw new Error(`bad v3 payload (length at ${i}): ${JSON.stringify(text.slice(0, 200))}`);
    const n = Number(digits);
    if (colon + 1 + n > text.length) throw new Error(`bad v3 payload (length ${n} beyond the end): ${JSON.stringify(text.slice(0, 200))}`);
    out.push(text.slice(colon + 1, colon + 1 + n));
    i = colon + 1 + n;
  }
  return out;
}

// A v3 binary payload. packets: strings ("4hello", UTF-8 encoded) or Buffers (a binary packet:
// its first byte is the packet type, e.g. Buffer.from([4, 1, 2, 3])).
export function encodeBinary3(packets) {
  const parts = [];
  for (const p of packets) {
    const data = typeof p === "string" ? Buffer.from(p, "utf8") : p;
    const digits = String(data.length)
      .split("")
      .map((d) => Number(d));
    parts.push(Buffer.from([typeof p === "string" ? 0 : 1, ...digits, 255]), data);
  }
  return Buffer.concat(parts);
}

// The packets of a v3 binary payload: strings for string packets, Buffers (type byte first)
// for binary ones. Throws on anything malformed.
export function decodeBinary3(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const kind = buf[i++];
    if (kind !== 0 && kind !== 1) throw new Error(`bad v3 binary payload: kind ${kind} at ${i - 1}`);
    let n = 0;
    let digits = 0;
    while (i < buf.length && buf[i] !== 255) {
      if (buf[i] > 9) throw new Error(`bad v3 binary payload: length digit ${buf[i]}`);
      n = n * 10 + buf[i++];
      digits++;
    }
    if (digits === 0 || i >= buf.length) throw new Error("bad v3 binary payload: no length");
    i++;
    if (i + n > buf.length) throw new Error("bad v3 binary payload: length beyond the end");
    const data = buf.subarray(i, i + n);
    out.push(kind === 0 ? data.toString("utf8") : Buffer.from(data));
    i += n;
  }
  return out;
}

// The client side of JSONP: ___eio[<j>]("...") → the payload; and the escaping of a payload
// for a d= form (what engine.io-client 3's JSONP transport does before posting).
export function unwrapJsonp(text, j) {
  const head = `___eio[${j}](`;
  if (!text.startsWith(head) || !text.endsWith(");")) throw new Error(`not a JSONP answer for j=${j}: ${JSON.stringify(text.slice(0, 200))}`);
  return JSON.parse(text.slice(head.length, -2));
}

export function jsonpForm(payload) {
  const escaped = payload.replace(/\\n/g, "\\\n").replace(/\n/g, "\\n");
  return `d=${encodeURIComponent(escaped)}`;
}

// Parses the open packet "0{...}" of a v3 session.
export function parseOpen3(packet) {
  if (typeof packet !== "string" || packet[0] !== "0") throw new Error(`expected an open packet, got ${JSON.stringify(packet)}`);
  return JSON.parse(packet.slice(1));
}

// ---- clients ---------------------------------------------------------------------------------

// A raw Engine.IO v3 long-polling client. opts: b64 (the handshake asks for base64 binary, as
// clients without XHR2 and socket.io-client's forceBase64 do), j (JSONP: every request carries
// it, answers are unwrapped, POSTs are d= forms), query (more handshake parameters).
export class Polling3 {
  constructor(port, base, { b64 = false, j, query = {} } = {}) {
    this.port = port;
    this.base = base;
    this.b64 = b64;
    this.j = j;
    this.query = query;
    this.sid = null;
    this.open = null;
  }

  path(extra = {}) {
    return eioPath(this.base, { EIO: 3, transport: "polling", j: this.j, sid: this.sid ?? undefined, ...extra });
  }

  // The body of an answer: the payload text (JSONP unwrapped) or, for application/octet-stream,
  // the Buffer.
  payloadOf(res) {
    if (/^application\/octet-stream/.test(String(res.headers["content-type"]))) return res.body;
    return this.j !== undefined ? unwrapJsonp(res.text, this.j) : res.text;
  }

  // GET handshake: fills sid and open; the response gets .payload and .packets.
  async handshake(headers = {}) {
    const path = eioPath(this.base, { EIO: 3, transport: "polling", j: this.j, b64: this.b64 ? 1 : undefined, ...this.query });
    const res = await request({ port: this.port, path, headers });
    if (res.status !== 200) throw new Error(`v3 handshake: HTTP ${res.status} ${res.text}`);
    res.payload = this.payloadOf(res);
    res.packets = decodeText3(res.payload);
    this.open = parseOpen3(res.packets[0]);
    this.sid = this.open.sid;
    return res;
  }

  startGet({ timeout = 5000, headers = {} } = {}) {
    return startRequest({ port: this.port, path: this.path(), headers, timeout });
  }

  get(opts) {
    return this.startGet(opts).response;
  }

  // GET that must succeed: the packets of the answer (strings; Buffers for binary packets of a
  // binary payload; "b4..." strings for base64 ones).
  async getPackets(opts) {
    const res = await this.get(opts);
    if (res.status !== 200) throw new Error(`GET: HTTP ${res.status} ${res.text}`);
    const p = this.payloadOf(res);
    return Buffer.isBuffer(p) ? decodeBinary3(p) : decodeText3(p);
  }

  // POST of a raw body (JSONP: wrapped in a d= form).
  post(body, { headers = {}, timeout = 5000, raw = false } = {}) {
    if (this.j !== undefined && !raw) {
      body = jsonpForm(body);
      headers = { "Content-Type": "application/x-www-form-urlencoded", ...headers };
    }
    return request({ port: this.port, method: "POST", path: this.path(), headers, body, timeout });
  }

  postBinary(packets, opts = {}) {
    return this.post(encodeBinary3(packets), { ...opts, raw: true, headers: { "Content-Type": "application/octet-stream", ...opts.headers } });
  }

  // POST of packets as a text payload that must be answered 200 "ok".
  async send(...packets) {
    const res = await this.post(encodeText3(packets));
    if (res.status !== 200 || res.text !== "ok") throw new Error(`POST: HTTP ${res.status} ${JSON.stringify(res.text)}`);
    return res;
  }
}

// Opens a v3 WebSocket session at base; returns { ws, open }.
export async function eio3WebSocket(port, base, { query = {}, headers } = {}) {
  const qs = new URLSearchParams({ EIO: "3", transport: "websocket", ...query }).toString();
  const ws = await RawWs.connect({ port, path: `${base}?${qs}`, headers });
  ws.eioAutoPong = false; // a v3 server never pings
  const first = await ws.nextText();
  return { ws, open: parseOpen3(first) };
}

export { IS_REF };
