/**
 * The gateway: one Hono app serving HTTP and the protocol WebSocket on one
 * port, on the addresses of the bind mode. Owns the connection set, the tick
 * timer, the method registry and graceful shutdown.
 */
import { randomUUID } from "node:crypto";
import type { Server, IncomingMessage } from "node:http";
import { Hono, type Context } from "hono";
import { createAdaptorServer, upgradeWebSocket, type WebSocketServerLike } from "@hono/node-server";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../log/logger.ts";
import { VERSION } from "../version.ts";
import type { GatewaySettings } from "./settings.ts";
import { isLoopbackBind } from "./settings.ts";
import { GatewayAuth } from "./auth.ts";
import { GatewayConnection } from "./connection.ts";
import { MethodRegistry } from "./methods.ts";
import { registerCoreMethods } from "./methods/core.ts";
import { registerSystemMethods, presenceEntries } from "./methods/system.ts";
import { registerEmptyMethods } from "./methods/empty.ts";
import { gatewayLogRing } from "../log/ring.ts";
import { listenForBind, type ListenResult } from "./bind.ts";
import { peerInfo, linkedPeerInfo, type PeerInfo } from "./peer.ts";
import { wsClientSocket, type ClientSocket } from "./client-socket.ts";
import { CloseCodes } from "./protocol.ts";
import { OriginPolicy, type Refusal } from "./origin.ts";
import { mountControlUi } from "./ui.ts";
import { tailscaleIdentity, trustedProxyIdentity } from "./identity-proxy.ts";
import type { ProxyIdentity } from "./peer.ts";
import { bearerToken } from "../../shared/http-headers.ts";

/** How often every client gets a `health` event. */
export const HEALTH_INTERVAL_MS = 60_000;

export interface GatewayHandle {
  port: number;
  listen: ListenResult;
  registry: MethodRegistry;
  auth: GatewayAuth;
  connections: ReadonlySet<GatewayConnection>;
  app: Hono;
  /** Extra sections for `status` (relay link state, sessions, …). */
  statusSections: Map<string, () => unknown>;
  /** Extra hello-ok snapshot fields (sessionDefaults, …). */
  snapshotSections: Map<string, () => unknown>;
  /** Called for each connection right after its hello-ok (per-client events such as models.snapshot). */
  onClientReady: (fn: (c: GatewayConnection) => void) => void;
  /** Called on shutdown to flush state, in order. */
  onShutdown: (fn: () => Promise<void> | void) => void;
  broadcast(event: string, payload: unknown, opts?: { droppable?: boolean }): void;
  /**
   * A relayed client from the gateway's own in-process link, on its link
   * stream: forwarded and never local by construction (see linkedPeerInfo),
   * its path and Origin checked as for a relayed upgrade. `request` is what
   * the link built for the stream (upstreamRequest): its path and headers.
   * Returns the close code and reason to refuse the stream with, or
   * undefined once it is attached.
   */
  acceptLinked(
    socket: ClientSocket,
    request: { path: string; headers: Readonly<Record<string, string>> },
  ): { code: number; reason: string } | undefined;
  /**
   * A relayed HTTP request from the gateway's own in-process link, answered
   * by the gateway's app without a loopback socket: forwarded and never local
   * by construction (linkedPeerInfo of `headers`, the ones the link built for
   * the stream), its Host checked as for any request.
   */
  fetchLinked(request: Request, headers: Readonly<Record<string, string>>): Promise<Response>;
  /** Closes (4401) every connection that authenticated with one of these client token ids; returns how many. */
  closeRevokedTokens(ids: Iterable<string>): number;
  close(reason?: string): Promise<void>;
}

/** The close code of a revoked client token's connections (the relay closes its streams with the same). */
export const TOKEN_REVOKED_CLOSE = 4401;

export interface GatewayOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Override the tailnet address lookup (tests). */
  tailnetAddress?: () => Promise<string | undefined>;
}

/** What the start-up steps share: settings, the connection set, the hooks, and what is known once listening. */
interface GatewayState {
  settings: GatewaySettings;
  log: Logger;
  startedAt: number;
  bootId: string;
  registry: MethodRegistry;
  auth: GatewayAuth;
  connections: Set<GatewayConnection>;
  /** Ready connections by the client token they authenticated with, so a revocation reaches them. */
  byTokenId: Map<string, Set<GatewayConnection>>;
  statusSections: Map<string, () => unknown>;
  snapshotSections: Map<string, () => unknown>;
  readyHooks: ((c: GatewayConnection) => void)[];
  shutdownHooks: (() => Promise<void> | void)[];
  listenInfo: ListenResult | undefined;
  /** Host on every request, then Origin before a WebSocket upgrade; it needs the bound port and addresses, so it exists once listening. */
  originPolicy: OriginPolicy | undefined;
}

/** Whether a new WebSocket client may come in, and how it is refused (HTTP status before an upgrade, close code after). */
type Admit = (
  peer: PeerInfo,
  host: string | undefined,
) => { status: 403 | 503; closeCode: number; message: string } | undefined;
type Attach = (socket: ClientSocket, peer: PeerInfo) => GatewayConnection;

export async function startGateway(opts: GatewayOptions): Promise<GatewayHandle> {
  const { settings, log } = opts;
  gatewayLogRing.enable();
  const g: GatewayState = {
    settings,
    log,
    startedAt: Date.now(),
    bootId: randomUUID(),
    registry: new MethodRegistry(),
    auth: new GatewayAuth(settings.auth),
    connections: new Set(),
    byTokenId: new Map(),
    statusSections: new Map(),
    snapshotSections: new Map(),
    readyHooks: [],
    shutdownHooks: [],
    listenInfo: undefined,
    originPolicy: undefined,
  };
  const { snapshot, broadcastPresence } = registerMethods(g);
  const logRefusal = refusalLogger(log);
  const admit = admitter(g, logRefusal);
  const attach = attacher(g, snapshot, broadcastPresence);
  const app = createHttpApp(g, logRefusal, admit, attach);
  const { servers, wssList, result } = await listen(g, app, opts.tailnetAddress);
  const stopTimers = startTimers(g);

  const { registry, auth, connections, byTokenId } = g;
  let closing: Promise<void> | undefined;
  const handle: GatewayHandle = {
    port: result.port,
    listen: result,
    registry,
    auth,
    connections,
    app,
    statusSections: g.statusSections,
    snapshotSections: g.snapshotSections,
    onClientReady: (fn) => g.readyHooks.push(fn),
    onShutdown: (fn) => g.shutdownHooks.push(fn),
    broadcast(event, payload, o) {
      for (const c of connections) c.sendEvent(event, payload, o);
    },
    acceptLinked(socket, request) {
      if (closing || !g.originPolicy)
        return { code: CloseCodes.SERVICE_RESTART, reason: "gateway is not accepting connections" };
      // The protocol WebSocket lives at "/" only, as for an upgrade.
      if (request.path !== "/")
        return { code: CloseCodes.POLICY_VIOLATION, reason: "no WebSocket endpoint at this path: the gateway's is /" };
      const peer = linkedPeerInfo(request.headers);
      // No Host to check: nothing was addressed by name (the standalone link's loopback Host always passes).
      const refused = admit(peer, undefined);
      if (refused) return { code: refused.closeCode, reason: refused.message };
      attach(socket, peer);
      return undefined;
    },
    async fetchLinked(request, headers) {
      if (closing || !g.originPolicy) return new Response("gateway is not accepting requests\n", { status: 503 });
      const env: LinkedEnv = { linkedPeer: linkedPeerInfo(headers) };
      return app.fetch(request, env);
    },
    closeRevokedTokens(ids) {
      let n = 0;
      for (const id of ids) {
        for (const c of byTokenId.get(id) ?? []) {
          c.close(TOKEN_REVOKED_CLOSE, "token revoked");
          n++;
        }
        byTokenId.delete(id);
      }
      if (n > 0) log.info("closed connections of revoked tokens", { connections: n });
      return n;
    },
    close(reason = "gateway shutting down") {
      closing ??= shutdown(g, { servers, wssList, stopTimers }, reason);
      return closing;
    },
  };
  return handle;
}

/** The methods every gateway has, and the hello-ok snapshot and presence updates built from the connection set. */
function registerMethods(g: GatewayState): { snapshot: () => Record<string, unknown>; broadcastPresence: () => void } {
  const { settings, connections, startedAt } = g;
  const systemDeps = {
    version: VERSION,
    instanceId: g.bootId,
    startedAt,
    log: gatewayLogRing,
    clients: () =>
      [...connections]
        .filter((c) => c.ready && c.client)
        .map((c) => ({
          connId: c.id,
          clientId: c.client!.id,
          mode: c.client!.mode,
          version: c.client!.version,
          scopes: c.scopes,
          connectedAt: c.connectedAt,
          relayed: c.peer.forwarded,
        })),
  };
  let presenceVersion = 0;
  const snapshot = () => ({
    presence: presenceEntries(systemDeps),
    health: { ok: true, ts: Date.now() },
    stateVersion: { presence: presenceVersion, health: 0 },
    uptimeMs: Date.now() - startedAt,
    // OpenClaw's Control UI keeps the token for the tab (so a reload reconnects) only when this says "token".
    ...(["none", "token", "password", "trusted-proxy"].includes(settings.auth.mode)
      ? { authMode: settings.auth.mode }
      : {}),
    ...Object.fromEntries([...g.snapshotSections].map(([k, fn]) => [k, fn()])),
  });
  const broadcastPresence = () => {
    presenceVersion++;
    const payload = { presence: presenceEntries(systemDeps) };
    for (const c of connections) c.sendEvent("presence", payload, { droppable: true });
  };

  registerCoreMethods(g.registry, {
    version: VERSION,
    startedAt,
    connections: () => ({ total: connections.size, ready: [...connections].filter((c) => c.ready).length }),
    status: () => ({
      bind: settings.bind,
      port: g.listenInfo?.port ?? settings.port,
      addresses: g.listenInfo?.addresses.map((a) => a.address) ?? [],
      auth: {
        mode: settings.auth.mode,
        allowTailscale: settings.auth.allowTailscale,
        trustedProxy: settings.auth.trustedProxy
          ? { userHeader: settings.auth.trustedProxy.userHeader, proxies: settings.auth.trustedProxy.proxies }
          : null,
      },
      relay: { enabled: settings.relay.enabled },
      sessions: { count: 0 },
      ...Object.fromEntries([...g.statusSections].map(([k, fn]) => [k, fn()])),
    }),
  });
  registerSystemMethods(g.registry, systemDeps);
  registerEmptyMethods(g.registry);
  return { snapshot, broadcastPresence };
}

/** Logs a refused Host or Origin: one line per refused value a minute, so a flood of bad requests cannot flood the log. */
function refusalLogger(log: Logger): (r: Refusal) => void {
  const refusalLog = new Map<string, number>();
  return (r) => {
    const k = `${r.code} ${r.value}`;
    const now = Date.now();
    if ((refusalLog.get(k) ?? 0) > now - 60_000) return;
    if (refusalLog.size > 1000) refusalLog.clear();
    refusalLog.set(k, now);
    log.warn(
      r.code === "HOST_NOT_ALLOWED" ? "request refused: Host not allowed" : "websocket refused: Origin not allowed",
      { [r.code === "HOST_NOT_ALLOWED" ? "host" : "origin"]: r.value, allowWith: r.configKey },
    );
  };
}

/** Whether a new WebSocket client may come in: its Origin (browsers), then the connection cap. */
function admitter(g: GatewayState, logRefusal: (r: Refusal) => void): Admit {
  return (peer, host) => {
    const refusal = g.originPolicy?.checkOrigin(peer.origin, { host, local: peer.local, relayHost: peer.relayHost });
    if (refusal) {
      logRefusal(refusal);
      return { status: 403, closeCode: CloseCodes.POLICY_VIOLATION, message: refusal.message };
    }
    if (g.connections.size >= g.settings.limits.maxConnections)
      return { status: 503, closeCode: CloseCodes.TRY_AGAIN_LATER, message: "too many connections" };
    return undefined;
  };
}

/** A protocol connection on an admitted socket, in the connection set (and by token id once ready) until it closes. */
function attacher(g: GatewayState, snapshot: () => Record<string, unknown>, broadcastPresence: () => void): Attach {
  const { connections, byTokenId } = g;
  return (socket, peer) => {
    const conn = new GatewayConnection(socket, peer, {
      registry: g.registry,
      auth: g.auth,
      log: g.log,
      limits: g.settings.limits,
      helloSnapshot: snapshot,
      serverInfo: { version: VERSION, bootId: g.bootId },
      onReady: (cc) => {
        if (cc.tokenId !== undefined) {
          const set = byTokenId.get(cc.tokenId) ?? new Set<GatewayConnection>();
          byTokenId.set(cc.tokenId, set.add(cc));
        }
        for (const fn of g.readyHooks) fn(cc);
        broadcastPresence();
      },
      onClose: (cc) => {
        connections.delete(cc);
        const set = cc.tokenId === undefined ? undefined : byTokenId.get(cc.tokenId);
        if (set?.delete(cc) && set.size === 0) byTokenId.delete(cc.tokenId as string);
        if (cc.client) broadcastPresence();
      },
    });
    connections.add(conn);
    return conn;
  };
}

/** The HTTP app: Host check on every request, the protocol WebSocket at "/", the HTTP API and the Control UI. */
function createHttpApp(g: GatewayState, logRefusal: (r: Refusal) => void, admit: Admit, attach: Attach): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    if (!g.originPolicy) return c.text("gateway starting", 503);
    const refusal = g.originPolicy.checkHost(c.req.header("host"));
    if (!refusal) return next();
    logRefusal(refusal);
    return c.text(refusal.message, 421, { "cache-control": "no-store" });
  });
  mountProtocolSocket(app, g.settings, admit, attach);
  mountHttpApi(app, g);
  mountControlUi(app);
  return app;
}

/** What an HTTP request's handler has to tell who sent it: Node's request, or the in-process link's peer. */
type LinkedEnv = { linkedPeer: PeerInfo };
type RequestEnv = { incoming: IncomingMessage } | LinkedEnv;

/** The peer of an HTTP request: from its socket and headers, or relayed by the in-process link (fetchLinked). */
function requestPeer(c: Context, trustedProxies: readonly string[]): PeerInfo {
  const env = c.env as RequestEnv;
  if ("linkedPeer" in env) return env.linkedPeer;
  return peerInfo(env.incoming.socket.remoteAddress, env.incoming.headers, trustedProxies);
}

/** The protocol WebSocket lives at "/" like OpenClaw's; Origin, the cap and proxy identities are checked before the upgrade. */
function mountProtocolSocket(app: Hono, settings: GatewaySettings, admit: Admit, attach: Attach): void {
  const proxyIdentities = new WeakMap<IncomingMessage, ProxyIdentity>();
  app.use("*", async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return next();
    // The in-process link hands WebSockets over with acceptLinked, never as an upgrade request.
    if ("linkedPeer" in (c.env as RequestEnv)) return c.text("not a WebSocket endpoint for a relayed request", 400);
    const incoming = (c.env as { incoming: IncomingMessage }).incoming;
    const peer = peerInfo(incoming.socket.remoteAddress, incoming.headers, settings.trustedProxies);
    const refused = admit(peer, c.req.header("host"));
    if (refused) return c.text(refused.message, refused.status);
    // Proxy identities are for the WebSocket (and so the Control UI) only; HTTP API endpoints never take them.
    let identity: ProxyIdentity | undefined;
    if (settings.auth.allowTailscale)
      identity = await tailscaleIdentity(incoming.socket.remoteAddress, incoming.headers);
    if (!identity && settings.auth.trustedProxy)
      identity = trustedProxyIdentity(incoming.socket.remoteAddress, incoming.headers, settings.auth.trustedProxy);
    if (identity) proxyIdentities.set(incoming, identity);
    return next();
  });

  app.get(
    "/",
    upgradeWebSocket((c) => {
      const incoming = (c.env as { incoming: IncomingMessage }).incoming;
      return {
        onOpen: (_evt, wsCtx) => {
          const peer = peerInfo(incoming.socket.remoteAddress, incoming.headers, settings.trustedProxies);
          const identity = proxyIdentities.get(incoming);
          if (identity) peer.proxyIdentity = identity;
          attach(wsClientSocket(wsCtx.raw as WebSocket), peer);
        },
      };
    }),
  );
}

/** `/healthz`, and the HTTP API: a bearer token (the gateway's, or a host-minted client token) on every request. */
function mountHttpApi(app: Hono, g: GatewayState): void {
  app.get("/healthz", (c) => c.json({ ok: true, version: VERSION, uptimeMs: Date.now() - g.startedAt }));

  app.get("/api/status", async (c) => {
    const peer = requestPeer(c, g.settings.trustedProxies);
    const bearer = bearerToken(c.req.header("authorization"));
    const result = await g.auth.verify(bearer ? { token: bearer } : { password: "" }, {
      ...peer,
      edgeToken: undefined,
      proxyIdentity: undefined,
    });
    if (!result.ok)
      return c.json(
        { ok: false, error: { code: result.detail, message: result.message } },
        result.rateLimited ? 429 : 401,
        { "www-authenticate": "Bearer", "cache-control": "no-store" },
      );
    const def = g.registry.get("status")!;
    return c.json(
      await def.handler(
        {},
        {
          connId: "http",
          scopes: result.allowedScopes,
          role: result.role,
          clientAddr: peer.clientAddr,
          relayed: peer.forwarded,
          emit: () => {},
          interim: () => {},
          signal: AbortSignal.timeout(10_000),
        },
      ),
      200,
      { "cache-control": "no-store" },
    );
  });
}

/** Listens on the bind mode's addresses (one server each), then sets what depends on them: the Origin policy, the status. */
async function listen(
  g: GatewayState,
  app: Hono,
  tailnetAddress: (() => Promise<string | undefined>) | undefined,
): Promise<{ servers: Server[]; wssList: WebSocketServer[]; result: ListenResult }> {
  const { settings, log } = g;
  const wssList: WebSocketServer[] = [];
  const makeServer = (): Server => {
    // The parser starts at the pre-auth cap; each connection raises it after hello-ok.
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: settings.limits.maxPayload,
      perMessageDeflate: false,
    });
    wssList.push(wss);
    const server = createAdaptorServer({
      fetch: app.fetch,
      // @types/ws declares options.noServer as `boolean | undefined`, hono's interface as optional `boolean`:
      // the same at run time, unequal under exactOptionalPropertyTypes.
      websocket: { server: wss as WebSocketServerLike },
    }) as Server;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    return server;
  };

  const { servers, result } = await listenForBind({
    bind: settings.bind,
    port: settings.port,
    ...(settings.customHost !== undefined ? { customHost: settings.customHost } : {}),
    makeServer,
    canExpose: Boolean(
      (settings.auth.mode === "token" && settings.auth.token && !settings.auth.generatedTokenPath) ||
        (settings.auth.mode === "password" && settings.auth.password),
    ),
    ...(tailnetAddress ? { tailnetAddress } : {}),
  });
  g.listenInfo = result;
  g.originPolicy = new OriginPolicy({
    port: result.port,
    boundAddresses: result.addresses.map((a) => a.address),
    allowedHosts: settings.allowedHosts,
    allowedOrigins: settings.allowedOrigins,
    allowTailscale: settings.auth.allowTailscale,
  });
  for (const n of result.notes) log.warn(n);
  if (!isLoopbackBind(settings.bind, settings.customHost) && settings.bind !== "auto") {
    log.warn("gateway is reachable beyond loopback", { bind: settings.bind, auth: settings.auth.mode });
  }
  return { servers: [...servers], wssList, result };
}

/** The `tick` and `health` events: health to each new client at once and to everyone every minute. Returns their stop. */
function startTimers(g: GatewayState): () => void {
  const { connections, registry } = g;
  const tick = setInterval(() => {
    const payload = { ts: Date.now() };
    for (const c of connections) c.sendEvent("tick", payload, { droppable: true });
  }, g.settings.limits.tickIntervalMs);
  tick.unref();
  // OpenClaw clients show gateway health live.
  const healthNow = () =>
    registry.get("health")!.handler(
      {},
      {
        connId: "health",
        scopes: [],
        role: "operator",
        clientAddr: "",
        relayed: false,
        emit: () => {},
        interim: () => {},
        signal: AbortSignal.abort(),
      },
    );
  g.readyHooks.push(
    (c) => void Promise.resolve(healthNow()).then((h) => c.sendEvent("health", h, { droppable: true })),
  );
  const healthTimer = setInterval(() => {
    void Promise.resolve(healthNow()).then((h) => {
      for (const c of connections) c.sendEvent("health", h, { droppable: true });
    });
  }, HEALTH_INTERVAL_MS);
  healthTimer.unref();
  return () => {
    clearInterval(tick);
    clearInterval(healthTimer);
  };
}

/** Graceful shutdown: stop listening, tell and close every client, run the shutdown hooks, then drop stragglers. */
async function shutdown(
  g: GatewayState,
  running: { servers: Server[]; wssList: WebSocketServer[]; stopTimers: () => void },
  reason: string,
): Promise<void> {
  const { connections, log } = g;
  running.stopTimers();
  for (const s of running.servers) s.close();
  for (const c of connections) {
    c.sendEvent("shutdown", { reason });
    c.close(CloseCodes.SERVICE_RESTART, reason);
  }
  for (const fn of g.shutdownHooks) {
    try {
      await fn();
    } catch (e) {
      log.error("shutdown hook failed", { err: e instanceof Error ? e.message : String(e) });
    }
  }
  // Give close frames a moment to flush, then drop stragglers.
  const deadline = Date.now() + 1500;
  while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  for (const w of running.wssList) for (const client of w.clients) client.terminate();
  for (const s of running.servers) s.closeAllConnections?.();
}
