// --auth-secret FILE: an HS256 JWT in the handshake's auth.token; exp and nbf honoured; the
// token's sub becomes connections.user_id; anything else is refused with connect_error
// "unauthorized" and leaves no row. Tokens are made here with node's crypto.

import assert from "node:assert/strict";
import crypto from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe } from "node:test";
import { connectError, count, emitAck, rtdTest, startRtd, tempDir, waitConnectionRow } from "./lib.mjs";

const SECRET = "a-test-secret-of-more-than-16-bytes";

function b64url(s) {
  return Buffer.from(s).toString("base64url");
}

export function jwt(claims, { secret = SECRET, header = { alg: "HS256", typ: "JWT" }, hash = "sha256" } = {}) {
  const head = b64url(JSON.stringify(header));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac(hash, secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);

async function startWithSecret(ctx) {
  const dir = tempDir();
  const file = path.join(dir, "secret");
  writeFileSync(file, `${SECRET}\n`);
  ctx.rtd = await startRtd({ dir, args: ["--auth-secret", file] });
  return ctx.rtd;
}

describe("--auth-secret", () => {
  rtdTest("a valid token connects, on every transport; its sub becomes connections.user_id", { start: false }, async (ctx) => {
    const rtd = await startWithSecret(ctx);
    const tokens = [
      ["websocket", jwt({ sub: "user-ws" })],
      ["polling", jwt({ sub: "user-poll", exp: now() + 600 })],
      ["upgrade", jwt({ sub: "user-up", nbf: now() - 60, exp: now() + 600, iat: now() })],
    ];
    for (const [kind, token] of tokens) {
      const s = await ctx.client({ kind, auth: { token } });
      const sub = JSON.parse(Buffer.from(token.split(".")[1], "base64url")).sub;
      const row = await waitConnectionRow(rtd.db, s.id, (r) => r.user_id !== null, "with its user_id");
      assert.equal(row.user_id, sub);
      assert.equal(row.status, "active");
      // identify keeps working; without a userId it does not drop the token's subject
      const ack = await emitAck(s, "identify", { platform: "web", appVersion: "1" });
      assert.deepEqual(ack, { socketId: s.id, userId: sub, platform: "web" });
    }
  });

  rtdTest("missing, malformed, forged, other-algorithm, subject-less, expired and not-yet-valid tokens get connect_error \"unauthorized\" and no row", { start: false }, async (ctx) => {
    const rtd = await startWithSecret(ctx);
    const bad = [
      ["no auth at all", undefined],
      ["auth without a token", {}],
      ["an empty token", { token: "" }],
      ["a token that is not a string", { token: 12345 }],
      ["not a JWT", { token: "not-a-jwt" }],
      ["signed with another secret", { token: jwt({ sub: "mallory" }, { secret: "another-secret-of-enough-length" }) }],
      ["a tampered payload", { token: (() => {
        const [h, , s] = jwt({ sub: "alice" }).split(".");
        return `${h}.${b64url(JSON.stringify({ sub: "admin" }))}.${s}`;
      })() }],
      ["HS512 with the right secret (HS256 only)", { token: jwt({ sub: "hs512" }, { header: { alg: "HS512", typ: "JWT" }, hash: "sha512" }) }],
      ["no subject", { token: jwt({ name: "nobody" }) }],
      ["an empty subject", { token: jwt({ sub: "" }) }],
      ["a subject over 128 bytes", { token: jwt({ sub: "s".repeat(129) }) }],
      ["alg none", { token: `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify({ sub: "eve" }))}.` }],
      ["expired", { token: jwt({ sub: "late", exp: now() - 10 }) }],
      ["not valid yet (nbf)", { token: jwt({ sub: "early", nbf: now() + 600 }) }],
    ];
    const kinds = ["websocket", "polling", "upgrade"];
    for (const [i, [what, auth]] of bad.entries()) {
      const s = ctx.socket({ kind: kinds[i % 3], ...(auth ? { auth } : {}) });
      const err = await connectError(s);
      assert.equal(err.message, "unauthorized", `${what}: ${err.message}`);
      s.disconnect();
    }
    // A good one afterwards: the only row.
    const ok = await ctx.client({ kind: "websocket", auth: { token: jwt({ sub: "good" }) } });
    await waitConnectionRow(rtd.db, ok.id);
    assert.equal(await count(rtd.db, "connections"), 1, "refused handshakes leave no row");
    assert.equal(ok.got.joined.items.length, 0);
  });

  rtdTest("a refused client is not announced to the others", { start: false }, async (ctx) => {
    const rtd = await startWithSecret(ctx);
    const a = await ctx.client({ kind: "websocket", auth: { token: jwt({ sub: "a" }) } });
    const s = ctx.socket({ kind: "polling", auth: { token: jwt({ sub: "x", exp: now() - 1 }) } });
    assert.equal((await connectError(s)).message, "unauthorized");
    const b = await ctx.client({ kind: "polling", auth: { token: jwt({ sub: "b" }) } });
    const [[ev]] = await a.got.joined.waitCount(1);
    assert.deepEqual(ev, { socketId: b.id, totalConnections: 2 });
    assert.equal(await count(rtd.db, "connections"), 2);
  });

  rtdTest("a secret file that cannot be read: rtd does not start", { start: false }, async (ctx) => {
    const dir = tempDir();
    await assert.rejects(startRtd({ dir, args: ["--auth-secret", path.join(dir, "missing")] }), /did not start \(exit status 1\)[\s\S]*auth-secret/);
    const short = path.join(dir, "short");
    writeFileSync(short, "tooshort\n");
    await assert.rejects(startRtd({ dir, args: ["--auth-secret", short] }), /did not start \(exit status 1\)[\s\S]*at least 16 bytes/);
    rmSync(dir, { recursive: true, force: true });
  });
});
