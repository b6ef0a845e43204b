/**
 * Exchange codes at the relay, in process: the table (single use, expiry,
 * only hashes kept, a spent code stays spent when pushed again), the hub
 * taking a host's CONTROL push, and the Hono app trading `?code=` for the
 * token it stands for (WebSocket upgrade and browser navigation), refusing a
 * spent, unknown or expired code exactly like a bad token and counting it
 * toward the per-address lockout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { mintClientToken, hostIdFromJwk, checkHostPublicJwk } from "../../shared/tokens.ts";
import { encodeControl, type OpenMeta } from "../../shared/link/codec.ts";
import { hostLabel } from "../../shared/host-label.ts";
import { createRelayApp, type RelayAdapter } from "../../relay/core/app.ts";
import { CLIENT_TOKEN_HEADER } from "../../shared/http-headers.ts";
import { HostHub } from "../../relay/core/hub.ts";
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";
import {
  ExchangeCodeTable,
  hashExchangeCode,
  MAX_EXCHANGE_TTL_MS,
  type ExchangeCodeEntry,
} from "../../relay/core/exchange-codes.ts";
import { newExchangeCode } from "../../agent/tokens/exchange-codes.ts";

const A = "https://relay-a.test:8443";
const quiet = { info: () => {}, warn: () => {} };

async function host() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { privateKey: privateKey as CryptoKey, publicJwk, hostId: await hostIdFromJwk(publicJwk) };
}

test("a code is sha256, base64url; the host mints 144 random bits in 24 characters", async () => {
  const code = newExchangeCode();
  assert.match(code, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(newExchangeCode(), code);
  assert.equal(await hashExchangeCode(code), createHash("sha256").update(code).digest("base64url"));
});

test("the table hands a token out once, forgets it at expiry, and keeps a spent code spent", async () => {
  let now = 1_000_000;
  const t = new ExchangeCodeTable({ now: () => now });
  const h1 = await hashExchangeCode("code-one-aaaaaaaaaaaaaaaa");
  const h2 = await hashExchangeCode("code-two-aaaaaaaaaaaaaaaa");
  assert.equal(
    t.merge([
      { hash: h1, token: "tok1", exp: now + 60_000 },
      { hash: h2, token: "tok2", exp: now + 1_000 },
    ]),
    true,
  );
  assert.equal(t.redeem(h1), "tok1");
  assert.equal(t.redeem(h1), undefined, "second use refused");
  assert.equal(
    t.merge([{ hash: h1, token: "tok1", exp: now + 60_000 }]),
    false,
    "a push of the same code changes nothing",
  );
  assert.equal(t.redeem(h1), undefined, "still spent after the host pushed its pending list again");
  assert.ok(
    t.snapshot().every((e) => e.token === "" || e.hash !== h1),
    "a spent code keeps its hash, not its token",
  );
  now += 1_001;
  assert.equal(t.redeem(h2), undefined, "expired");
  now += 60_000;
  assert.equal(t.size, 0, "everything dropped at expiry");
  assert.equal(t.merge([{ hash: h1, token: "tok1", exp: now + 5_000 }]), true, "after expiry the hash is forgotten");
});

test("the table skips malformed, expired, over-long-lived entries and a raw code in place of a hash", async () => {
  const now = 5_000_000;
  const t = new ExchangeCodeTable({ now: () => now, maxTokenBytes: 100 });
  const h = await hashExchangeCode("x".repeat(24));
  t.merge([
    null,
    "nope",
    { hash: "x".repeat(24), token: "t", exp: now + 1000 },
    { hash: h, token: "", exp: now + 1000 },
    { hash: h, token: "t".repeat(101), exp: now + 1000 },
    { hash: h, token: "t", exp: now - 1 },
    { hash: h, token: "t", exp: "soon" },
  ]);
  assert.equal(t.size, 0);
  t.merge([{ hash: h, token: "t", exp: now + 365 * 86_400_000 }]);
  assert.equal(t.snapshot()[0]!.exp, now + MAX_EXCHANGE_TTL_MS, "a life longer than the cap is cut to it");
});

/** A hub with a fake link, the app in front of it; upgrades answer 200 and record what would reach the host. */
async function rig(opts: { singleHost?: boolean; maxFailures?: number; revoked?: string[] } = {}) {
  const h = await host();
  const limits: RelayLimits = {
    ...DEFAULT_RELAY_LIMITS,
    authFailures: { maxFailures: opts.maxFailures ?? 1000, windowMs: 60_000, lockoutMs: 60_000 },
  };
  const persisted: ExchangeCodeEntry[][] = [];
  const hub = new HostHub(h.hostId, h.publicJwk, limits, quiet, {
    heartbeat: "external",
    revoked: opts.revoked ?? [],
    onExchangeCodes: (codes) => persisted.push(codes),
  });
  const link = hub.attachLink({ send: () => {}, close: () => {} }, h.publicJwk);
  const opened: OpenMeta[] = [];
  const logged: string[] = [];
  const adapter: RelayAdapter = {
    limits,
    audiences: [A],
    claimLinkToken: () => true,
    isAllowed: (id) => id === h.hostId,
    singleHost: () => opts.singleHost ?? true,
    hostRecord: (id) => (id === h.hostId ? hub : undefined),
    clientAddr: () => "192.0.2.7",
    upgradeLink: (c) => c.text("linked", 200),
    upgradeClient: (c, _id, meta) => {
      opened.push(meta);
      return c.text("client", 200);
    },
    forwardHttp: async (c) => c.text("forwarded", 200),
    stats: () => ({}),
    metrics: new RelayMetrics(),
    log: {
      info: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
      warn: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
    },
  };
  const app = createRelayApp(adapter);
  const mint = async (ttlSec = 600, scopes = ["operator.read"]) =>
    mintClientToken(h.privateKey, h.hostId, { audience: A, ttlSec, scopes, name: "tui" });
  /** What the host's link pushes after `token create --exchange`. */
  const push = async (token: string, ttlMs = 60_000) => {
    const code = newExchangeCode();
    link.message(
      encodeControl({
        type: "exchange-codes",
        codes: [{ hash: await hashExchangeCode(code), token, exp: Date.now() + ttlMs }],
      }),
    );
    return code;
  };
  const revoke = (ids: string[]) => link.message(encodeControl({ type: "revocations", ids }));
  const get = (path: string, headers: Record<string, string> = {}) =>
    app.fetch(new Request(`${A}${path}`, { headers: { host: "relay-a.test:8443", ...headers } }));
  const ws = (path: string, headers: Record<string, string> = {}) => get(path, { upgrade: "websocket", ...headers });
  return { h, hub, app, mint, push, revoke, get, ws, opened, persisted, logged };
}

test("a WebSocket upgrade with ?code= is the token's: same id and scopes, the token (not the code) reaches the host; once", async () => {
  const r = await rig();
  const t = await r.mint(600, ["operator.read", "operator.write"]);
  const code = await r.push(t.token);
  const first = await r.ws(`/h/${r.h.hostId}?code=${code}&x=1`);
  assert.equal(first.status, 200, await first.text());
  const meta = r.opened[0]!;
  assert.equal(meta.tokenId, t.id);
  assert.deepEqual(meta.scopes, ["operator.read", "operator.write"]);
  assert.equal(meta.headers?.[CLIENT_TOKEN_HEADER], t.token, "the gateway gets the token to verify itself");
  assert.equal(meta.query, "x=1", "the code is not forwarded to the host");

  const badToken = await r.ws(`/h/${r.h.hostId}?token=not.a.token`);
  const again = await r.ws(`/h/${r.h.hostId}?code=${code}`);
  const unknown = await r.ws(`/h/${r.h.hostId}?code=${newExchangeCode()}`);
  const garbage = await r.ws(`/h/${r.h.hostId}?code=%00%01`);
  const otherHost = await r.ws(`/h/${"A".repeat(43)}?code=${newExchangeCode()}`);
  const want = { status: badToken.status, text: await badToken.text() };
  for (const [name, res] of [
    ["second use", again],
    ["unknown code", unknown],
    ["malformed code", garbage],
    ["code for an unknown host", otherHost],
  ] as const) {
    assert.deepEqual({ status: res.status, text: await res.text() }, want, `${name}: refused like any bad token`);
  }
  assert.equal(r.opened.length, 1, "nothing else reached the host");
  assert.ok(!r.logged.join("\n").includes(code), "the relay never logs a code");
  assert.ok(!r.logged.join("\n").includes(t.token), "nor a token");
});

test("an expired code is refused; revocation still applies behind a code", async () => {
  const r = await rig();
  const t = await r.mint();
  const code = await r.push(t.token, 50);
  await new Promise((res) => setTimeout(res, 80));
  assert.equal((await r.ws(`/h/${r.h.hostId}?code=${code}`)).status, 401, "expired");

  const revoked = await r.mint();
  const c2 = await r.push(revoked.token);
  r.revoke([revoked.id]);
  const res = await r.ws(`/h/${r.h.hostId}?code=${c2}`);
  assert.equal(res.status, 403);
  assert.match(await res.text(), /revoked/);
  assert.equal(r.opened.length, 0);
});

test("wrong codes count toward the per-address lockout", async () => {
  const r = await rig({ maxFailures: 3 });
  const t = await r.mint();
  const code = await r.push(t.token);
  for (let i = 0; i < 3; i++) assert.equal((await r.ws(`/h/${r.h.hostId}?code=${newExchangeCode()}`)).status, 401);
  const locked = await r.ws(`/h/${r.h.hostId}?code=${code}`);
  assert.equal(locked.status, 429, "locked out: even the good code waits");
  assert.ok(locked.headers.get("retry-after"));
});

test("a browser navigation with ?code= at the host's origin gets the token's cookie and the URL without the code", async () => {
  const r = await rig({ singleHost: false });
  const t = await r.mint();
  const code = await r.push(t.token);
  const origin = `${hostLabel(r.h.hostId)!}.relay-a.test:8443`;
  const res = await r.get(`/chat?code=${code}&session=main`, { host: origin });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/chat?session=main");
  const cookie = res.headers.get("set-cookie") ?? "";
  assert.match(cookie, /^__Host-loopgate=/);
  assert.ok(cookie.includes(t.token), "the cookie is the token's");
  assert.match(cookie, /HttpOnly; Secure; SameSite=Strict/);
  const again = await r.get(`/chat?code=${code}`, { host: origin });
  assert.equal(again.status, 401, "the code is spent");
  // The path form on a relay shared by several hosts takes no browser credential, a code neither.
  const t2 = await r.mint();
  const c2 = await r.push(t2.token);
  assert.equal((await r.get(`/h/${r.h.hostId}/?code=${c2}`)).status, 403);
});

test("a single-host relay trades ?code= under /h/HOST/ too; the hub reports every change for persistence", async () => {
  const r = await rig({ singleHost: true });
  const t = await r.mint();
  const code = await r.push(t.token);
  assert.equal(r.persisted.length, 1, "the push is persisted");
  assert.equal(r.persisted[0]![0]!.token, t.token);
  const res = await r.get(`/h/${r.h.hostId}/?code=${code}`);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), `/h/${r.h.hostId}/`);
  const spent = r.persisted.at(-1)!;
  assert.equal(spent[0]!.used, true, "the spent mark is persisted");
  assert.equal(spent[0]!.token, "", "without the token");
  // An evicted Workers object rebuilds its hub from storage: the spent code stays spent.
  const reborn = new HostHub(r.h.hostId, r.h.publicJwk, DEFAULT_RELAY_LIMITS, quiet, {
    heartbeat: "external",
    exchangeCodes: spent,
  });
  assert.equal(reborn.redeemExchangeCode(await hashExchangeCode(code)), undefined);
});
