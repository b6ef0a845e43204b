/**
 * The relay's front door, in process (the Hono app with a stub adapter):
 * audiences come from configuration and never from the Host header; a link
 * token links once and its life is bounded; a linked host and an unknown id
 * refuse a bad token with the same status and text; per-token and
 * per-address stream caps (hub) sit below the per-host one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, SignJWT, base64url, type CryptoKey, type JWK } from "jose";
import {
  signLinkToken,
  verifyLinkToken,
  mintClientToken,
  hostIdFromJwk,
  checkHostPublicJwk,
} from "../../shared/tokens.ts";
import { LoopgateError } from "../../shared/errors.ts";
import { createRelayApp, type RelayAdapter } from "../../relay/core/app.ts";
import { LinkTokenLedger, type HostRecord } from "../../relay/core/auth.ts";
import { DEFAULT_RELAY_LIMITS } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";

const A = "https://relay-a.test:8443";
const B = "https://relay-b.test:8443";

async function host() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { privateKey: privateKey as CryptoKey, publicJwk, hostId: await hostIdFromJwk(publicJwk) };
}

const reason = (e: unknown) => (e instanceof LoopgateError ? (e.details as { reason: string }).reason : String(e));

/** The relay app with in-memory stand-ins for the runtime: upgrades answer 200 so the test sees who got through. */
function relayApp(h: { hostId: string; publicJwk: JWK }, audiences: string[]) {
  const ledger = new LinkTokenLedger();
  const record: HostRecord = { hostId: h.hostId, publicJwk: h.publicJwk, isRevoked: () => false };
  const adapter: RelayAdapter = {
    limits: { ...DEFAULT_RELAY_LIMITS, authFailures: { maxFailures: 1000, windowMs: 60_000, lockoutMs: 1 } },
    audiences,
    claimLinkToken: (hostId, jti, exp) => ledger.claim(hostId, jti, exp),
    isAllowed: (id) => id === h.hostId,
    singleHost: () => true,
    hostRecord: (id) => (id === h.hostId ? record : undefined),
    clientAddr: () => "192.0.2.1",
    upgradeLink: (c) => c.text("linked", 200),
    upgradeClient: (c) => c.text("client", 200),
    forwardHttp: async (c) => c.text("forwarded", 200),
    stats: () => ({}),
    metrics: new RelayMetrics(),
    log: { info: () => {}, warn: () => {} },
  };
  const app = createRelayApp(adapter);
  return (path: string, headers: Record<string, string>) =>
    app.fetch(new Request(`https://relay-a.test:8443${path}`, { headers: { upgrade: "websocket", ...headers } }));
}

test("a link token for relay B is refused at relay A even with Host: B; a client token likewise", async () => {
  const h = await host();
  const fetchA = relayApp(h, [A]);
  const forB = await signLinkToken(h.privateKey, h.publicJwk, h.hostId, B);
  const r = await fetchA("/link", { authorization: `Bearer ${forB}`, host: "relay-b.test:8443" });
  assert.equal(r.status, 401);
  assert.match(await r.text(), /wrong_audience/);
  const client = (
    await mintClientToken(h.privateKey, h.hostId, { audience: B, ttlSec: 600, scopes: ["operator.read"] })
  ).token;
  const c = await fetchA(`/h/${h.hostId}`, { authorization: `Bearer ${client}`, host: "relay-b.test:8443" });
  assert.equal(c.status, 403);
  const good = (await mintClientToken(h.privateKey, h.hostId, { audience: A, ttlSec: 600, scopes: ["operator.read"] }))
    .token;
  assert.equal(
    (await fetchA(`/h/${h.hostId}`, { authorization: `Bearer ${good}`, host: "anything.example" })).status,
    200,
    "the configured audience works whatever the Host",
  );
});

test("a relay without a configured audience accepts no token, and says why", async () => {
  const h = await host();
  const fetchNone = relayApp(h, []);
  const lt = await signLinkToken(h.privateKey, h.publicJwk, h.hostId, A);
  const r = await fetchNone("/link", { authorization: `Bearer ${lt}`, host: "relay-a.test:8443" });
  assert.equal(r.status, 503);
  assert.match(await r.text(), /public URL/);
});

test("a link token links once: the replay is refused", async () => {
  const h = await host();
  const fetchA = relayApp(h, [A]);
  const lt = await signLinkToken(h.privateKey, h.publicJwk, h.hostId, A);
  assert.equal((await fetchA("/link", { authorization: `Bearer ${lt}` })).status, 200);
  const again = await fetchA("/link", { authorization: `Bearer ${lt}` });
  assert.equal(again.status, 401);
  assert.match(await again.text(), /already used/);
  const fresh = await signLinkToken(h.privateKey, h.publicJwk, h.hostId, A);
  assert.equal((await fetchA("/link", { authorization: `Bearer ${fresh}` })).status, 200, "a new token links");
});

test("the ledger forgets a token id only after it expired", () => {
  const l = new LinkTokenLedger();
  assert.equal(l.claim("h", "j", 1000, 900), true);
  assert.equal(l.claim("h", "j", 1000, 950), false);
  assert.equal(l.claim("other", "j", 1000, 950), true, "ids are per host");
  assert.equal(l.claim("h", "j", 2000, 1001), true, "expired entries are dropped");
});

test("link token life is bounded: future iat, long lifetime, far exp, no jti", async () => {
  const h = await host();
  const now = Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ purpose: "link", iss: h.hostId, sub: h.hostId, aud: A, jti: "j1", ...claims })
      .setProtectedHeader({ alg: "EdDSA", jwk: h.publicJwk })
      .sign(h.privateKey);
  const cases: [string, Record<string, unknown>, string[]][] = [
    [
      "iat an hour ahead (stretches a 60 s token to an hour)",
      { iat: now + 3600, exp: now + 3660 },
      ["not_yet_valid", "ttl_too_long"],
    ],
    [
      "iat 45 min ahead, exp within 5 min of it",
      { iat: now + 2700, exp: now + 2900 },
      ["not_yet_valid", "ttl_too_long"],
    ],
    ["lifetime over 5 min", { iat: now, exp: now + 600 }, ["ttl_too_long"]],
    ["no jti", { iat: now, exp: now + 60, jti: undefined }, ["malformed"]],
  ];
  for (const [name, claims, want] of cases) {
    await assert.rejects(verifyLinkToken(await sign(claims), { audience: A }), (e) => want.includes(reason(e)), name);
  }
  const ok = await verifyLinkToken(await sign({ iat: now + 10, exp: now + 70 }), { audience: A });
  assert.equal(ok.jti, "j1", "small skew is fine");
});

test("a linked host and an unknown id refuse a bad token with the same status and text", async () => {
  const h = await host();
  const other = await host();
  const fetchA = relayApp(h, [A]);
  const unknown = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
  const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));
  const now = Math.floor(Date.now() / 1000);
  const body = { purpose: "client", iss: h.hostId, aud: A, exp: now + 600, jti: "x" };
  const tokens: [string, string][] = [
    ["malformed", "not.a.jwt!"],
    ["garbage base64", "eyJhbGciOi.eyJ.xx"],
    ["alg none", `${b64({ alg: "none" })}.${b64(body)}.`],
    ["alg HS256", `${b64({ alg: "HS256" })}.${b64(body)}.${b64("sig")}`],
    ["crit header", `${b64({ alg: "EdDSA", crit: ["x"] })}.${b64(body)}.${b64("sig")}`],
    ["another host's signature", await new SignJWT(body).setProtectedHeader({ alg: "EdDSA" }).sign(other.privateKey)],
    [
      "another issuer",
      await new SignJWT({ ...body, iss: other.hostId }).setProtectedHeader({ alg: "EdDSA" }).sign(other.privateKey),
    ],
  ];
  for (const [name, tok] of tokens) {
    const known = await fetchA(`/h/${h.hostId}`, { authorization: `Bearer ${tok}` });
    const stranger = await fetchA(`/h/${unknown}`, { authorization: `Bearer ${tok}` });
    const [kt, ut] = [await known.text(), await stranger.text()];
    assert.equal(known.status, stranger.status, `${name}: status`);
    assert.equal(kt, ut, `${name}: text`);
  }
});
