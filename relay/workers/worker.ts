/**
 * The relay on Cloudflare Workers. The Worker only routes: `/link`,
 * `/h/HOSTID/…` and a host's own origin `https://<label>.<relay>/…` (a
 * wildcard route, see wrangler.toml) go to the Durable Object named by the host id, which runs the
 * same Hono app (relay/core/app.ts) and the same hub (relay/core/hub.ts) as the Node
 * relay. No Node APIs on this path (relay/workers/tsconfig.json checks that).
 *
 * Hibernation: sockets are accepted with `acceptWebSocket`; each carries its
 * role and stream id in its attachment; the host's keepalive text ping is
 * answered by an auto-response without waking the object; the host key and
 * revocations live in storage. When an evicted object wakes, it rebuilds the
 * hub from its sockets and storage (see restore()).
 *
 * Metrics: `/metrics` on the relay's own name, with the METRICS_TOKEN secret
 * as a bearer token, sums what every object counted (one RPC per allowed
 * host, plus the decoy). An object's counters live in its memory: they start
 * again from zero when the object is evicted or hibernates (Prometheus'
 * rate() and increase() take counter resets in their stride).
 *
 * Unknown host ids all go to one decoy object, which refuses them exactly as
 * a real one refuses a bad token: a client cannot tell which hosts exist, and
 * nobody can create objects for arbitrary ids.
 */
import { DurableObject } from "cloudflare:workers";
import { decodeJwt } from "jose/jwt/decode";
import type { JWK } from "jose";
import type { Hono } from "hono";
import { createRelayApp, HOST_ID, type RelayAdapter } from "../core/app.ts";
import { hostIdFromHostHeader, hostTarget } from "../core/host-origin.ts";
import { HostHub, type ClientHandle, type ClientSocket, type LinkHandle } from "../core/hub.ts";
import type { ExchangeCodeEntry } from "../core/exchange-codes.ts";
import { hubHttpResponse, whenAdmitted } from "../core/hub-adapter.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from "../core/limits.ts";
import { LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { relayAudience } from "../../shared/tokens.ts";
import { bearerToken } from "../../shared/http-headers.ts";
import { sendableClose } from "../../shared/close.ts";
import { RelayMetrics, mergeSnapshots, metricFamilies, type MetricsSnapshot } from "../core/metrics.ts";
import { renderOpenMetrics } from "../core/openmetrics.ts";
import { drainUnreadBody } from "../core/drain-body.ts";
import {
  checkMetricsAuth,
  metricsRefusal,
  metricsResponse,
  normalizeMetricsToken,
  MIN_METRICS_TOKEN_CHARS,
} from "../core/metrics-endpoint.ts";
import { consoleLineLogger } from "../../shared/log.ts";

export interface Env {
  HOSTS: DurableObjectNamespace<HostRelay>;
  /** Host ids allowed to link, comma or whitespace separated (a var or a secret). */
  ALLOWED_HOSTS?: string;
  /** Public URLs of this relay accepted as token audiences, comma separated. Required: without it no token is accepted (audiences never come from a request). */
  RELAY_AUDIENCES?: string;
  /** Largest client message forwarded, bytes (the platform itself refuses received messages over its limit). */
  MAX_MESSAGE_BYTES?: string;
  /** Seconds of link silence before the relay drops it (alarm-checked). */
  LINK_TIMEOUT_SECONDS?: string;
  /** Concurrent client streams per host (default 1024). */
  MAX_STREAMS_PER_HOST?: string;
  /** Concurrent streams per client token on a host (default a quarter of the per-host limit). */
  MAX_STREAMS_PER_TOKEN?: string;
  /** Concurrent streams per client address on a host (default half the per-host limit). */
  MAX_STREAMS_PER_ADDR?: string;
  /** Bearer token for /metrics (a secret: `wrangler secret put METRICS_TOKEN`). Unset: no /metrics. */
  METRICS_TOKEN?: string;
  /** "1": /metrics adds families labelled with host ids (operator opt-in). */
  METRICS_PER_HOST?: string;
  /** "1" exposes /_debug/object on each object (tests under local workerd only). */
  LOOPGATE_TEST?: string;
}

const DECOY = "decoy";

type Attachment =
  | { role: "link"; hostId: string; nextStreamId: number }
  | { role: "client"; streamId: number; tokenId?: string; addr?: string };

/** The configured audiences, each as an origin (https://host[:port]); unparsable entries are dropped. */
export function configuredAudiences(env: Env): string[] {
  const out: string[] = [];
  for (const raw of (env.RELAY_AUDIENCES ?? "").split(/[\s,]+/)) {
    if (!raw) continue;
    try {
      out.push(relayAudience(raw));
    } catch {
      // not a URL: ignored
    }
  }
  return out;
}

const JTI_PREFIX = "link-jti:";
/** Storage key of the host's exchange codes (hashes, tokens not yet handed out, spent marks). */
const EXCHANGE_CODES_KEY = "exchange-codes";

export function allowedHosts(env: Env): Set<string> {
  return new Set((env.ALLOWED_HOSTS ?? "").split(/[\s,]+/).filter((h) => HOST_ID.test(h)));
}

function limitsFrom(env: Env): RelayLimits {
  const maxMessage = Number(env.MAX_MESSAGE_BYTES ?? "");
  const timeoutS = Number(env.LINK_TIMEOUT_SECONDS ?? "");
  const maxStreams = Number(env.MAX_STREAMS_PER_HOST ?? "");
  const perToken = Number(env.MAX_STREAMS_PER_TOKEN ?? "");
  const perAddr = Number(env.MAX_STREAMS_PER_ADDR ?? "");
  return {
    ...DEFAULT_RELAY_LIMITS,
    ...(Number.isInteger(maxStreams) && maxStreams > 0 ? { maxStreamsPerHost: maxStreams } : {}),
    ...(Number.isInteger(perToken) && perToken > 0 ? { maxStreamsPerToken: perToken } : {}),
    ...(Number.isInteger(perAddr) && perAddr > 0 ? { maxStreamsPerClientAddr: perAddr } : {}),
    // Workers refuses received WebSocket messages over 1 MiB by default; say so with our own 1009 first.
    maxMessageBytes: Number.isFinite(maxMessage) && maxMessage > 0 ? maxMessage : 1024 * 1024,
    heartbeat: {
      ...DEFAULT_RELAY_LIMITS.heartbeat,
      ...(Number.isFinite(timeoutS) && timeoutS > 0 ? { timeoutMs: timeoutS * 1000 } : {}),
    },
  };
}

/** The host id a request is for, if it is an allowed one; the decoy otherwise. */
function routeKey(req: Request, url: URL, allowed: Set<string>): string | undefined {
  if (url.pathname === "/link" && !hostIdFromHostHeader(req.headers.get("host"))) {
    const auth = req.headers.get("authorization");
    let iss: unknown;
    try {
      iss = decodeJwt(bearerToken(auth) ?? "").iss;
    } catch {
      iss = undefined;
    }
    return typeof iss === "string" && allowed.has(iss) ? iss : DECOY;
  }
  const target = hostTarget(req);
  if (!target) return undefined;
  return allowed.has(target.hostId) ? target.hostId : DECOY;
}

/** What the entry Worker answers itself (a Response), or the key of the Durable Object that answers. */
async function entryAnswer(req: Request, env: Env): Promise<Response | string> {
  const url = new URL(req.url);
  const allowed = allowedHosts(env);
  if (url.pathname === "/healthz" && !hostIdFromHostHeader(req.headers.get("host"))) {
    return Response.json(
      { ok: true, runtime: "workers", hosts: { allowed: allowed.size } },
      { headers: { "cache-control": "no-store" } },
    );
  }
  if (
    url.pathname === "/metrics" &&
    !hostIdFromHostHeader(req.headers.get("host")) &&
    (req.method === "GET" || req.method === "HEAD")
  ) {
    return serveMetrics(req, env, allowed);
  }
  return routeKey(req, url, allowed) ?? new Response("not found\n", { status: 404 });
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const own = await entryAnswer(req, env);
    if (own instanceof Response) {
      // Answered here: a body it did not need is read first (drain-body.ts: workerd's connections).
      await drainUnreadBody(req, limitsFrom(env).maxHttpBodyBytes);
      return own;
    }
    return env.HOSTS.get(env.HOSTS.idFromName(own)).fetch(req);
  },
} satisfies ExportedHandler<Env>;

/** `/metrics` for the whole relay: every object's counters, summed. */
async function serveMetrics(req: Request, env: Env, allowed: Set<string>): Promise<Response> {
  const token = normalizeMetricsToken(env.METRICS_TOKEN);
  if (!token) return new Response("not found\n", { status: 404 });
  // Never serve behind a guessable token: the operator sees why instead of a quiet 404.
  if (token.length < MIN_METRICS_TOKEN_CHARS)
    return new Response(`METRICS_TOKEN is shorter than ${MIN_METRICS_TOKEN_CHARS} characters: /metrics is off\n`, {
      status: 503,
      headers: { "cache-control": "no-store" },
    });
  const decoy = env.HOSTS.get(env.HOSTS.idFromName(DECOY));
  const auth = await checkMetricsAuth(req, token);
  if (auth !== "ok") {
    // Counted where all unknown traffic is counted: the decoy object.
    if (auth === "invalid") await decoy.metricsAuthFailed().catch(() => {});
    return metricsRefusal(auth);
  }
  let unreachable = 0;
  const parts = await Promise.all(
    [...allowed, DECOY].map(async (key) => {
      try {
        return (await env.HOSTS.get(env.HOSTS.idFromName(key)).metricsSnapshot()) as MetricsSnapshot;
      } catch {
        unreachable++;
        return undefined;
      }
    }),
  );
  const merged = mergeSnapshots(
    parts.filter((p): p is MetricsSnapshot => p !== undefined),
    allowed.size,
  );
  const text = renderOpenMetrics([
    ...metricFamilies(merged, { perHost: env.METRICS_PER_HOST === "1" }),
    {
      type: "gauge",
      name: "loopgate_relay_objects_unreachable",
      help: "Durable Objects that did not answer this scrape (their counters are missing from it).",
      samples: [{ value: unreachable }],
    },
  ]);
  return metricsResponse(text, req.method);
}

/** Module-level: how many times an object was constructed in this isolate (tests see evictions). */
let constructions = 0;

export class HostRelay extends DurableObject<Env> {
  readonly #limits: RelayLimits;
  readonly #allowed: Set<string>;
  readonly #app: Hono;
  #hub: HostHub | undefined;
  #linkWs: WebSocket | undefined;
  readonly #linkHandles = new Map<WebSocket, LinkHandle>();
  readonly #clients = new Map<WebSocket, ClientHandle>();
  readonly #metrics = new RelayMetrics();
  readonly #log = consoleLineLogger();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    constructions++;
    this.#limits = limitsFrom(env);
    this.#allowed = allowedHosts(env);
    // The host's keepalive is answered by the runtime: no wake-up for an idle host.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(LINK_PING_TEXT, LINK_PONG_TEXT));
    this.#app = createRelayApp(this.#adapter());
    void ctx.blockConcurrencyWhile(() => this.#restore());
  }

  /** Rebuilds the hub after an eviction: host key and revocations from storage, sockets from the runtime. */
  async #restore(): Promise<void> {
    const host = await this.ctx.storage.get<{ hostId: string; publicJwk: JWK }>("host");
    if (!host) return;
    const revoked = (await this.ctx.storage.get<string[]>("revoked")) ?? [];
    const codes = (await this.ctx.storage.get<ExchangeCodeEntry[]>(EXCHANGE_CODES_KEY)) ?? [];
    const hub = this.#newHub(host.hostId, host.publicJwk, revoked, codes);
    const links = this.ctx.getWebSockets("link");
    const link = links[links.length - 1];
    if (link) {
      const att = link.deserializeAttachment() as Attachment | null;
      this.#linkWs = link;
      this.#linkHandles.set(link, hub.restoreLink(this.#linkSocket(link), att?.role === "link" ? att.nextStreamId : 1));
    }
    for (const ws of this.ctx.getWebSockets("client")) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att?.role !== "client") {
        ws.close(1011, "lost stream state");
        continue;
      }
      const handle = hub.restoreClient(this.#clientSocket(ws), att.streamId, att.tokenId, att.addr);
      if (handle) this.#clients.set(ws, handle);
    }
  }

  #newHub(hostId: string, publicJwk: JWK, revoked: readonly string[], codes: ExchangeCodeEntry[] = []): HostHub {
    this.#hub = new HostHub(hostId, publicJwk, this.#limits, this.#log, {
      metrics: this.#metrics,
      heartbeat: "external",
      revoked,
      // The runtime gives no send backpressure: bound what one stream may queue.
      linkLimits: { maxQueuedBytes: Math.max(this.#limits.maxMessageBytes, this.#limits.maxBufferedPerStream) * 2 },
      onRevocations: (ids) => void this.ctx.storage.put("revoked", ids),
      // Spent codes too: a code used before an eviction stays spent after it.
      exchangeCodes: codes,
      onExchangeCodes: (list) => void this.ctx.storage.put(EXCHANGE_CODES_KEY, list),
    });
    return this.#hub;
  }

  #linkSocket(ws: WebSocket) {
    return {
      send: (f: Uint8Array | string) => ws.send(f),
      close: (code: number, reason: string) => safeClose(ws, code, reason),
    };
  }

  #clientSocket(ws: WebSocket): ClientSocket {
    return {
      // No send-completion signal on Workers: the bytes are the runtime's once handed over.
      send: (data, done) => {
        try {
          ws.send(data);
        } finally {
          done();
        }
      },
      close: (code, reason) => safeClose(ws, code, reason),
      // Reading cannot be paused here; the stream's queue bound closes a client that outruns its credit.
      pause: () => {},
      resume: () => {},
    };
  }

  #adapter(): RelayAdapter {
    return {
      limits: this.#limits,
      audiences: configuredAudiences(this.env),
      // Link token ids live in this host's storage until they expire: a token links once, even across evictions.
      claimLinkToken: async (_hostId, jti, exp) => {
        const key = JTI_PREFIX + jti;
        if ((await this.ctx.storage.get<number>(key)) !== undefined) return false;
        const now = Math.floor(Date.now() / 1000);
        const seen = await this.ctx.storage.list<number>({ prefix: JTI_PREFIX, limit: 1000 });
        const expired = [...seen].filter(([, e]) => e < now).map(([k]) => k);
        if (expired.length) await this.ctx.storage.delete(expired.slice(0, 128));
        await this.ctx.storage.put(key, exp);
        return true;
      },
      log: this.#log,
      isAllowed: (id) => this.#allowed.has(id),
      singleHost: () => this.#allowed.size <= 1,
      hostRecord: (id) => (this.#hub?.hostId === id ? this.#hub : undefined),
      clientAddr: (c) => c.req.header("cf-connecting-ip") ?? "unknown",
      stats: () => ({ runtime: "workers" }),
      metrics: this.#metrics,
      upgradeLink: async (_c, link) => {
        await this.ctx.storage.put("host", { hostId: link.hostId, publicJwk: link.publicJwk });
        const hub = this.#hub?.hostId === link.hostId ? this.#hub : this.#newHub(link.hostId, link.publicJwk, []);
        const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
        this.ctx.acceptWebSocket(server, ["link"]);
        const old = this.#linkWs;
        if (old) this.#linkHandles.delete(old);
        const handle = hub.attachLink(this.#linkSocket(server), link.publicJwk);
        this.#linkWs = server;
        this.#linkHandles.set(server, handle);
        this.#saveLinkAttachment();
        await this.ctx.storage.setAlarm(Date.now() + this.#limits.heartbeat.timeoutMs);
        return new Response(null, { status: 101, webSocket: client });
      },
      // Offline or over a per-token/per-address cap: refused before the upgrade, with the reason.
      upgradeClient: (_c, _hostId, meta, protocol) =>
        whenAdmitted(this.#hub, meta, this.#metrics, (hub) => this.#acceptClient(hub, meta, protocol)),
      forwardHttp: async (c, _hostId, meta, body) =>
        whenAdmitted(this.#hub, meta, this.#metrics, (hub) => hubHttpResponse(hub, c.req.method, meta, body)),
    };
  }

  /** A client WebSocket accepted for hibernation, its stream id and owner kept in its attachment. */
  #acceptClient(hub: HostHub, meta: OpenMeta, protocol: string | undefined): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, ["client"]);
    const handle = hub.attachClient(this.#clientSocket(server), meta);
    if (handle) {
      this.#clients.set(server, handle);
      server.serializeAttachment({
        role: "client",
        streamId: handle.streamId,
        ...(meta.tokenId ? { tokenId: meta.tokenId } : {}),
        addr: meta.clientAddr.slice(0, 64),
      } satisfies Attachment);
      this.#saveLinkAttachment();
    }
    return new Response(null, {
      status: 101,
      webSocket: client,
      ...(protocol ? { headers: { "sec-websocket-protocol": protocol } } : {}),
    });
  }

  /** RPC from the entry's /metrics: this object's counters and its host, if one linked here. */
  metricsSnapshot(): MetricsSnapshot {
    return this.#metrics.snapshot({ hostsAllowed: 0, hosts: this.#hub ? [this.#hub.sample()] : [] });
  }

  /** RPC from the entry: a scrape presented a wrong metrics token. */
  metricsAuthFailed(): void {
    this.#metrics.authFailed("metrics");
  }

  #saveLinkAttachment(): void {
    const ws = this.#linkWs;
    const hub = this.#hub;
    if (ws && hub)
      ws.serializeAttachment({ role: "link", hostId: hub.hostId, nextStreamId: hub.nextStreamId } satisfies Attachment);
  }

  override async fetch(req: Request): Promise<Response> {
    if (this.env.LOOPGATE_TEST === "1" && new URL(req.url).pathname.endsWith("/_debug/object")) {
      return Response.json({ constructions, linked: this.#hub?.linked ?? false, clients: this.#clients.size });
    }
    return this.#app.fetch(req);
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const data = typeof message === "string" ? message : new Uint8Array(message);
    const handle = this.#linkHandles.get(ws) ?? this.#clients.get(ws);
    if (handle) handle.message(data);
    else safeClose(ws, 1011, "lost stream state");
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    this.#onGone(ws, code, reason);
    // Complete the closing handshake the peer started (no auto-reply at this compatibility date).
    safeClose(ws, code, reason);
  }

  override webSocketError(ws: WebSocket): void {
    this.#onGone(ws, 1006, "socket error");
  }

  #onGone(ws: WebSocket, code: number, reason: string): void {
    const link = this.#linkHandles.get(ws);
    if (link) {
      this.#linkHandles.delete(ws);
      if (this.#linkWs === ws) this.#linkWs = undefined;
      link.closed();
      return;
    }
    const client = this.#clients.get(ws);
    if (client) {
      this.#clients.delete(ws);
      client.closed(code, reason);
    }
  }

  /** The link's liveness check: silent longer than the timeout (pings answered by the runtime count) → dropped. */
  override async alarm(): Promise<void> {
    const hub = this.#hub;
    const ws = this.#linkWs;
    if (!hub || !ws) return;
    const auto = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    if (hub.checkLink(auto)) await this.ctx.storage.setAlarm(Date.now() + this.#limits.heartbeat.timeoutMs);
  }
}

function safeClose(ws: WebSocket, code: number, reason: string): void {
  try {
    const c = sendableClose(code, reason);
    ws.close(c.code, c.reason);
  } catch {
    // already closed
  }
}
