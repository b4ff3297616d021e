// Raw HTTP for Engine.IO long-polling: each request on its own TCP connection (no agent), so a
// test controls exactly which requests are pending and can abort one.

import http from "node:http";
import { HOST } from "./server.mjs";

export const SEP = "\x1e";

// Builds the path+query of an Engine.IO request. query: object; undefined values are left out.
export function eioPath(base, query = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.append(k, String(v));
  const s = qs.toString();
  return s ? `${base}?${s}` : base;
}

// Starts a request. Returns { response, abort() }: response resolves to
// { status, headers, body (Buffer), text } or rejects on a connection error or timeout.
export function startRequest({ port, method = "GET", path, headers = {}, body, timeout = 5000 }) {
  let req;
  let timer;
  let aborted = false;
  const response = new Promise((resolve, reject) => {
    req = http.request({ host: HOST, port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString("utf8") });
      });
      res.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(aborted ? Object.assign(new Error("aborted by the test"), { aborted: true }) : err);
    });
    timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timed out after ${timeout} ms waiting for the response to ${method} ${path}`));
    }, timeout);
    if (body !== undefined) req.end(body);
    else req.end();
  });
  // resolves once the request has been handed to the kernel
  const sent = new Promise((resolve) => req.once("finish", resolve));
  return {
    response,
    req,
    sent,
    abort() {
      aborted = true;
      response.catch(() => {}); // an aborted request's rejection is expected
      req.destroy();
    },
  };
}

export function request(opts) {
  return startRequest(opts).response;
}

export function parseJsonBody(res) {
  try {
    return JSON.parse(res.text);
  } catch {
    throw new Error(`response body is not JSON: ${JSON.stringify(res.text.slice(0, 200))}`);
  }
}

// Splits a long-polling payload into Engine.IO packets (strings).
export function decodePayload(text) {
  return text.split(SEP);
}

export function encodePayload(packets) {
  return packets.join(SEP);
}

// Parses an Engine.IO open packet "0{...}".
export function parseOpen(packet) {
  if (typeof packet !== "string" || packet[0] !== "0") throw new Error(`expected an open packet, got ${JSON.stringify(packet)}`);
  return JSON.parse(packet.slice(1));
}

// A raw Engine.IO long-polling client on one server path (/engine.io/ or /socket.io/).
export class Polling {
  constructor(port, base) {
    this.port = port;
    this.base = base;
    this.sid = null;
    this.open = null;
  }

  path(extra = {}) {
    return eioPath(this.base, { EIO: 4, transport: "polling", sid: this.sid ?? undefined, ...extra });
  }

  // GET handshake; returns the whole response and fills sid/open.
  async handshake(headers = {}) {
    const res = await request({ port: this.port, path: eioPath(this.base, { EIO: 4, transport: "polling" }), headers });
    if (res.status !== 200) throw new Error(`handshake: HTTP ${res.status} ${res.text}`);
    const packets = decodePayload(res.text);
    this.open = parseOpen(packets[0]);
    this.sid = this.open.sid;
    res.packets = packets;
    return res;
  }

  // Starts a GET; returns { response, abort }.
  startGet({ timeout = 5000, headers = {} } = {}) {
    return startRequest({ port: this.port, path: this.path(), headers, timeout });
  }

  get(opts) {
    return this.startGet(opts).response;
  }

  // GET, returning the decoded packets (and failing on a non-200 status).
  async getPackets(opts) {
    const res = await this.get(opts);
    if (res.status !== 200) throw new Error(`GET: HTTP ${res.status} ${res.text}`);
    return decodePayload(res.text);
  }

  post(body, { headers = {}, timeout = 5000 } = {}) {
    return request({ port: this.port, method: "POST", path: this.path(), headers, body, timeout });
  }

  // POST that must be answered 200 "ok".
  async send(...packets) {
    const res = await this.post(encodePayload(packets));
    if (res.status !== 200 || res.text !== "ok") throw new Error(`POST: HTTP ${res.status} ${JSON.stringify(res.text)}`);
    return res;
  }

  // GETs until a packet that is not a ping arrives, answering pings with pongs; returns the
  // non-ping packets of that response.
  async receive({ timeout = 5000 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeout} ms waiting for packets`);
      const packets = await this.getPackets({ timeout: left });
      const rest = packets.filter((p) => p !== "2");
      if (rest.length !== packets.length) await this.send("3");
      if (rest.length > 0) return rest;
    }
  }
}
