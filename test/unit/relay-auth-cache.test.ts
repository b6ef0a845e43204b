/**
 * The relay keeps host keys imported, and tokens that verified, between
 * client connects: a token is still only accepted with the key the host's
 * record holds at that moment, for the relay's audiences, while unexpired
 * and unrevoked, and only exactly as it was signed.
 */
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { mintClientToken, checkHostPublicJwk } from "../../shared/tokens.ts";
import { authenticateClient, type HostRecord } from "../../relay/core/auth.ts";

const AUD = "https://relay.test:8443";
const HOST = "host-with-a-new-key";

async function key() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  return { privateKey: privateKey as CryptoKey, publicJwk: checkHostPublicJwk(await exportJWK(publicKey)) };
}

async function tokenBy(k: { privateKey: CryptoKey }): Promise<string> {
  return (await mintClientToken(k.privateKey, HOST, { audience: AUD, ttlSec: 600, scopes: [] })).token;
}

function check(record: HostRecord, token: string, audiences = [AUD]) {
  const req = new Request(`${AUD}/h/${HOST}`, { headers: { authorization: `Bearer ${token}` } });
  return authenticateClient(req, HOST, record, audiences, { allowQuery: false, maxTokenBytes: 8192 });
}

/** The refusal's status and text, or "ok". */
async function outcome(record: HostRecord, token: string, audiences = [AUD]): Promise<string> {
  const r = await check(record, token, audiences);
  return r.ok ? "ok" : `${r.status} ${r.reason}`;
}

test("after a host's key changes, tokens are checked with the new key only, never a cached old one", async () => {
  const [before, after] = await Promise.all([key(), key()]);
  const [oldToken, newToken] = await Promise.all([tokenBy(before), tokenBy(after)]);
  const record: HostRecord = { hostId: HOST, publicJwk: before.publicJwk, isRevoked: () => false };
  for (let i = 0; i < 2; i++) {
    assert.equal((await check(record, oldToken)).ok, true);
    assert.equal((await check(record, newToken)).ok, false);
  }
  record.publicJwk = after.publicJwk;
  for (let i = 0; i < 2; i++) {
    const old = await check(record, oldToken);
    assert.equal(old.ok, false, "a token signed with the old key");
    assert.equal(!old.ok && old.status, 401);
    assert.equal((await check(record, newToken)).ok, true);
  }
  // And back: each key is its own entry.
  record.publicJwk = { ...before.publicJwk };
  assert.equal((await check(record, oldToken)).ok, true);
  assert.equal((await check(record, newToken)).ok, false);
});

test("a malformed host key refuses the token (and is not remembered as a good one)", async () => {
  const k = await key();
  const token = await tokenBy(k);
  const record: HostRecord = { hostId: HOST, publicJwk: { ...k.publicJwk, x: "!".repeat(43) }, isRevoked: () => false };
  for (let i = 0; i < 2; i++) assert.equal((await check(record, token)).ok, false);
  record.publicJwk = k.publicJwk;
  assert.equal((await check(record, token)).ok, true);
});

test("a token that verified before is refused once revoked, and accepted again when the revocation is lifted", async () => {
  const k = await key();
  const minted = await mintClientToken(k.privateKey, HOST, { audience: AUD, ttlSec: 600, scopes: [] });
  const revoked = new Set<string>();
  const record: HostRecord = { hostId: HOST, publicJwk: k.publicJwk, isRevoked: (id) => revoked.has(id) };
  assert.equal(await outcome(record, minted.token), "ok");
  assert.equal(await outcome(record, minted.token), "ok");
  revoked.add(minted.id);
  assert.equal(await outcome(record, minted.token), "403 token refused (revoked)");
  revoked.delete(minted.id);
  assert.equal(await outcome(record, minted.token), "ok");
});

test("a token that verified before is refused once it expires", async (t) => {
  const k = await key();
  const token = (await mintClientToken(k.privateKey, HOST, { audience: AUD, ttlSec: 60, scopes: [] })).token;
  const record: HostRecord = { hostId: HOST, publicJwk: k.publicJwk, isRevoked: () => false };
  assert.equal(await outcome(record, token), "ok");
  t.after(() => mock.timers.reset());
  mock.timers.enable({ apis: ["Date"], now: Date.now() + 10 * 60_000 });
  assert.equal(await outcome(record, token), "401 token refused (expired)");
});

test("a token that verified for one audience is refused for another, and an altered copy is refused", async () => {
  const k = await key();
  const token = await tokenBy(k);
  const record: HostRecord = { hostId: HOST, publicJwk: k.publicJwk, isRevoked: () => false };
  assert.equal(await outcome(record, token), "ok");
  assert.equal(await outcome(record, token, ["https://other-relay.test"]), "403 token refused (wrong_audience)");
  // Same signature, another payload (a longer life): not the token that verified.
  const [h, p, sig] = token.split(".");
  const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
  const altered = `${h}.${Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 3600 })).toString("base64url")}.${sig}`;
  assert.equal(await outcome(record, altered), "401 token refused (invalid)");
  assert.equal(await outcome(record, token), "ok");
});
