// Socket.IO v5 packets by hand (the default parser's text format), for the raw tests:
//   <type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]
// and a raw Socket.IO session over a RawWs WebSocket.

import assert from "node:assert/strict";
import { OP, eioWebSocket } from "./rawws.mjs";

export const T = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

// Decodes the text part of a Socket.IO packet (without the Engine.IO "4").
export function decodeSio(str) {
  let i = 0;
  const type = Number(str[i++]);
  if (!(type >= 0 && type <= 6)) throw new Error(`bad Socket.IO packet type in ${JSON.stringify(str)}`);
  let attachments;
  if (type === T.BINARY_EVENT || type === T.BINARY_ACK) {
    const dash = str.indexOf("-", i);
    if (dash < 0) throw new Error(`binary packet without attachment count: ${JSON.stringify(str)}`);
    attachments = Number(str.slice(i, dash));
    i = dash + 1;
  }
  let nsp = "/";
  if (str[i] === "/") {
    const comma = str.indexOf(",", i);
    const end = comma < 0 ? str.length : comma;
    nsp = str.slice(i, end);
    i = comma < 0 ? end : end + 1;
  }
  let id;
  const m = /^\d+/.exec(str.slice(i));
  if (m) {
    id = Number(m[0]);
    i += m[0].length;
  }
  const rest = str.slice(i);
  const data = rest.length > 0 ? JSON.parse(rest) : undefined;
  return { type, attachments, nsp, id, data };
}

export function encodeSio({ type, nsp = "/", id, data, attachments }) {
  let s = String(type);
  if (attachments !== undefined) s += `${attachments}-`;
  if (nsp !== "/") s += `${nsp},`;
  if (id !== undefined) s += String(id);
  if (data !== undefined) s += JSON.stringify(data);
  return s;
}

// Replaces {_placeholder:true,num:n} by the n-th buffer.
export function reconstruct(data, buffers) {
  if (Array.isArray(data)) return data.map((d) => reconstruct(d, buffers));
  if (data && typeof data === "object") {
    if (data._placeholder === true && typeof data.num === "number") {
      assert.ok(data.num < buffers.length, `placeholder ${data.num} out of ${buffers.length} attachments`);
      return buffers[data.num];
    }
    const out = {};
    for (const [k, v] of Object.entries(data)) out[k] = reconstruct(v, buffers);
    return out;
  }
  return data;
}

// A raw Socket.IO client on a WebSocket to /socket.io/ (pings answered automatically).
export class SioWs {
  constructor(ws, open) {
    this.ws = ws;
    this.open = open;
  }

  static async open(port, opts) {
    const { ws, open } = await eioWebSocket(port, "/socket.io/", opts);
    return new SioWs(ws, open);
  }

  // Sends an Engine.IO message carrying a Socket.IO packet (string) or a binary attachment.
  send(packet) {
    if (Buffer.isBuffer(packet)) this.ws.binary(packet);
    else this.ws.text(`4${typeof packet === "string" ? packet : encodeSio(packet)}`);
  }

  // Next Socket.IO packet; binary packets come back with .buffers and .args (reconstructed).
  async next(ms = 5000) {
    const m = await this.ws.nextMessage(ms);
    if (m.opcode !== OP.TEXT) throw new Error(`expected a text frame, got a binary one (${m.data.length} bytes)`);
    if (m.text[0] !== "4") throw new Error(`expected an Engine.IO message, got ${JSON.stringify(m.text.slice(0, 80))}`);
    const p = decodeSio(m.text.slice(1));
    p.raw = m.text;
    if (p.attachments !== undefined) {
      p.buffers = [];
      for (let k = 0; k < p.attachments; k++) {
        const b = await this.ws.nextMessage(ms);
        assert.equal(b.opcode, OP.BINARY, "attachments come as binary frames");
        p.buffers.push(b.data);
      }
      p.args = reconstruct(p.data, p.buffers);
    } else p.args = p.data;
    return p;
  }

  // CONNECT to nsp (with an optional auth payload); resolves to the server's answer, and for a
  // successful connection also reads the "auth" event the conformance server sends.
  async connect(nsp = "/", auth) {
    this.send({ type: T.CONNECT, nsp, data: auth });
    const reply = await this.next();
    if (reply.type === T.CONNECT) {
      const ev = await this.next();
      assert.equal(ev.type, T.EVENT, `expected the "auth" event after CONNECT, got ${ev.raw}`);
      assert.equal(ev.data[0], "auth");
      reply.auth = ev.data[1];
    }
    return reply;
  }

  // Expects the server to end the Engine.IO session: a close frame (the reference sends one
  // without a status code) and then the end of the TCP connection.
  async expectClosed(ms = 3000) {
    const c = await this.ws.waitClose(ms);
    assert.equal(c.code, null, `close frame without a status code (got ${c.code} ${JSON.stringify(c.reason)})`);
    this.ws.sendClose();
    await this.ws.waitEnd(ms);
    return c;
  }

  destroy() {
    this.ws.destroy();
  }
}
