/**
 * The relay: one Hono app for Node and Workers. Routes:
 *   GET  /healthz              liveness and counts (no secrets, no host ids)
 *   GET  /metrics              OpenMetrics, only with the operator's metrics token (404 when none is set)
 *   GET  /link                 the host's outbound link (link token, allow-list)
 *   GET  /h/:hostId            a client WebSocket for that host (client token)
 *   ANY  /h/:hostId/*          HTTP to that host's gateway (client token)
 *   ANY  https://<label>.<relay>/*   the host's own origin: everything, `/` included
 *                              (relay/core/host-origin.ts says how hosts are kept apart)
 * Tokens are checked here, before anything reaches a host; the adapter
 * (relay/node/server.ts, relay/workers/worker.ts) does the socket work.
 */
import { Hono, type Context } from "hono";
import type { JWK } from "jose";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { FailureLimiter } from "../../shared/rate-limit.ts";
import type { ClientClaims } from "../../shared/tokens.ts";
import { authenticateClient, authenticateLink, cookieName, chooseSubprotocol, type HostRecord } from "./auth.ts";
import {
  browserCredentialRefusal,
  cookieFor,
  hostResponse,
  hostTarget,
  serviceWorkerRefusal,
  type HostTarget,
} from "./host-origin.ts";
import type { RelayLimits } from "./limits.ts";
import { EXCHANGE_CODE_PARAM } from "./exchange-codes.ts";
import { drainUnreadBody } from "./drain-body.ts";
import {
  encodedHostIdRefusal,
  checkRequestShape,
  forwardedHeaders,
  checkedOpenMeta,
  isRefusal,
  type Refusal,
} from "./forward-request.ts";
import type { RelayMetrics, RefusalReason } from "./metrics.ts";
import { checkMetricsAuth, metricsRefusal, metricsResponse } from "./metrics-endpoint.ts";
import { CLIENT_TOKEN_HEADER } from "../../shared/http-headers.ts";
import type { RelayLog } from "../../shared/log.ts";

export interface RelayAdapter {
  limits: RelayLimits;
  /** Configured public URLs of this relay (token audiences); never taken from a request. */
  audiences: readonly string[];
  /** Records a verified link token's id; false when it was used before (a replay). */
  claimLinkToken(hostId: string, jti: string, exp: number): Promise<boolean> | boolean;
  isAllowed(hostId: string): boolean;
  /** True when at most one host may link: the shared `/h/<hostId>/` path form may then serve browsers. */
  singleHost(): boolean;
  hostRecord(hostId: string): Promise<HostRecord | undefined> | HostRecord | undefined;
  /** The client's address as the runtime sees it. */
  clientAddr(c: Context): string;
  upgradeLink(c: Context, link: { hostId: string; publicJwk: JWK }): Promise<Response> | Response;
  upgradeClient(c: Context, hostId: string, meta: OpenMeta, protocol: string | undefined): Promise<Response> | Response;
  forwardHttp(c: Context, hostId: string, meta: OpenMeta, body: Uint8Array | undefined): Promise<Response>;
  stats(): Record<string, unknown>;
  /** The counters this app and its hubs increment. */
  metrics: RelayMetrics;
  /** `/metrics` on the relay's own origin: the operator's token and the page. Absent: no such path (404). */
  metricsEndpoint?: { token: string; render(): string | Promise<string> };
  log: RelayLog;
}

export const HOST_ID = /^[A-Za-z0-9_-]{43}$/;

const NO_AUDIENCE = "this relay has no public URL configured (relay serve --public-url, or RELAY_AUDIENCES on Workers)";

export function createRelayApp(adapter: RelayAdapter): Hono {
  const app = new Hono();
  const limiter = new FailureLimiter(adapter.limits.authFailures);
  const metrics = adapter.metrics;

  /** Every refusal is counted under a label from a fixed set; the client reads `text`. */
  const refuse = (c: Context, status: number, why: RefusalReason, text: string, retryAfterSec?: number): Response => {
    metrics.refused(why);
    return c.text(text + "\n", status as 401, retryAfterSec ? { "retry-after": String(retryAfterSec) } : undefined);
  };
  const refuseRequest = (c: Context, r: Refusal): Response => {
    metrics.refused("request_shape");
    return c.text(r.reason + "\n", r.status, r.headers);
  };

  app.use("*", async (c, next) => {
    await next();
    // A body the answer did not need is read before the answer leaves (drain-body.ts: workerd's connections).
    await drainUnreadBody(c.req.raw, adapter.limits.maxHttpBodyBytes);
    c.header("cache-control", c.res.headers.get("cache-control") ?? "no-store");
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "no-referrer");
    c.header("strict-transport-security", "max-age=31536000");
  });

  // A host's own origin belongs to it entirely (its /healthz and /link too); the path form is routed the same way.
  app.use("*", async (c, next) => {
    const target = hostTarget(c.req.raw);
    if (!target) return next();
    return hostRoute(c, target);
  });

  app.get("/healthz", (c) => c.json({ ok: true, ...adapter.stats() }));

  app.on(["GET", "HEAD"], "/metrics", async (c) => {
    const endpoint = adapter.metricsEndpoint;
    if (!endpoint) return c.text("not found\n", 404);
    const addr = adapter.clientAddr(c);
    const wait = limiter.retryAfterMs(addr);
    if (wait > 0)
      return c.text("too many failed attempts; retry later\n", 429, { "retry-after": String(Math.ceil(wait / 1000)) });
    const auth = await checkMetricsAuth(c.req.raw, endpoint.token);
    if (auth !== "ok") {
      if (auth === "invalid") {
        limiter.fail(addr);
        metrics.authFailed("metrics");
      }
      return metricsRefusal(auth);
    }
    limiter.succeed(addr);
    return metricsResponse(await endpoint.render(), c.req.method);
  });

  app.get("/link", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket")
      return refuse(c, 426, "request_shape", "the link is a WebSocket");
    const addr = adapter.clientAddr(c);
    const wait = limiter.retryAfterMs(addr);
    if (wait > 0)
      return refuse(c, 429, "rate_limited", "too many failed attempts; retry later", Math.ceil(wait / 1000));
    if (adapter.audiences.length === 0) return refuse(c, 503, "not_configured", NO_AUDIENCE);
    const auth = await authenticateLink(
      c.req.raw,
      adapter.audiences,
      (id) => adapter.isAllowed(id),
      adapter.limits.maxTokenBytes,
    );
    if (auth.ok && !(await adapter.claimLinkToken(auth.hostId, auth.jti, auth.exp))) {
      limiter.fail(addr);
      metrics.authFailed("link");
      adapter.log.warn("link refused", { addr, reason: "link token replayed" });
      return refuse(c, 401, "token_replayed", "link token refused (already used)");
    }
    if (!auth.ok) {
      limiter.fail(addr);
      if (auth.why !== "token_missing") metrics.authFailed("link");
      adapter.log.warn("link refused", { addr, reason: auth.reason });
      return refuse(c, auth.status, auth.why, auth.reason);
    }
    limiter.succeed(addr);
    return adapter.upgradeLink(c, auth);
  });

  const hostRoute = async (c: Context, target: HostTarget): Promise<Response> => {
    const hostId = target.hostId;
    const addr = adapter.clientAddr(c);
    const isUpgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
    const wait = limiter.retryAfterMs(addr);
    if (wait > 0)
      return refuse(c, 429, "rate_limited", "too many failed attempts; retry later", Math.ceil(wait / 1000));
    const url = new URL(c.req.url);
    if (!HOST_ID.test(hostId)) {
      // A percent-encoded host id would shift the forwarded path: a clear 400, not a guess at a token.
      const encoded = target.via === "path" ? encodedHostIdRefusal(url.pathname) : undefined;
      if (encoded) return refuseRequest(c, encoded);
      limiter.fail(addr);
      metrics.authFailed("client");
      return refuse(c, 401, "token_invalid", "token refused");
    }
    // What would reach the host is checked before any token work: a bad request never travels the link.
    const shape = checkRequestShape(c.req.method, target.rest, url.search.slice(1));
    if (shape) return refuseRequest(c, shape);
    const headers = forwardedHeaders(c.req.raw, addr, hostId);
    if (isRefusal(headers)) return refuseRequest(c, headers);
    const record = adapter.isAllowed(hostId) ? await adapter.hostRecord(hostId) : undefined;
    if (adapter.audiences.length === 0) return refuse(c, 503, "not_configured", NO_AUDIENCE);
    const cookie = cookieFor(target, cookieName(hostId));
    // Audiences are the relay's configured URLs: a host's origin (`<label>.<relay>`) is the same relay.
    const auth = await authenticateClient(c.req.raw, hostId, record, adapter.audiences, {
      allowQuery: true,
      maxTokenBytes: adapter.limits.maxTokenBytes,
      cookieName: cookie.name,
    });
    if (!auth.ok) {
      // No token at all guesses nothing: refused, never counted toward a lockout. Nor is a token for a
      // host this relay allows but has not heard from since it started (a restarted Node relay before the
      // host relinks): it cannot be checked yet, and counting it would lock out every client that retries
      // through the restart by the time the host is back. The answer is the same either way.
      const unverifiable = record === undefined && adapter.isAllowed(hostId);
      if (!auth.missing && !unverifiable) {
        limiter.fail(addr);
        metrics.authFailed("client");
      }
      adapter.log.warn("client refused", { addr, status: auth.status, reason: auth.reason });
      return refuse(c, auth.status, auth.why, auth.reason);
    }
    limiter.succeed(addr);
    const browserRefusal =
      browserCredentialRefusal(c.req.raw, target, auth.source, adapter.singleHost()) ??
      serviceWorkerRefusal(c.req.raw, target);
    if (browserRefusal) return refuse(c, 403, "browser_policy", browserRefusal);
    const claims: ClientClaims = auth.claims;
    const prefix = target.via === "path" ? `/h/${hostId}` : "";
    const rest = target.rest;
    // The relay's own credentials go no further: not to the host, not into a redirect.
    url.searchParams.delete("token");
    url.searchParams.delete(EXCHANGE_CODE_PARAM);
    // A browser's one-time ?token= (or single-use ?code=) becomes an HttpOnly cookie scoped to this host, and leaves the address bar.
    if (!isUpgrade && auth.source === "query" && c.req.method === "GET") {
      const maxAge = Math.max(0, claims.exp - Math.floor(Date.now() / 1000));
      return new Response(null, {
        status: 303,
        headers: {
          location: `${prefix}${rest}${url.search}`,
          "set-cookie": `${cookie.name}=${auth.token}; Path=${cookie.path}; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAge}`,
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
        },
      });
    }
    const meta = checkedOpenMeta({
      kind: isUpgrade ? "ws" : "http",
      path: rest,
      ...(url.search ? { query: url.search.slice(1) } : {}),
      ...(isUpgrade ? {} : { method: c.req.method }),
      // A browser authenticated by its cookie has no token to put in `connect`; the gateway
      // verifies this one itself (host key), so the relay cannot mint access it was not given.
      headers: { ...headers, ...(isUpgrade ? { [CLIENT_TOKEN_HEADER]: auth.token } : {}) },
      clientAddr: addr,
      tokenId: claims.id,
      scopes: claims.scopes,
    });
    if (isRefusal(meta)) return refuseRequest(c, meta);
    if (isUpgrade) return adapter.upgradeClient(c, hostId, meta, chooseSubprotocol(c.req.raw));
    let body: Uint8Array | undefined;
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const len = Number(c.req.header("content-length") ?? "0");
      if (len > adapter.limits.maxHttpBodyBytes) return refuse(c, 413, "request_shape", "request body too large");
      body = new Uint8Array(await c.req.arrayBuffer());
      if (body.length > adapter.limits.maxHttpBodyBytes)
        return refuse(c, 413, "request_shape", "request body too large");
    }
    return hostResponse(await adapter.forwardHttp(c, hostId, meta, body), target, adapter.singleHost());
  };

  app.notFound((c) => c.text("not found\n", 404));
  return app;
}
