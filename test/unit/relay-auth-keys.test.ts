/**
 * The relay keeps host keys imported between client tokens: a token is still
 * only accepted with the key the host's record holds at that moment.
 */
import { test } from "node:test";
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

function check(record: HostRecord, token: string) {
  const req = new Request(`${AUD}/h/${HOST}`, { headers: { authorization: `Bearer ${token}` } });
  return authenticateClient(req, HOST, record, [AUD], { allowQuery: false, maxTokenBytes: 8192 });
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
