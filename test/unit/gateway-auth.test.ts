/**
 * The gateway's `connect` auth (agent/gateway/auth.ts), in process, as a
 * table: each mode against direct loopback, proxied, remote and relayed
 * peers; host-minted client tokens through a real verifier; proxy identities
 * (Tailscale, trusted proxy); and the failure limiter with its loopback
 * exemption, on a fake clock (behaviour, never timing).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { GatewayAuth, type AuthOk, type AuthResult, type ClientTokenVerifier } from "../../agent/gateway/auth.ts";
import { peerInfo, linkedPeerInfo, type PeerInfo } from "../../agent/gateway/peer.ts";
import type { GatewaySettings } from "../../agent/gateway/settings.ts";
import { ALL_OPERATOR_SCOPES } from "../../agent/gateway/scopes.ts";
import { checkHostPublicJwk, hostIdFromJwk, mintClientToken, verifyClientToken } from "../../shared/tokens.ts";

const TOKEN = "gateway-token-0123456789";
const PASSWORD = "correct horse battery staple";
const AUD = "https://relay.test:8443";

type AuthSettings = GatewaySettings["auth"];

function settings(over: Partial<AuthSettings> = {}): AuthSettings {
  return {
    mode: "token",
    token: { value: TOKEN, source: "test" },
    password: { value: PASSWORD, source: "test" },
    generatedTokenPath: undefined,
    allowTailscale: false,
    rateLimit: { maxFailures: 1_000, windowMs: 60_000, lockoutMs: 60_000, exemptLoopback: true },
    ...over,
  };
}

/** The peers a gateway meets, built the way the gateway builds them. */
const PEERS = {
  loopback: peerInfo("127.0.0.1", {}, []),
  loopbackV6: peerInfo("::1", { "user-agent": "cli" }, []),
  /** A reverse proxy on this machine: loopback TCP peer, forwarding headers. */
  proxied: peerInfo("127.0.0.1", { "x-forwarded-for": "203.0.113.5" }, []),
  /** Bound beyond loopback, a client on the LAN. */
  remote: peerInfo("192.0.2.7", {}, []),
  /** Came over the gateway's own relay link. */
  relayed: linkedPeerInfo({ "x-forwarded-for": "198.51.100.9", "x-loopgate-relay": "1" }),
} satisfies Record<string, PeerInfo>;

type Want = { method: string } | { detail: string };

function check(name: string, r: AuthResult, want: Want): void {
  if ("method" in want) {
    assert.ok(r.ok, `${name}: expected ok, got ${r.ok ? "" : `${r.detail} ${r.message}`}`);
    assert.equal(r.method, want.method, name);
  } else {
    assert.ok(!r.ok, `${name}: expected a refusal, got ${r.ok ? r.method : ""}`);
    assert.equal(r.detail, want.detail, `${name}: ${r.message}`);
  }
}

/** One row: what is configured, who connects, what it sends, what it gets. */
type Case = [string, AuthSettings, PeerInfo, { token?: string; password?: string } | undefined, Want];

/** Runs a table on a fresh GatewayAuth per row; `onOk` checks what a row that got in got. */
async function runTable(
  cases: Case[],
  onOk: (name: string, r: AuthOk, peer: PeerInfo) => void,
  verifier?: ClientTokenVerifier,
): Promise<void> {
  for (const [name, s, peer, creds, want] of cases) {
    const r = await new GatewayAuth(s, verifier ? { clientTokenVerifier: verifier } : {}).verify(creds, peer);
    check(name, r, want);
    if (r.ok) onOk(name, r, peer);
  }
}

test("modes × peers: who gets in with which credential", async () => {
  const noToken = settings({ token: undefined });
  const cases: Case[] = [
    ["token: the right token from loopback", settings(), PEERS.loopback, { token: TOKEN }, { method: "token" }],
    ["token: the right token, relayed", settings(), PEERS.relayed, { token: TOKEN }, { method: "token" }],
    ["token: the right token from the LAN", settings(), PEERS.remote, { token: TOKEN }, { method: "token" }],
    ["token: a wrong token", settings(), PEERS.loopback, { token: `${TOKEN}x` }, { detail: "AUTH_TOKEN_MISMATCH" }],
    [
      "token: a prefix of the token",
      settings(),
      PEERS.loopback,
      { token: TOKEN.slice(0, 8) },
      { detail: "AUTH_TOKEN_MISMATCH" },
    ],
    ["token: nothing, even from loopback", settings(), PEERS.loopback, undefined, { detail: "AUTH_TOKEN_MISSING" }],
    ["token: an empty token", settings(), PEERS.loopback, { token: "" }, { detail: "AUTH_TOKEN_MISSING" }],
    ["token: a password instead", settings(), PEERS.loopback, { password: PASSWORD }, { detail: "AUTH_TOKEN_MISSING" }],
    ["token: none configured", noToken, PEERS.loopback, { token: TOKEN }, { detail: "AUTH_UNAUTHORIZED" }],
    [
      "password: the right one",
      settings({ mode: "password" }),
      PEERS.remote,
      { password: PASSWORD },
      { method: "password" },
    ],
    [
      "password: a wrong one",
      settings({ mode: "password" }),
      PEERS.loopback,
      { password: "nope" },
      { detail: "AUTH_PASSWORD_MISMATCH" },
    ],
    [
      "password: the token instead",
      settings({ mode: "password" }),
      PEERS.loopback,
      { token: TOKEN },
      { detail: "AUTH_PASSWORD_MISSING" },
    ],
    [
      "password: nothing",
      settings({ mode: "password" }),
      PEERS.relayed,
      undefined,
      { detail: "AUTH_PASSWORD_MISSING" },
    ],
    [
      "password: none configured",
      settings({ mode: "password", password: undefined }),
      PEERS.loopback,
      { password: PASSWORD },
      { detail: "AUTH_UNAUTHORIZED" },
    ],
    ["none: direct loopback", settings({ mode: "none" }), PEERS.loopback, undefined, { method: "none" }],
    ["none: direct loopback over IPv6", settings({ mode: "none" }), PEERS.loopbackV6, undefined, { method: "none" }],
    [
      "none: a local proxy is not loopback trust",
      settings({ mode: "none" }),
      PEERS.proxied,
      undefined,
      { detail: "AUTH_REQUIRED" },
    ],
    [
      "none: relayed is not loopback trust",
      settings({ mode: "none" }),
      PEERS.relayed,
      undefined,
      { detail: "AUTH_REQUIRED" },
    ],
    ["none: a LAN peer", settings({ mode: "none" }), PEERS.remote, undefined, { detail: "AUTH_REQUIRED" }],
    [
      "none: relayed with the configured token",
      settings({ mode: "none" }),
      PEERS.relayed,
      { token: TOKEN },
      { method: "token" },
    ],
    [
      "none: relayed with a wrong token",
      settings({ mode: "none" }),
      PEERS.relayed,
      { token: "guess" },
      { detail: "AUTH_REQUIRED" },
    ],
    [
      "none: relayed, no token configured",
      settings({ mode: "none", token: undefined }),
      PEERS.relayed,
      { token: TOKEN },
      { detail: "AUTH_REQUIRED" },
    ],
    [
      "trusted-proxy: no identity",
      settings({ mode: "trusted-proxy" }),
      PEERS.proxied,
      undefined,
      { detail: "AUTH_UNAUTHORIZED" },
    ],
    [
      "trusted-proxy: the shared token is no way in",
      settings({ mode: "trusted-proxy" }),
      PEERS.loopback,
      { token: TOKEN },
      { detail: "AUTH_UNAUTHORIZED" },
    ],
  ];
  await runTable(cases, (name, r) =>
    assert.deepEqual(r.allowedScopes, ALL_OPERATOR_SCOPES, `${name}: full operator scopes`),
  );
});

test("proxy identities stand in for a credential only when none was given, and only where enabled", async () => {
  const tailscale = { ...PEERS.proxied, proxyIdentity: { user: "alice@example.com", via: "tailscale" as const } };
  const proxy = { ...PEERS.proxied, proxyIdentity: { user: "bob", via: "trusted-proxy" as const } };
  const cases: Case[] = [
    ["tailscale allowed", settings({ allowTailscale: true }), tailscale, undefined, { method: "tailscale" }],
    [
      "tailscale allowed, in none mode",
      settings({ mode: "none", allowTailscale: true }),
      tailscale,
      undefined,
      { method: "tailscale" },
    ],
    ["tailscale not allowed", settings(), tailscale, undefined, { detail: "AUTH_TOKEN_MISSING" }],
    [
      "tailscale identity plus a wrong token",
      settings({ allowTailscale: true }),
      tailscale,
      { token: "x" },
      { detail: "AUTH_TOKEN_MISMATCH" },
    ],
    [
      "trusted-proxy identity in trusted-proxy mode",
      settings({ mode: "trusted-proxy" }),
      proxy,
      undefined,
      { method: "trusted-proxy" },
    ],
    ["trusted-proxy identity in token mode", settings(), proxy, undefined, { detail: "AUTH_TOKEN_MISSING" }],
    [
      "tailscale identity in trusted-proxy mode, tailscale off",
      settings({ mode: "trusted-proxy" }),
      tailscale,
      undefined,
      { detail: "AUTH_UNAUTHORIZED" },
    ],
  ];
  await runTable(cases, (name, r, peer) => assert.equal(r.subject, peer.proxyIdentity?.user, `${name}: subject`));
});

async function hostKeys() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { privateKey: privateKey as CryptoKey, publicJwk, hostId: await hostIdFromJwk(publicJwk) };
}

test("host-minted client tokens: via the verifier in every mode, from connect or from the relay's edge", async () => {
  const h = await hostKeys();
  const other = await hostKeys();
  const revoked = new Set<string>();
  // The verifier as `loopgate gateway` builds it: this host's key, this relay's audience, the revocation list.
  const verifier: ClientTokenVerifier = async (token) => {
    const c = await verifyClientToken(token, h.publicJwk, {
      hostId: h.hostId,
      audience: [AUD],
      isRevoked: (id) => revoked.has(id),
    });
    return { scopes: c.scopes, id: c.id, ...(c.name ? { name: c.name } : {}) };
  };
  const mint = (key: CryptoKey, hostId: string, audience = AUD) =>
    mintClientToken(key, hostId, { audience, ttlSec: 600, scopes: ["operator.read"], name: "phone" });
  const good = await mint(h.privateKey, h.hostId);
  const gone = await mint(h.privateKey, h.hostId);
  revoked.add(gone.id);
  const elsewhere = (await mint(h.privateKey, h.hostId, "https://other-relay.test")).token;
  const foreign = (await mint(other.privateKey, other.hostId)).token;
  const edge = (token: string): PeerInfo => ({ ...PEERS.relayed, edgeToken: token });

  const cases: Case[] = [
    ["in connect, token mode", settings(), PEERS.relayed, { token: good.token }, { method: "client-token" }],
    [
      "in connect, password mode",
      settings({ mode: "password" }),
      PEERS.relayed,
      { token: good.token },
      { method: "client-token" },
    ],
    [
      "in connect, trusted-proxy mode",
      settings({ mode: "trusted-proxy" }),
      PEERS.proxied,
      { token: good.token },
      { method: "client-token" },
    ],
    [
      "from the relay's edge, none mode",
      settings({ mode: "none" }),
      edge(good.token),
      undefined,
      { method: "client-token" },
    ],
    ["from the relay's edge, token mode", settings(), edge(good.token), {}, { method: "client-token" }],
    [
      "edge token ignored once a password is given",
      settings({ mode: "password" }),
      edge(good.token),
      { password: "x" },
      { detail: "AUTH_PASSWORD_MISMATCH" },
    ],
    ["revoked", settings(), PEERS.relayed, { token: gone.token }, { detail: "AUTH_TOKEN_MISMATCH" }],
    ["revoked, from the edge", settings({ mode: "none" }), edge(gone.token), undefined, { detail: "AUTH_REQUIRED" }],
    ["for another relay", settings(), PEERS.relayed, { token: elsewhere }, { detail: "AUTH_TOKEN_MISMATCH" }],
    ["another host's token", settings(), PEERS.relayed, { token: foreign }, { detail: "AUTH_TOKEN_MISMATCH" }],
    [
      "garbage that looks like a JWT",
      settings(),
      PEERS.relayed,
      { token: "eyJ.eyJ.x" },
      { detail: "AUTH_TOKEN_MISMATCH" },
    ],
  ];
  await runTable(
    cases,
    (name, r) => {
      assert.deepEqual(r.allowedScopes, ["operator.read"], `${name}: the token's scopes, not the operator's`);
      assert.equal(r.tokenId, good.id, `${name}: token id (so revoking it closes the connection)`);
      assert.equal(r.subject, "phone", name);
    },
    verifier,
  );
  // No verifier (no host identity): a client token is just a wrong gateway token.
  check("no verifier", await new GatewayAuth(settings()).verify({ token: good.token }, PEERS.relayed), {
    detail: "AUTH_TOKEN_MISMATCH",
  });
  const late = new GatewayAuth(settings());
  late.setClientTokenVerifier(verifier);
  check("verifier set later", await late.verify({ token: good.token }, PEERS.relayed), { method: "client-token" });
});

/** A gateway auth with a small limit on a fake clock. */
function limited(over: Partial<AuthSettings["rateLimit"]> = {}) {
  let now = 1_000_000;
  const auth = new GatewayAuth(
    settings({
      rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 30_000, exemptLoopback: true, now: () => now, ...over },
    }),
  );
  return { auth, advance: (ms: number) => (now += ms) };
}

async function failTimes(auth: GatewayAuth, peer: PeerInfo, n: number): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal((await auth.verify({ token: `wrong-${i}` }, peer)).ok, false);
}

test("failure limit: a forwarded or LAN peer is locked out, even with the right token, until the lockout ends", async () => {
  for (const peer of ["relayed", "proxied", "remote"] as const) {
    const { auth, advance } = limited();
    await failTimes(auth, PEERS[peer], 3);
    const r = await auth.verify({ token: TOKEN }, PEERS[peer]);
    assert.ok(!r.ok && r.rateLimited, `${peer}: locked out`);
    assert.equal(r.detail, "AUTH_RATE_LIMITED");
    assert.equal(r.retryAfterMs, 30_000);
    assert.match(r.message, /retry in 30s/);
    advance(30_001);
    check(`${peer}: after the lockout`, await auth.verify({ token: TOKEN }, PEERS[peer]), { method: "token" });
  }
});

test("failure limit: keyed by the real client address, so one relayed client does not lock out another", async () => {
  const { auth } = limited();
  const a = linkedPeerInfo({ "x-forwarded-for": "198.51.100.1" });
  const b = linkedPeerInfo({ "x-forwarded-for": "198.51.100.2" });
  await failTimes(auth, a, 3);
  assert.equal((await auth.verify({ token: TOKEN }, a)).ok, false);
  check("another relayed address", await auth.verify({ token: TOKEN }, b), { method: "token" });
});

test("failure limit: a success clears the count; failures outside the window do not add up", async () => {
  const { auth, advance } = limited();
  await failTimes(auth, PEERS.remote, 2);
  check("success", await auth.verify({ token: TOKEN }, PEERS.remote), { method: "token" });
  await failTimes(auth, PEERS.remote, 2);
  check("two after a success", await auth.verify({ token: TOKEN }, PEERS.remote), { method: "token" });
  await failTimes(auth, PEERS.remote, 2);
  advance(60_001);
  await failTimes(auth, PEERS.remote, 2);
  check("two, a window later two more", await auth.verify({ token: TOKEN }, PEERS.remote), { method: "token" });
});

test("failure limit: the owner's loopback CLI is exempt; a loopback browser page is limited per origin", async () => {
  const { auth } = limited();
  await failTimes(auth, PEERS.loopback, 10);
  check("loopback CLI after 10 failures", await auth.verify({ token: TOKEN }, PEERS.loopback), { method: "token" });

  const page = (origin: string) => peerInfo("127.0.0.1", { origin }, []);
  await failTimes(auth, page("http://evil.test"), 3);
  const r = await auth.verify({ token: TOKEN }, page("http://evil.test"));
  assert.ok(!r.ok && r.rateLimited, "the page that guessed is locked out");
  check("another page", await auth.verify({ token: TOKEN }, page("http://127.0.0.1:18789")), { method: "token" });
  check("the CLI still", await auth.verify({ token: TOKEN }, PEERS.loopback), { method: "token" });

  const strict = limited({ exemptLoopback: false }).auth;
  await failTimes(strict, PEERS.loopback, 3);
  const s = await strict.verify({ token: TOKEN }, PEERS.loopback);
  assert.ok(!s.ok && s.rateLimited, "without the exemption loopback is limited too");
});
