/**
 * The gateway: one Hono app serving HTTP and the protocol WebSocket on one
 * port, on the addresses of the bind mode. Owns the connection set, the tick
 * timer, the method registry and graceful shutdown.
 */
import { randomUUID } from "node:crypto";
import type { Server, IncomingMessage } from "node:http";
import { Hono } from "hono";
import { createAdaptorServer, upgradeWebSocket } from "@hono/node-server";
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
import { peerInfo } from "./peer.ts";
import { CloseCodes } from "./protocol.ts";
import { checkOrigin } from "./origin.ts";
import { mountControlUi } from "./ui.ts";
import { tailscaleIdentity, trustedProxyIdentity, type ProxyIdentity } from "./identity-proxy.ts";

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
  close(reason?: string): Promise<void>;
}

export interface GatewayOptions {
  settings: GatewaySettings;
  log: Logger;
  /** Override the tailnet address lookup (tests). */
  tailnetAddress?: () => Promise<string | undefined>;
}

export async function startGateway(opts: GatewayOptions): Promise<GatewayHandle> {
  const { settings, log } = opts;
  gatewayLogRing.enable();
  const startedAt = Date.now();
  const bootId = randomUUID();
  const registry = new MethodRegistry();
  const auth = new GatewayAuth(settings.auth);
  const connections = new Set<GatewayConnection>();
  const statusSections = new Map<string, () => unknown>();
  const snapshotSections = new Map<string, () => unknown>();
  const readyHooks: ((c: GatewayConnection) => void)[] = [];
  const shutdownHooks: (() => Promise<void> | void)[] = [];
  let listenInfo: ListenResult | undefined;

  const app = new Hono();
  const proxyIdentities = new WeakMap<IncomingMessage, ProxyIdentity>();

  const systemDeps = {
    version: VERSION,
    instanceId: bootId,
    startedAt,
    log: gatewayLogRing,
    clients: () =>
      [...connections]
        .filter((c) => c.ready && c.client)
        .map((c) => ({ connId: c.id, clientId: c.client!.id, mode: c.client!.mode, version: c.client!.version, scopes: c.scopes, connectedAt: c.connectedAt, relayed: c.peer.forwarded })),
  };
  let presenceVersion = 0;
  const snapshot = () => ({
    presence: presenceEntries(systemDeps),
    health: { ok: true, ts: Date.now() },
    stateVersion: { presence: presenceVersion, health: 0 },
    uptimeMs: Date.now() - startedAt,
    // OpenClaw's Control UI keeps the token for the tab (so a reload reconnects) only when this says "token".
    ...(["none", "token", "password", "trusted-proxy"].includes(settings.auth.mode) ? { authMode: settings.auth.mode } : {}),
    ...Object.fromEntries([...snapshotSections].map(([k, fn]) => [k, fn()])),
  });
  const broadcastPresence = () => {
    presenceVersion++;
    const payload = { presence: presenceEntries(systemDeps) };
    for (const c of connections) c.sendEvent("presence", payload, { droppable: true });
  };

  registerCoreMethods(registry, {
    version: VERSION,
    startedAt,
    connections: () => ({ total: connections.size, ready: [...connections].filter((c) => c.ready).length }),
    status: () => ({
      bind: settings.bind,
      port: listenInfo?.port ?? settings.port,
      addresses: listenInfo?.addresses.map((a) => a.address) ?? [],
      auth: { mode: settings.auth.mode, allowTailscale: settings.auth.allowTailscale, trustedProxy: settings.auth.trustedProxy ? { userHeader: settings.auth.trustedProxy.userHeader, proxies: settings.auth.trustedProxy.proxies } : null },
      relay: { enabled: settings.relay.enabled },
      sessions: { count: 0 },
      ...Object.fromEntries([...statusSections].map(([k, fn]) => [k, fn()])),
    }),
  });
  registerSystemMethods(registry, systemDeps);
  registerEmptyMethods(registry);

  // The protocol WebSocket lives at "/" like OpenClaw's; origin is checked before the upgrade.
  app.use("*", async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return next();
    const incoming = (c.env as { incoming: IncomingMessage }).incoming;
    const relayHost = peerInfo(incoming.socket.remoteAddress, incoming.headers, settings.trustedProxies).relayHost;
    const refusal = checkOrigin(c.req.header("origin"), c.req.header("host"), settings.allowedOrigins, relayHost);
    if (refusal) {
      log.warn("websocket origin refused", { origin: c.req.header("origin")?.slice(0, 200) });
      return c.text(refusal, 403);
    }
    if (connections.size >= settings.limits.maxConnections) return c.text("too many connections", 503);
    // Proxy identities are for the WebSocket (and so the Control UI) only; HTTP API endpoints never take them.
    let identity: ProxyIdentity | undefined;
    if (settings.auth.allowTailscale) identity = await tailscaleIdentity(incoming.socket.remoteAddress, incoming.headers);
    if (!identity && settings.auth.trustedProxy) identity = trustedProxyIdentity(incoming.socket.remoteAddress, incoming.headers, settings.auth.trustedProxy);
    if (identity) proxyIdentities.set(incoming, identity);
    return next();
  });

  app.get(
    "/",
    upgradeWebSocket((c) => {
      const incoming = (c.env as { incoming: IncomingMessage }).incoming;
      return {
        onOpen: (_evt, wsCtx) => {
          const ws = wsCtx.raw as WebSocket;
          const peer = peerInfo(incoming.socket.remoteAddress, incoming.headers, settings.trustedProxies);
          const identity = proxyIdentities.get(incoming);
          if (identity) peer.proxyIdentity = identity;
          const conn = new GatewayConnection(ws, peer, {
            registry,
            auth,
            log,
            limits: settings.limits,
            helloSnapshot: snapshot,
            serverInfo: { version: VERSION, bootId },
            onReady: (cc) => {
              for (const fn of readyHooks) fn(cc);
              broadcastPresence();
            },
            onClose: (cc) => {
              connections.delete(cc);
              if (cc.client) broadcastPresence();
            },
          });
          connections.add(conn);
        },
      };
    }),
  );

  app.get("/healthz", (c) => c.json({ ok: true, version: VERSION, uptimeMs: Date.now() - startedAt }));

  // The HTTP API: a bearer token (the gateway's, or a host-minted client token) on every request.
  app.get("/api/status", async (c) => {
    const incoming = (c.env as { incoming: IncomingMessage }).incoming;
    const peer = peerInfo(incoming.socket.remoteAddress, incoming.headers, settings.trustedProxies);
    const bearer = /^bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim();
    const result = await auth.verify(bearer !== undefined ? { token: bearer } : { password: "" }, { ...peer, edgeToken: undefined, proxyIdentity: undefined } as typeof peer);
    if (!result.ok) return c.json({ ok: false, error: { code: result.detail, message: result.message } }, result.rateLimited ? 429 : 401, { "www-authenticate": "Bearer", "cache-control": "no-store" });
    const def = registry.get("status")!;
    return c.json(await def.handler({}, { connId: "http", scopes: result.allowedScopes, role: result.role, clientAddr: peer.clientAddr, relayed: peer.forwarded, emit: () => {}, interim: () => {}, signal: AbortSignal.timeout(10_000) }), 200, { "cache-control": "no-store" });
  });
  mountControlUi(app);

  const servers: Server[] = [];
  const wssList: WebSocketServer[] = [];
  const makeServer = (): Server => {
    // The parser starts at the pre-auth cap; each connection raises it after hello-ok.
    const wss = new WebSocketServer({ noServer: true, maxPayload: settings.limits.maxPayload, perMessageDeflate: false });
    wssList.push(wss);
    const server = createAdaptorServer({ fetch: app.fetch, websocket: { server: wss } }) as Server;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    return server;
  };

  const { servers: listening, result } = await listenForBind({
    bind: settings.bind,
    port: settings.port,
    ...(settings.customHost !== undefined ? { customHost: settings.customHost } : {}),
    makeServer,
    canExpose: Boolean((settings.auth.mode === "token" && settings.auth.token && !settings.auth.generatedTokenPath) || (settings.auth.mode === "password" && settings.auth.password)),
    ...(opts.tailnetAddress ? { tailnetAddress: opts.tailnetAddress } : {}),
  });
  servers.push(...listening);
  listenInfo = result;
  for (const n of result.notes) log.warn(n);
  if (!isLoopbackBind(settings.bind, settings.customHost) && settings.bind !== "auto") {
    log.warn("gateway is reachable beyond loopback", { bind: settings.bind, auth: settings.auth.mode });
  }

  const tick = setInterval(() => {
    const payload = { ts: Date.now() };
    for (const c of connections) c.sendEvent("tick", payload, { droppable: true });
  }, settings.limits.tickIntervalMs);
  tick.unref();
  // OpenClaw clients show gateway health live: each new client gets it at once, everyone every minute.
  const healthNow = () => registry.get("health")!.handler({}, { connId: "health", scopes: [], role: "operator", clientAddr: "", relayed: false, emit: () => {}, interim: () => {}, signal: AbortSignal.abort() });
  readyHooks.push((c) => void Promise.resolve(healthNow()).then((h) => c.sendEvent("health", h, { droppable: true })));
  const healthTimer = setInterval(() => {
    void Promise.resolve(healthNow()).then((h) => {
      for (const c of connections) c.sendEvent("health", h, { droppable: true });
    });
  }, HEALTH_INTERVAL_MS);
  healthTimer.unref();

  let closing: Promise<void> | undefined;
  const handle: GatewayHandle = {
    port: result.port,
    listen: result,
    registry,
    auth,
    connections,
    app,
    statusSections,
    snapshotSections,
    onClientReady: (fn) => readyHooks.push(fn),
    onShutdown: (fn) => shutdownHooks.push(fn),
    broadcast(event, payload, o) {
      for (const c of connections) c.sendEvent(event, payload, o);
    },
    close(reason = "gateway shutting down") {
      closing ??= (async () => {
        clearInterval(tick);
        clearInterval(healthTimer);
        for (const s of servers) s.close();
        for (const c of connections) {
          c.sendEvent("shutdown", { reason });
          c.close(CloseCodes.SERVICE_RESTART, reason);
        }
        for (const fn of shutdownHooks) {
          try {
            await fn();
          } catch (e) {
            log.error("shutdown hook failed", { err: e instanceof Error ? e.message : String(e) });
          }
        }
        // Give close frames a moment to flush, then drop stragglers.
        const deadline = Date.now() + 1500;
        while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        for (const w of wssList) for (const client of w.clients) client.terminate();
        for (const s of servers) s.closeAllConnections?.();
      })();
      return closing;
    },
  };
  return handle;
}
