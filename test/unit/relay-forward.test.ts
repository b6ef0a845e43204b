/**
 * The relay's side of the OPEN rule, in process: whatever path, query,
 * method and headers a client sends, the relay either refuses the request
 * with a 4xx or forwards an OPEN the host accepts (same validator, and the
 * connector can turn it into a local request). Plus the exact refusals for
 * the requests that used to drop a host's link.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { mintClientToken, hostIdFromJwk, checkHostPublicJwk } from "../../shared/tokens.ts";
import { validateOpenMeta, type OpenMeta } from "../../shared/link/codec.ts";
import { createRelayApp, type RelayAdapter } from "../../relay/core/app.ts";
import { DEFAULT_RELAY_LIMITS } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";
import { upstreamRequest } from "../../agent/link/upstream-request.ts";

const AUD = "https://relay.test:8443";

async function rig() {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  const hostId = await hostIdFromJwk(publicJwk);
  const token = (
    await mintClientToken(privateKey as CryptoKey, hostId, { audience: AUD, ttlSec: 600, scopes: ["operator.read"] })
  ).token;
  const forwarded: OpenMeta[] = [];
  const adapter: RelayAdapter = {
    limits: { ...DEFAULT_RELAY_LIMITS, authFailures: { maxFailures: 1_000_000, windowMs: 60_000, lockoutMs: 1 } },
    audiences: [AUD],
    claimLinkToken: () => true,
    isAllowed: (id) => id === hostId,
    singleHost: () => true,
    hostRecord: (id) => (id === hostId ? { hostId, publicJwk, isRevoked: () => false } : undefined),
    clientAddr: () => "192.0.2.1",
    upgradeLink: (c) => c.text("linked"),
    upgradeClient: (c, _h, meta) => (forwarded.push(meta), c.text("client")),
    forwardHttp: async (c, _h, meta) => (forwarded.push(meta), c.text("forwarded")),
    stats: () => ({}),
    metrics: new RelayMetrics(),
    log: { info: () => {}, warn: () => {} },
  };
  return { app: createRelayApp(adapter), hostId, token, forwarded };
}

test("the requests that used to drop a host's link are refused at the relay with clear statuses", async () => {
  const { app, hostId, token, forwarded } = await rig();
  const auth = { authorization: `Bearer ${token}` };
  const encoded = hostId.slice(0, -1) + "%" + hostId.charCodeAt(hostId.length - 1).toString(16);
  const cases: [string, string, RequestInit, number][] = [
    ["encoded host id", `/h/${encoded}/x`, { headers: auth }, 400],
    ["encoded host id, upgrade", `/h/${encoded}`, { headers: { ...auth, upgrade: "websocket" } }, 400],
    ["path over 4096", `/h/${hostId}/${"p".repeat(5000)}`, { headers: auth }, 414],
    ["query over 8192", `/h/${hostId}/x?q=${"q".repeat(9000)}`, { headers: auth }, 414],
    ["M-SEARCH", `/h/${hostId}/x`, { headers: auth, method: "M-SEARCH" }, 405],
    ["PROPFIND", `/h/${hostId}/x`, { headers: auth, method: "PROPFIND" }, 405],
    ["header over 4096", `/h/${hostId}/x`, { headers: { ...auth, "user-agent": "u".repeat(5000) } }, 431],
  ];
  for (const [name, path, init, status] of cases) {
    const r = await app.fetch(new Request(`${AUD}${path}`, init));
    assert.equal(r.status, status, `${name}: ${await r.text()}`);
  }
  assert.equal(forwarded.length, 0);
  const ok = await app.fetch(new Request(`${AUD}/h/${hostId}/a/b?c=d`, { headers: auth }));
  assert.equal(ok.status, 200);
  assert.deepEqual([forwarded[0]?.path, forwarded[0]?.query], ["/a/b", "c=d"]);
});

test("fuzz: the relay refuses a request or forwards an OPEN the host accepts", async () => {
  const { app, hostId, token, forwarded } = await rig();
  const seg = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.nat({ max: 6000 }).map((n) => "s".repeat(n)),
    fc.constantFrom("%2F", "%00", "..", "%ZZ", "ä", " ", "#", "?"),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(seg, { maxLength: 4 }),
      fc.option(
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.nat({ max: 10_000 }).map((n) => "q=" + "x".repeat(n)),
        ),
        { nil: undefined },
      ),
      fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "M-SEARCH", "PROPFIND", "TRACE"),
      fc.dictionary(
        fc.constantFrom(
          "origin",
          "user-agent",
          "accept",
          "content-type",
          "x-forwarded-for",
          "x-loopgate-relay",
          "cookie",
        ),
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.nat({ max: 6000 }).map((n) => "v".repeat(n)),
        ),
      ),
      fc.boolean(),
      async (segs, query, method, hdrs, upgrade) => {
        let req: Request;
        try {
          const url = `${AUD}/h/${hostId}/${segs.join("/")}${query !== undefined ? `?${query}` : ""}`;
          req = new Request(url, {
            method,
            headers: { ...hdrs, authorization: `Bearer ${token}`, ...(upgrade ? { upgrade: "websocket" } : {}) },
            ...(method === "GET" || method === "HEAD" ? {} : { body: "" }),
          });
        } catch {
          return true; // not a request any client can send
        }
        const before = forwarded.length;
        const r = await app.fetch(req);
        if (forwarded.length === before) return r.status >= 400 && r.status < 500;
        const meta = forwarded[forwarded.length - 1]!;
        validateOpenMeta(meta as unknown as Record<string, unknown>);
        const local = upstreamRequest(meta, "ws://127.0.0.1:18789");
        return local.url.host === "127.0.0.1:18789" && local.headers["x-loopgate-relay"] === "1";
      },
    ),
    { numRuns: 400 },
  );
});
