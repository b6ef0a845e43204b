/**
 * Client and link tokens: the happy path, and a table of bad tokens that
 * must each be refused with the right reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, SignJWT, type CryptoKey, type JWK } from "jose";
import { createHmac } from "node:crypto";
import {
  mintClientToken,
  verifyClientToken,
  signLinkToken,
  verifyLinkToken,
  hostIdFromJwk,
  relayAudience,
  checkHostPublicJwk,
} from "../../shared/tokens.ts";
import { LoopgateError } from "../../shared/errors.ts";

const AUD = "https://relay.test:8443";

async function host() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { privateKey: privateKey as CryptoKey, publicJwk, hostId: await hostIdFromJwk(publicJwk) };
}

const reason = (e: unknown) =>
  e instanceof LoopgateError && e.code === "TOKEN_INVALID"
    ? (e.details as { reason: string }).reason
    : `not a token error: ${String(e)}`;

test("a minted client token verifies and carries scopes, name and id", async () => {
  const h = await host();
  const { token, id } = await mintClientToken(h.privateKey, h.hostId, {
    audience: AUD,
    ttlSec: 3600,
    scopes: ["operator.read", "operator.write"],
    name: "phone",
  });
  const c = await verifyClientToken(token, h.publicJwk, { hostId: h.hostId, audience: AUD });
  assert.equal(c.id, id);
  assert.equal(c.name, "phone");
  assert.deepEqual(c.scopes, ["operator.read", "operator.write"]);
  assert.equal(relayAudience("wss://Relay.Test:8443/h/x"), AUD);
});

test("bad client tokens are refused, each for its reason", async () => {
  const h = await host();
  const other = await host();
  const now = Math.floor(Date.now() / 1000);
  const good = (
    await mintClientToken(h.privateKey, h.hostId, { audience: AUD, ttlSec: 600, scopes: ["operator.read"], id: "tok1" })
  ).token;
  const sign = (claims: Record<string, unknown>, key: CryptoKey = h.privateKey) =>
    new SignJWT({ purpose: "client", scope: "operator.read", ...claims })
      .setProtectedHeader({ alg: "EdDSA" })
      .sign(key);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = { purpose: "client", iss: h.hostId, aud: AUD, exp: now + 600, jti: "x" };
  const hs256 = (() => {
    const head = b64({ alg: "HS256", typ: "JWT" });
    const pl = b64(body);
    const sig = createHmac("sha256", Buffer.from(h.publicJwk.x as string, "base64url"))
      .update(`${head}.${pl}`)
      .digest("base64url");
    return `${head}.${pl}.${sig}`;
  })();
  const rows: [string, string | Promise<string>, string][] = [
    ["no token", "", "malformed"],
    ["garbage", "not-a-token", "malformed"],
    ["oversized", "a".repeat(5000) + ".b.c", "too_large"],
    ["alg none", `${b64({ alg: "none" })}.${b64(body)}.`, "alg_not_allowed"],
    ["algorithm confusion (HS256 keyed with the public key)", hs256, "alg_not_allowed"],
    [
      "wrong signature (another host's key, claiming this host)",
      sign({ iss: h.hostId, aud: AUD, exp: now + 600, jti: "a" }, other.privateKey),
      "bad_signature",
    ],
    [
      "tampered payload",
      good
        .split(".")
        .map((p, i) => (i === 1 ? b64({ ...body, scope: "operator.admin" }) : p))
        .join("."),
      "bad_signature",
    ],
    ["expired", sign({ iss: h.hostId, aud: AUD, exp: now - 3600, jti: "a" }), "expired"],
    ["not yet valid", sign({ iss: h.hostId, aud: AUD, exp: now + 7200, nbf: now + 3600, jti: "a" }), "not_yet_valid"],
    ["wrong audience", sign({ iss: h.hostId, aud: "https://other.relay", exp: now + 600, jti: "a" }), "wrong_audience"],
    ["wrong issuer", sign({ iss: "someone-else", aud: AUD, exp: now + 600, jti: "a" }), "wrong_issuer"],
    [
      "another host's token",
      (await mintClientToken(other.privateKey, other.hostId, { audience: AUD, ttlSec: 600, scopes: [] })).token,
      "wrong_issuer",
    ],
    ["link token used as a client token", signLinkToken(h.privateKey, h.publicJwk, h.hostId, AUD), "wrong_purpose"],
    ["no expiry", sign({ iss: h.hostId, aud: AUD, jti: "a" }), "malformed"],
  ];
  for (const [name, tok, want] of rows) {
    const t = await tok;
    await assert.rejects(
      verifyClientToken(t, h.publicJwk, { hostId: h.hostId, audience: AUD }),
      (e) => reason(e) === want || assert.fail(`${name}: got ${reason(e)}, want ${want}`),
      name,
    );
  }
  await assert.rejects(
    verifyClientToken(good, h.publicJwk, { hostId: h.hostId, audience: AUD, isRevoked: (id) => id === "tok1" }),
    (e) => reason(e) === "revoked",
  );
  // and no message ever contains the token
  await verifyClientToken(good + "x", h.publicJwk, { hostId: h.hostId, audience: AUD }).catch((e: Error) =>
    assert.ok(!e.message.includes(good.slice(10, 40))),
  );
});

test("link tokens prove the host key; wrong audience, forged ids and long lifetimes are refused", async () => {
  const h = await host();
  const other = await host();
  const t = await signLinkToken(h.privateKey, h.publicJwk, h.hostId, AUD);
  const v = await verifyLinkToken(t, { audience: AUD });
  assert.equal(v.hostId, h.hostId);
  await assert.rejects(verifyLinkToken(t, { audience: "https://elsewhere" }), (e) => reason(e) === "wrong_audience");
  // A token signed by another key but claiming this host's id in iss:
  const forged = await new SignJWT({ purpose: "link" })
    .setProtectedHeader({ alg: "EdDSA", jwk: other.publicJwk as JWK })
    .setIssuer(h.hostId)
    .setSubject(h.hostId)
    .setAudience(AUD)
    .setIssuedAt()
    .setExpirationTime("60s")
    .sign(other.privateKey);
  await assert.rejects(verifyLinkToken(forged, { audience: AUD }), (e) => reason(e) === "key_mismatch");
  const long = await new SignJWT({ purpose: "link" })
    .setProtectedHeader({ alg: "EdDSA", jwk: h.publicJwk })
    .setIssuer(h.hostId)
    .setSubject(h.hostId)
    .setAudience(AUD)
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(h.privateKey);
  await assert.rejects(verifyLinkToken(long, { audience: AUD }), (e) => reason(e) === "ttl_too_long");
  const client = (await mintClientToken(h.privateKey, h.hostId, { audience: AUD, ttlSec: 60, scopes: [] })).token;
  await assert.rejects(
    verifyLinkToken(client, { audience: AUD }),
    (e) => reason(e) === "malformed" || reason(e) === "wrong_purpose",
  );
});
