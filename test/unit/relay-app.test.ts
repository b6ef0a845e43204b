/**
 * The relay app's routing and answers, in process: `createRelayApp(adapter)
 * .request(…)` with a small adapter whose hosts are real hubs
 * (relay/core/hub.ts) linked in memory (test/helpers/hub-link.ts), real
 * host keys and client tokens. No sockets. What the e2e suites show over
 * TLS with real processes is checked here in milliseconds: which refusals
 * come before any token work, how bad tokens are answered for known and
 * unknown hosts, what is forwarded (a foreign Authorization) and what never
 * is (the relay's token, Set-Cookie, Service-Worker-Allowed), the browser
 * `?token=` exchange, the per-host origin rules, host offline, and the
 * auth-failure lockout. The request-shape statuses with a good token
 * (relay-forward.test.ts), the audience and link-token rules
 * (relay-auth.test.ts) and /metrics (relay-metrics.test.ts) are tested there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { CryptoKey } from "jose";
import { createRelayApp, type RelayAdapter } from "../../relay/core/app.ts";
import { CLIENT_TOKEN_HEADER } from "../../shared/http-headers.ts";
import type { HostHub } from "../../relay/core/hub.ts";
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { hostLabel } from "../../shared/host-label.ts";
import { mintClientToken } from "../../shared/tokens.ts";
import { linkHost, makeHub, settle, type HostEnd, type HttpAnswer } from "../helpers/hub-link.ts";

const AUD = "https://relay.test";
const LIMIT = 3;

interface TestHost {
  hub: HostHub;
  hostId: string;
  privateKey: CryptoKey;
  /** `https://<label>.relay.test`: the host's own origin. */
  origin: string;
  /** A valid client token (id `tokenId`). */
  token: string;
  tokenId: string;
  link(http?: HttpAnswer): HostEnd;
}

async function testHost(metrics: RelayMetrics): Promise<TestHost> {
  const h = await makeHub({}, { metrics });
  const minted = await mintClientToken(h.privateKey, h.hostId, {
    audience: AUD,
    ttlSec: 600,
    scopes: ["operator.read"],
  });
  return {
    hub: h.hub,
    hostId: h.hostId,
    privateKey: h.privateKey,
    origin: `https://${hostLabel(h.hostId)}.relay.test`,
    token: minted.token,
    tokenId: minted.id,
    link: (http) => linkHost(h.hub, h.publicJwk, http ? { http } : {}),
  };
}

/**
 * The app for hosts A and B (both allowed; A linked unless told), the way the
 * Node adapter wires hubs: admission first, then the hub. The client address
 * is whatever `x-test-addr` says (default 192.0.2.1), as a runtime would see it.
 */
async function rig(
  opts: {
    singleHost?: boolean;
    linkA?: boolean;
    http?: HttpAnswer;
    limits?: Partial<RelayLimits>;
    /** A is allowed but unknown until `rememberA()`: a Node relay just restarted, before the host relinks. */
    forgetA?: boolean;
  } = {},
) {
  const metrics = new RelayMetrics();
  const a = await testHost(metrics);
  const b = await testHost(metrics);
  const hubs = new Map([a, b].map((h) => [h.hostId, h.hub]));
  let forgotten = opts.forgetA ? a.hostId : undefined;
  const forwarded: { hostId: string; meta: OpenMeta; body: string | undefined }[] = [];
  const upgrades: { hostId: string; meta: OpenMeta; protocol: string | undefined }[] = [];
  const adapter: RelayAdapter = {
    limits: {
      ...DEFAULT_RELAY_LIMITS,
      authFailures: { maxFailures: LIMIT, windowMs: 60_000, lockoutMs: 60_000 },
      maxHttpBodyBytes: 1024,
      ...opts.limits,
    },
    audiences: [AUD],
    claimLinkToken: () => true,
    isAllowed: (id) => hubs.has(id),
    singleHost: () => opts.singleHost ?? false,
    hostRecord: (id) => (id === forgotten ? undefined : hubs.get(id)),
    clientAddr: (c) => c.req.header("x-test-addr") ?? "192.0.2.1",
    upgradeLink: (c) => c.text("linked"),
    upgradeClient: (c, hostId, meta, protocol) => {
      const no = hubs.get(hostId)!.admission(meta);
      if (no) return c.text(no.text, no.status);
      upgrades.push({ hostId, meta, protocol });
      return c.text("upgraded");
    },
    forwardHttp: async (c, hostId, meta, body) => {
      const hub = hubs.get(hostId)!;
      const no = hub.admission(meta);
      if (no) return c.text(no.text, no.status);
      forwarded.push({ hostId, meta, body: body && new TextDecoder().decode(body) });
      const reply = await hub.forwardHttp(meta, body);
      return new Response(reply.body, { status: reply.status, headers: reply.headers });
    },
    stats: () => ({ hosts: { allowed: hubs.size } }),
    metrics,
    log: { info: () => {}, warn: () => {} },
  };
  const app = createRelayApp(adapter);
  const hostA = opts.linkA === false ? undefined : a.link(opts.http);
  const send = (url: string, init: RequestInit = {}) => app.request(url, init);
  const rememberA = () => {
    forgotten = undefined;
  };
  return { app, send, a, b, hostA, forwarded, upgrades, metrics, rememberA };
}

const CLIENT_TOKEN = "x-loopgate-client-token";
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const WS = { upgrade: "websocket", connection: "upgrade" };
const authFailures = (m: RelayMetrics) => m.snapshot({ hostsAllowed: 2, hosts: [] }).authFailures.client;

test("refused before any token work: the status says what is wrong with the request, whatever the token", async () => {
  const { send, a, forwarded, upgrades, metrics } = await rig();
  const encoded = `${a.hostId.slice(0, -1)}%${a.hostId.charCodeAt(42).toString(16).toUpperCase()}`;
  const cases: [string, string, RequestInit, number][] = [
    ["encoded host id", `${AUD}/h/${encoded}/x`, {}, 400],
    ["invalid percent-encoding in the id", `${AUD}/h/${"A".repeat(41)}%ZZ/x`, {}, 400],
    ["path over 4096, path form", `${AUD}/h/${a.hostId}/${"p".repeat(5000)}`, {}, 414],
    ["path over 4096, host origin", `${a.origin}/${"p".repeat(5000)}`, {}, 414],
    ["query over 8192", `${a.origin}/x?q=${"q".repeat(9000)}`, {}, 414],
    ["M-SEARCH", `${a.origin}/x`, { method: "M-SEARCH" }, 405],
    ["PROPFIND, path form", `${AUD}/h/${a.hostId}/x`, { method: "PROPFIND" }, 405],
  ];
  // Twice the lockout limit, with no token and with a wrong one: none of it is an auth failure.
  for (let round = 0; round < 2 * LIMIT; round++)
    for (const [name, url, init, status] of cases) {
      const headers = round % 2 ? bearer("not-a-token") : {};
      const r = await send(url, { ...init, headers });
      assert.equal(r.status, status, `${name}: ${await r.text()}`);
      if (status === 405) assert.match(r.headers.get("allow") ?? "", /GET, HEAD, POST/);
    }
  assert.equal(forwarded.length + upgrades.length, 0);
  assert.equal(authFailures(metrics), 0, "no token was looked at");
  assert.equal((await send(`${a.origin}/ok`, { headers: bearer(a.token) })).status, 200, "not locked out");
});

test("refused before any token work: an oversized or control-character header", async () => {
  const { send, a } = await rig();
  for (const [name, headers, status] of [
    ["header over 4096", { "user-agent": "u".repeat(5000) }, 431],
    ["control character", { "user-agent": "a\u0001b" }, 400],
  ] as const) {
    const r = await send(`${a.origin}/x`, { headers });
    assert.equal(r.status, status, `${name} without a token: ${await r.text()}`);
  }
});

test("oversized or control-character headers and bodies: refused with a good token, nothing forwarded", async () => {
  const { send, a, forwarded } = await rig();
  const cases: [string, RequestInit, number][] = [
    ["header over 4096", { headers: { ...bearer(a.token), accept: "a".repeat(5000) } }, 431],
    ["control character", { headers: { ...bearer(a.token), "user-agent": "a\u0001b" } }, 400],
    [
      "foreign Authorization over 4096",
      { headers: { [CLIENT_TOKEN]: a.token, authorization: `Basic ${"b".repeat(5000)}` } },
      431,
    ],
    ["body over the limit", { method: "POST", headers: bearer(a.token), body: "x".repeat(2000) }, 413],
  ];
  for (const [name, init, status] of cases) {
    const r = await send(`${a.origin}/x`, init);
    assert.equal(r.status, status, `${name}: ${await r.text()}`);
  }
  assert.equal(forwarded.length, 0);
});

test("bad tokens: named only when the host's key signed them; otherwise the same text for known and unknown hosts", async () => {
  const { send, a, b, hostA, metrics } = await rig({
    limits: { authFailures: { maxFailures: 1000, windowMs: 60_000, lockoutMs: 60_000 } },
  });
  const stranger = await testHost(new RelayMetrics()); // not allowed on this relay
  const mint = (h: { privateKey: CryptoKey; hostId: string }, o: { audience?: string; ttlSec?: number } = {}) =>
    mintClientToken(h.privateKey, h.hostId, { audience: AUD, ttlSec: 600, scopes: ["operator.read"], ...o });
  const expired = (await mint(a, { ttlSec: -120 })).token;
  const wrongAud = (await mint(a, { audience: "https://other-relay.test" })).token;
  const revoked = await mint(a);
  hostA!.mux.sendControl({ type: "revocations", ids: [revoked.id] });
  await settle();

  const INVALID = "token refused (invalid)\n";
  const cases: [string, string, number, string][] = [
    ["expired", expired, 401, "token refused (expired)\n"],
    ["wrong audience", wrongAud, 403, "token refused (wrong_audience)\n"],
    ["revoked", revoked.token, 403, "token refused (revoked)\n"],
    ["host B's token", b.token, 401, INVALID],
    ["a stranger's token", stranger.token, 401, INVALID],
    ["garbage", "garbage", 401, INVALID],
    ["a JWT with a forged signature", `${a.token.slice(0, a.token.lastIndexOf("."))}.AAAA`, 401, INVALID],
  ];
  for (const [name, token, status, text] of cases) {
    for (const [where, url] of [
      ["host origin", `${a.origin}/x`],
      ["path form", `${AUD}/h/${a.hostId}/x`],
      ["WebSocket", `${AUD}/h/${a.hostId}`],
    ] as const) {
      // Our own header: an Authorization that is not a loopgate token would be the upstream's (next test).
      const r = await send(url, { headers: { [CLIENT_TOKEN]: token, ...(where === "WebSocket" ? WS : {}) } });
      assert.equal(r.status, status, `${name} at ${where}`);
      assert.equal(await r.text(), text, `${name} at ${where}`);
    }
    // The same token at a host this relay does not serve, and at a host id that is no host at all.
    for (const url of [`${stranger.origin}/x`, `${AUD}/h/${"Z".repeat(43)}/x`]) {
      const r = await send(url, { headers: { [CLIENT_TOKEN]: token, "x-test-addr": "192.0.2.50" } });
      assert.deepEqual([r.status, await r.text()], [401, INVALID], `${name} at ${url.slice(0, 40)}`);
    }
  }
  // No token at all: a hint, never counted as a failed login.
  const before = authFailures(metrics);
  const none = await send(`${a.origin}/x`, { headers: { "x-test-addr": "192.0.2.99" } });
  assert.equal(none.status, 401);
  assert.match(await none.text(), /^token required: send Authorization: Bearer/);
  assert.equal(authFailures(metrics), before);
});

test("an Authorization that is not a relay token is the upstream's: forwarded, never a failed login", async () => {
  const { send, a, forwarded, metrics } = await rig();
  const secret = "Bearer the-upstream-gateway-secret";
  for (let i = 0; i < 3 * LIMIT; i++) {
    const r = await send(`${a.origin}/x`, { headers: { authorization: secret } });
    assert.equal(r.status, 401, "no relay token");
  }
  assert.equal(authFailures(metrics), 0);
  const ok = await send(`${a.origin}/api`, { headers: { authorization: secret, [CLIENT_TOKEN]: a.token } });
  assert.equal(ok.status, 200, "not locked out");
  assert.equal(forwarded[0]?.meta.headers?.authorization, secret, "the upstream's own secret reaches it");
  // The relay's own token is never forwarded, wherever it came from.
  for (const headers of [bearer(a.token), { [CLIENT_TOKEN]: a.token }])
    await send(`${a.origin}/api?token=${a.token}`, { method: "POST", headers, body: "b" });
  for (const f of forwarded.slice(1)) {
    assert.ok(!JSON.stringify(f.meta).includes(a.token), "no client token in a forwarded HTTP request");
    assert.equal(f.meta.query, undefined, "?token= is cut from the query");
  }
});

test("WebSockets: the verified token goes to the gateway in its own header, the subprotocol is chosen", async () => {
  const { send, a, upgrades } = await rig();
  const r = await send(`${a.origin}/`, {
    headers: { ...WS, "sec-websocket-protocol": `loopgate.v1, bearer.${a.token}`, origin: a.origin },
  });
  assert.equal(r.status, 200, await r.text());
  assert.equal(upgrades[0]?.protocol, "loopgate.v1");
  assert.equal(upgrades[0]?.meta.kind, "ws");
  assert.equal(upgrades[0]?.meta.headers?.[CLIENT_TOKEN_HEADER], a.token);
  assert.equal(upgrades[0]?.meta.tokenId, a.tokenId);
  assert.equal(upgrades[0]?.meta.headers?.["x-forwarded-for"], "192.0.2.1");
});

test("?token= in a browser becomes an HttpOnly cookie for that host and leaves the address bar", async () => {
  const one = await rig();
  const r = await one.send(`${one.a.origin}/app/?token=${one.a.token}&keep=1`);
  assert.equal(r.status, 303);
  assert.equal(r.headers.get("location"), "/app/?keep=1");
  const cookie = r.headers.get("set-cookie") ?? "";
  const maxAge = Number(/Max-Age=(\d+)$/.exec(cookie)?.[1]);
  assert.match(cookie, /^__Host-loopgate=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=\d+$/);
  assert.ok(maxAge > 590 && maxAge <= 600, `Max-Age ${maxAge} is the token's remaining life`);
  assert.equal(one.forwarded.length, 0, "the exchange itself reaches no host");
  const page = await one.send(`${one.a.origin}/app/`, { headers: { cookie: cookie.split(";")[0]! } });
  assert.deepEqual([page.status, await page.text()], [200, "GET /app/"]);

  // The path form on a single-host relay: a cookie scoped to the host's prefix.
  const single = await rig({ singleHost: true });
  const p = await single.send(`${AUD}/h/${single.a.hostId}/?token=${single.a.token}`);
  assert.equal(p.status, 303);
  assert.equal(p.headers.get("location"), `/h/${single.a.hostId}/`);
  assert.match(p.headers.get("set-cookie") ?? "", new RegExp(`^lg_[^=]+=[^;]+; Path=/h/${single.a.hostId}; HttpOnly`));

  // On a relay shared by hosts, the path form takes no browser credential: it points at the host's origin.
  const shared = await one.send(`${AUD}/h/${one.a.hostId}/?token=${one.a.token}`);
  assert.equal(shared.status, 403);
  assert.match(await shared.text(), new RegExp(`open ${one.a.origin.replace(/\./g, "\\.")}/ instead`));

  // Not for a WebSocket, nor a POST: those are forwarded (without the token).
  const post = await one.send(`${one.a.origin}/x?token=${one.a.token}`, { method: "POST", body: "b" });
  assert.equal(post.status, 200);
  assert.equal(post.headers.get("set-cookie"), null);
});

test("the cookie: only for the host's own pages; never at another host's origin", async () => {
  const { send, a, b, upgrades } = await rig({ singleHost: true });
  const cookie = `__Host-loopgate=${a.token}`;
  const nav = { "sec-fetch-site": "same-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" };
  const cors = { "sec-fetch-site": "same-site", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty" };
  const cases: [string, string, RequestInit, number][] = [
    ["own page's fetch", `${a.origin}/x`, { headers: { cookie, origin: a.origin } }, 200],
    ["no Origin (a plain load)", `${a.origin}/x`, { headers: { cookie } }, 200],
    ["same-site navigation", `${a.origin}/`, { headers: { cookie, ...nav } }, 200],
    ["host B's page", `${a.origin}/x`, { method: "POST", headers: { cookie, origin: b.origin }, body: "x" }, 403],
    ["the relay's own origin", `${a.origin}/x`, { headers: { cookie, origin: AUD } }, 403],
    ["an opaque origin", `${a.origin}/x`, { headers: { cookie, origin: "null" } }, 403],
    ["same-site fetch", `${a.origin}/x`, { headers: { cookie, ...cors } }, 403],
    ["WebSocket from host B's page", `${a.origin}/`, { headers: { cookie, origin: b.origin, ...WS } }, 403],
    ["A's cookie at B's origin", `${b.origin}/`, { headers: { cookie, origin: b.origin } }, 401],
    [
      "the path form's cookie at a host origin",
      `${a.origin}/`,
      { headers: { cookie: `lg_${a.hostId.slice(0, 16)}=${a.token}` } },
      401,
    ],
    ["the origin cookie on the path form", `${AUD}/h/${a.hostId}/`, { headers: { cookie } }, 401],
  ];
  for (const [name, url, init, status] of cases) {
    const r = await send(url, init);
    assert.equal(r.status, status, `${name}: ${await r.text()}`);
  }
  assert.equal(upgrades.length, 0);
  const ws = await send(`${a.origin}/`, { headers: { cookie, origin: a.origin, ...WS } });
  assert.equal(ws.status, 200, "the WebSocket from the host's own page");
});

test("host responses: Set-Cookie and Service-Worker-Allowed never pass; isolation headers always set", async () => {
  const http: HttpAnswer = () => ({
    headers: {
      "content-type": "text/html",
      "set-cookie": "session=planted; Domain=relay.test",
      "service-worker-allowed": "/",
      "clear-site-data": '"*"',
      "strict-transport-security": "max-age=0",
      "x-upstream": "kept",
    },
    body: "<p>hi</p>",
  });
  for (const singleHost of [false, true]) {
    const { send, a } = await rig({ http, singleHost });
    for (const url of [`${a.origin}/page`, `${AUD}/h/${a.hostId}/page`]) {
      const r = await send(url, { headers: bearer(a.token) });
      assert.equal(r.status, 200, url);
      assert.equal(await r.text(), "<p>hi</p>");
      const h = Object.fromEntries(r.headers);
      for (const gone of ["set-cookie", "service-worker-allowed", "clear-site-data"])
        assert.equal(h[gone], undefined, `${gone} at ${url}`);
      assert.equal(h["strict-transport-security"], "max-age=31536000", "the relay's HSTS, not the host's");
      assert.equal(h["x-upstream"], "kept");
      assert.equal(h["cross-origin-opener-policy"], "same-origin");
      assert.equal(h["cross-origin-resource-policy"], "same-origin");
      assert.equal(h["x-content-type-options"], "nosniff");
      assert.equal(h["origin-agent-cluster"], "?1");
      const sandboxed = url.includes("/h/") && !singleHost;
      assert.equal(h["content-security-policy"], sandboxed ? "sandbox" : undefined, `${url} single=${singleHost}`);
    }
    // A service worker only at a host's own origin.
    const sw = { ...bearer(a.token), "service-worker": "script" };
    assert.equal((await send(`${AUD}/h/${a.hostId}/sw.js`, { headers: sw })).status, 403);
    assert.equal((await send(`${a.origin}/sw.js`, { headers: sw })).status, 200);
  }
});

test("a host's origin is entirely the host's; the relay's own routes stay on the relay's origin", async () => {
  const { send, a } = await rig();
  for (const path of ["/healthz", "/metrics", "/link", "/"]) {
    const r = await send(`${a.origin}${path}`, { headers: bearer(a.token) });
    assert.deepEqual([r.status, await r.text()], [200, `GET ${path}`], path);
    assert.equal((await send(`${a.origin}${path}`)).status, 401, `${path} needs the host's token`);
  }
  const health = await send(`${AUD}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { ok: true, hosts: { allowed: 2 } });
  assert.equal(health.headers.get("cache-control"), "no-store");
  assert.equal((await send(`${AUD}/metrics`)).status, 404, "no metrics token configured: no /metrics");
  assert.equal((await send(`${AUD}/link`)).status, 426, "the link is a WebSocket");
  assert.equal((await send(`${AUD}/nothing`)).status, 404);
});

test("host offline: HTTP 503 and a WebSocket refused 503 before the upgrade, after the token checked out", async () => {
  const { send, a, metrics } = await rig({ linkA: false });
  const http = await send(`${a.origin}/x`, { headers: bearer(a.token) });
  assert.deepEqual([http.status, await http.text()], [503, "host offline: its link is not connected\n"]);
  const ws = await send(`${AUD}/h/${a.hostId}`, { headers: { ...bearer(a.token), ...WS } });
  assert.equal(ws.status, 503);
  assert.equal(
    (await send(`${a.origin}/x`, { headers: bearer("bad") })).status,
    401,
    "a bad token learns nothing more",
  );
  assert.equal(metrics.snapshot({ hostsAllowed: 2, hosts: [] }).refusals.host_offline, 2);
  a.link();
  assert.equal((await send(`${a.origin}/x`, { headers: bearer(a.token) })).status, 200, "linked: served");
});

test("lockout: after the limit of failed tokens an address gets 429 with Retry-After, even with a good token", async () => {
  const { send, a, b, metrics } = await rig();
  const from = (addr: string, token: string, url = `${a.origin}/x`) =>
    send(url, { headers: { ...bearer(token), "x-test-addr": addr } });
  for (let i = 0; i < LIMIT; i++) assert.equal((await from("198.51.100.7", b.token)).status, 401);
  const locked = await from("198.51.100.7", a.token);
  assert.equal(locked.status, 429);
  assert.equal(locked.headers.get("retry-after"), "60");
  assert.match(await locked.text(), /too many failed attempts/);
  assert.equal((await from("198.51.100.7", a.token, `${AUD}/h/${a.hostId}/x`)).status, 429, "the path form too");
  assert.equal(
    (await send(`${AUD}/link`, { headers: { ...WS, "x-test-addr": "198.51.100.7" } })).status,
    429,
    "and /link",
  );
  assert.equal((await from("198.51.100.8", a.token)).status, 200, "another address is not affected");
  const snap = metrics.snapshot({ hostsAllowed: 2, hosts: [] });
  assert.equal(snap.authFailures.client, LIMIT);
  assert.equal(snap.refusals.rate_limited, 3);
  // A host id that is no host id counts as a failure too.
  for (let i = 0; i < LIMIT; i++) assert.equal((await from("198.51.100.9", a.token, `${AUD}/h/short/x`)).status, 401);
  assert.equal((await from("198.51.100.9", a.token)).status, 429);
});

test("a restarted relay does not lock clients out while their host relinks; unknown hosts still count", async () => {
  const { send, a, metrics, rememberA } = await rig({ forgetA: true, linkA: false });
  for (let i = 0; i < LIMIT * 3; i++) {
    const r = await send(`${a.origin}/`, { headers: bearer(a.token) });
    assert.equal(r.status, 401, "a token the relay cannot check yet is refused");
    assert.match(await r.text(), /token refused \(invalid\)/, "the same answer as for an unknown host");
  }
  assert.equal(authFailures(metrics), 0, "not counted: the host is allowed, only not linked since the start");
  rememberA();
  a.link();
  await settle();
  assert.equal(
    (await send(`${a.origin}/`, { headers: bearer(a.token) })).status,
    200,
    "not locked out once it relinks",
  );

  const stranger = await testHost(new RelayMetrics()); // not allowed on this relay
  const statuses: number[] = [];
  for (let i = 0; i <= LIMIT; i++)
    statuses.push(
      (await send(`${stranger.origin}/`, { headers: { ...bearer(stranger.token), "x-test-addr": "192.0.2.9" } }))
        .status,
    );
  assert.equal(statuses.at(-1), 429, `a host the relay does not allow still counts toward the lockout: ${statuses}`);
});
