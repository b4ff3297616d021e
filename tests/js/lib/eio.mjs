// Assertions shared by the raw Engine.IO tests.

import assert from "node:assert/strict";
import { parseJsonBody, request } from "./http.mjs";

export const MODES = [
  { name: "engine-only", engineOnly: true, base: "/engine.io/" },
  { name: "socket.io", engineOnly: false, base: "/socket.io/" },
];

export const ERR = {
  UNKNOWN_TRANSPORT: { code: 0, message: "Transport unknown" },
  UNKNOWN_SID: { code: 1, message: "Session ID unknown" },
  BAD_HANDSHAKE_METHOD: { code: 2, message: "Bad handshake method" },
  BAD_REQUEST: { code: 3, message: "Bad request" },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: "Unsupported protocol version" },
};

// An HTTP 400 with the JSON body {"code":N,"message":"..."} of the reference.
export async function assertEioError(resOrPromise, err, what = "") {
  const res = await resOrPromise;
  assert.equal(res.status, 400, `${what} status (body ${JSON.stringify(res.text.slice(0, 200))})`);
  assert.match(String(res.headers["content-type"]), /^application\/json\b/, `${what} Content-Type`);
  assert.deepEqual(parseJsonBody(res), err, `${what} body`);
}

// The handshake data of an open packet, as the conformance servers configure it.
export function assertOpenData(open, upgrades) {
  assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.equal(typeof open.sid, "string");
  assert.ok(open.sid.length > 0, "sid is not empty");
  assert.equal(encodeURIComponent(open.sid), open.sid, "sid is usable in a query string as it is");
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 1000000);
}

// The session is gone: a GET with its sid is refused with code 1.
export async function assertSessionGone(polling, what = "after the session closed") {
  await assertEioError(polling.get(), ERR.UNKNOWN_SID, what);
}

export function assertTextPlain(res) {
  assert.match(String(res.headers["content-type"]), /^text\/plain; ?charset=utf-8$/i, "Content-Type of a poll response");
}

export { request };
