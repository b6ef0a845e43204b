/**
 * The relay on Node: TLS (the pinned certificate), Hono through
 * @hono/node-server, `ws` for sockets, and an in-memory registry of hosts.
 * Clients and links are pinged so dead peers are dropped in seconds and idle
 * sockets survive proxies; reading from a client pauses while its stream has
 * no credit.
 */
import { createServer as createHttpsServer } from "node:https";
import type { Server } from "node:http";
import type { JWK } from "jose";
import { createAdaptorServer } from "@hono/node-server";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import { acceptUpgrade, handleUpgrades, incomingOf } from "./upgrade.ts";
import { Contention, DEFAULT_TURN_LIMITS, Inbox, PauseGate, TurnBudget } from "./fair-inbox.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { createRelayApp, type RelayAdapter } from "../core/app.ts";
import { HostHub, type ClientSocket } from "../core/hub.ts";
import { hubHttpResponse, whenAdmitted } from "../core/hub-adapter.ts";
import { DEFAULT_RELAY_LIMITS, RelayClose, type RelayLimits } from "../core/limits.ts";
import { SUBPROTOCOL, LinkTokenLedger } from "../core/auth.ts";
import { relayAudience } from "../../shared/tokens.ts";
import type { LinkLimits } from "../../shared/link/mux.ts";
import { MAX_FRAME_BYTES, useFrameAllocator } from "../../shared/link/codec.ts";
import { RelayMetrics, metricFamilies } from "../core/metrics.ts";
import { renderOpenMetrics } from "../core/openmetrics.ts";
import { startProcessMetrics } from "./process-metrics.ts";
import { normalizeAddr } from "../../shared/url-safety.ts";
import { FrameWriter } from "./frame-writer.ts";
import { receiveInChunks } from "./chunked-receive.ts";
import { tuneHeapForByteTraffic } from "./heap-tuning.ts";

// Link frames are written in full before they are sent: no need to zero them first.
useFrameAllocator((n) => Buffer.allocUnsafe(n));

export interface NodeRelayOptions {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  allowHosts: readonly string[];
  /**
   * Public URLs clients and hosts use (token audiences), from configuration.
   * The relay's own listening URL (https://HOST:PORT) is added when HOST is a
   * concrete address; a wildcard listener accepts no token until one is set.
   */
  audiences?: readonly string[];
  limits?: Partial<RelayLimits>;
  linkLimits?: Partial<LinkLimits>;
  /**
   * `/metrics`: served only with this bearer token (absent: no `/metrics`).
   * `perHost` adds families labelled with host ids (operator opt-in).
   */
  metrics?: { token?: string; perHost?: boolean };
  log: RelayAdapter["log"];
}

export interface NodeRelay {
  port: number;
  /** The token audiences this relay accepts. */
  audiences: readonly string[];
  hubs: ReadonlyMap<string, HostHub>;
  metrics: RelayMetrics;
  close(): Promise<void>;
}

/** When a socket was last heard from: a field on the socket, not a Map entry rewritten on every frame. */
const HEARD_AT = Symbol("heardAt");
type Tracked = WebSocket & { [HEARD_AT]: number };

function heard(this: WebSocket): void {
  (this as Tracked)[HEARD_AT] = Date.now();
}

function ignoreError(): void {}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A client's WebSocket as the hub sees it: one object with shared methods, no closures per client. */
class ClientWs implements ClientSocket {
  readonly ws: WebSocket;
  readonly gate: PauseGate;
  readonly #writer: FrameWriter;
  constructor(ws: WebSocket) {
    this.ws = ws;
    this.gate = new PauseGate(ws);
    this.#writer = new FrameWriter(ws, false);
  }
  send(data: string | Uint8Array, done: () => void): void {
    this.#writer.writeFrame(data, typeof data !== "string", true, done);
  }
  /** A host's message goes on chunk by chunk, as WebSocket fragments: never held whole here. */
  sendChunk(chunk: Uint8Array, isBinary: boolean, fin: boolean, done: () => void): void {
    this.#writer.writeFrame(chunk, isBinary, fin, done);
  }
  close(code: number, reason: string): void {
    const ws = this.ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  }
  pause(): void {
    this.gate.pauseCredit();
  }
  resume(): void {
    this.gate.resumeCredit();
  }
}

/** A piece of a client's message (a whole one where ws could not hand it over in pieces). */
interface ClientPiece {
  data: Uint8Array;
  isBinary: boolean;
  fin: boolean;
}

function pieceBytes(m: ClientPiece): number {
  return m.data.byteLength;
}

export async function startNodeRelay(opts: NodeRelayOptions): Promise<NodeRelay> {
  tuneHeapForByteTraffic();
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...opts.limits };
  const allow = new Set(opts.allowHosts);
  const hubs = new Map<string, HostHub>();
  /** Every open socket; each carries when it was last heard from (any frame counts, not only pongs). */
  const sockets = new Set<Tracked>();
  const metrics = new RelayMetrics();
  const processMetrics = opts.metrics?.token ? startProcessMetrics() : undefined;

  /** Each host's share of a turn, spent by its link and its clients alike. */
  const budgets = new Map<string, TurnBudget>();
  // A host alone on the relay gets a larger share per turn (fair-inbox.ts).
  const contention = new Contention();
  const budgetOf = (hostId: string) => {
    let b = budgets.get(hostId);
    if (!b) budgets.set(hostId, (b = new TurnBudget(DEFAULT_TURN_LIMITS, contention)));
    return b;
  };

  // One listener of each kind for every socket (ws calls them with the socket as `this`), not a
  // closure per socket and event (with the client socket below, ~0.6 KiB of an idle client's ~8 KiB of heap).
  function forget(this: WebSocket): void {
    sockets.delete(this as Tracked);
  }
  /** Heartbeat bookkeeping; `hearMessages` unless the caller marks the socket heard on each message itself. */
  const track = (ws: WebSocket, hearMessages: boolean) => {
    const t = ws as Tracked;
    t[HEARD_AT] = Date.now();
    sockets.add(t);
    ws.on("pong", heard);
    ws.on("ping", heard);
    if (hearMessages) ws.on("message", heard);
    ws.on("close", forget);
    ws.on("error", ignoreError);
  };

  // The open handlers are built here, away from the request's context, so an
  // open socket keeps nothing of its upgrade request alive (see node-upgrade.ts).
  const linkOpened = (hostId: string, publicJwk: JWK) => (ws: WebSocket) => {
    track(ws, true);
    let hub = hubs.get(hostId);
    if (!hub) {
      hub = new HostHub(hostId, publicJwk, limits, opts.log, {
        metrics,
        ...(opts.linkLimits ? { linkLimits: opts.linkLimits } : {}),
      });
      hubs.set(hostId, hub);
    }
    const writer = new FrameWriter(ws, false);
    const handle = hub.attachLink(
      {
        send: (f) => ws.send(f),
        sendParts: (head, payload) => writer.writeParts(head, payload),
        close: (code, reason) => ws.close(code, reason),
      },
      publicJwk,
    );
    // Frames go through an inbox: this host gets a bounded share of each turn (fairness across hosts).
    // Text is the keepalive ping, which the hub answers, or a protocol error it closes on.
    const inbox = new Inbox(budgetOf(hostId), ws, (b: Uint8Array) => b.length, handle.message);
    ws.on("message", (data, isBinary) => {
      if (!isBinary) return handle.message(data.toString());
      inbox.push(toBytes(data));
    });
    ws.on("close", () => {
      inbox.close();
      handle.closed();
    });
  };

  const clientOpened = (hub: HostHub, meta: OpenMeta | undefined, protocol: string | undefined) => (ws: WebSocket) => {
    // meta carries the client's token: used once for OPEN, then not kept by this socket's closures.
    const open = meta!;
    meta = undefined;
    track(ws, false); // piece() below marks the client heard, however its messages are read
    if (protocol !== undefined && ws.protocol !== protocol)
      opts.log.warn("subprotocol mismatch", { want: protocol, got: ws.protocol });
    const sock = new ClientWs(ws);
    const gate = sock.gate;
    const handle = hub.attachClient(sock, open);
    if (!handle) return;
    // The client's messages share its host's turn budget with the host's link (fairness across hosts).
    // They go on piece by piece as they arrive (chunked-receive.ts), never held whole here; text stays
    // bytes, checked by the host's side.
    const budget = budgetOf(hub.hostId);
    // Made only once this client's messages first have to wait (most never do: idle clients hold none).
    let inbox: Inbox<ClientPiece> | undefined;
    const piece = (data: Uint8Array, isBinary: boolean, fin: boolean) => {
      // Heard from (read in pieces, a client socket emits no 'message').
      (ws as Tracked)[HEARD_AT] = Date.now();
      if (!inbox && budget.available) {
        budget.spend(data.byteLength);
        handle.chunk(data, isBinary, fin);
        return;
      }
      inbox ??= new Inbox(budget, gate.inboxSide(), pieceBytes, (m: ClientPiece) =>
        handle.chunk(m.data, m.isBinary, m.fin),
      );
      inbox.push({ data, isBinary, fin });
    };
    if (!receiveInChunks(ws, piece)) ws.on("message", (data, isBinary) => piece(toBytes(data), isBinary, true));
    ws.on("close", (code, reason) => {
      inbox?.close();
      handle.closed(code, reason.toString());
    });
  };

  const audiences: string[] = [...(opts.audiences ?? [])];
  const ledger = new LinkTokenLedger();
  const adapter: RelayAdapter = {
    limits,
    audiences,
    claimLinkToken: (hostId, jti, exp) => ledger.claim(hostId, jti, exp),
    log: opts.log,
    isAllowed: (id) => allow.has(id),
    singleHost: () => allow.size <= 1,
    hostRecord: (id) => hubs.get(id),
    clientAddr: (c) => normalizeAddr(incomingOf(c).socket.remoteAddress),
    stats: () => {
      let streams = 0;
      let bytesIn = 0;
      let bytesOut = 0;
      let linked = 0;
      for (const h of hubs.values()) {
        const s = h.stats();
        streams += s.streams;
        bytesIn += s.bytesIn;
        bytesOut += s.bytesOut;
        if (s.linked) linked++;
      }
      return {
        hosts: { allowed: allow.size, linked },
        streams,
        bytes: { fromHosts: bytesIn, toHosts: bytesOut },
        sockets: sockets.size,
      };
    },
    metrics,
    ...(processMetrics && opts.metrics?.token
      ? {
          metricsEndpoint: {
            token: opts.metrics.token,
            render: () => {
              const snapshot = metrics.snapshot({
                hostsAllowed: allow.size,
                hosts: [...hubs.values()].map((h) => h.sample()),
              });
              return renderOpenMetrics([
                ...metricFamilies(snapshot, { perHost: Boolean(opts.metrics?.perHost) }),
                ...processMetrics.families(),
              ]);
            },
          },
        }
      : {}),
    upgradeLink: (c, link) => acceptUpgrade(c, linkOpened(link.hostId, link.publicJwk), linkWss),
    // Offline or over a per-token/per-address cap: refused before the upgrade, with the reason.
    upgradeClient: (c, hostId, meta, protocol) =>
      whenAdmitted(hubs.get(hostId), meta, metrics, (hub) => acceptUpgrade(c, clientOpened(hub, meta, protocol))),
    forwardHttp: async (c, hostId, meta, body) =>
      whenAdmitted(hubs.get(hostId), meta, metrics, (hub) => hubHttpResponse(hub, c.req.method, meta, body)),
  };

  const app = createRelayApp(adapter);
  const wsOptions = {
    noServer: true,
    perMessageDeflate: false,
    // The relay tracks its sockets itself (keepalive): no second set, and no close listener per client, in ws.
    clientTracking: false,
    handleProtocols: (protocols: Set<string>) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  };
  // Clients: a message may be as large as the limit (it is read in pieces, never held whole: chunked-receive.ts).
  const wss = new WebSocketServer({ ...wsOptions, maxPayload: limits.maxMessageBytes });
  // Links: one message is one link frame, held whole until decoded, so no larger than the largest frame.
  const linkWss = new WebSocketServer({ ...wsOptions, maxPayload: MAX_FRAME_BYTES + 1024 });
  const server = createAdaptorServer({
    fetch: app.fetch,
    createServer: createHttpsServer,
    // Header and request timeouts are checked every 2 s (Node's default, 30 s, lets a slow upgrade linger).
    serverOptions: {
      cert: opts.certPem,
      key: opts.keyPem,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      connectionsCheckingInterval: 2_000,
    },
  }) as Server;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  handleUpgrades(server, (req, env) => app.fetch(req, env), wss);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  // The listening URL is configuration too: clients may use it directly (a wildcard listener has none).
  if (opts.host !== "0.0.0.0" && opts.host !== "::" && opts.host !== "") {
    const own = relayAudience(`wss://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`);
    if (!audiences.includes(own)) audiences.push(own);
  }

  // Keepalive: ping every socket each interval; one silent for longer than
  // the timeout (three intervals by default) is dead. A busy peer that is
  // slow to pong under load is not dropped while its frames keep arriving.
  const keepalive = setInterval(() => {
    const now = Date.now();
    for (const ws of sockets) {
      // A client we stopped reading (its stream has no credit) is silent because of us.
      if (ws.isPaused) ws[HEARD_AT] = now;
      else if (now - ws[HEARD_AT] > limits.heartbeat.timeoutMs) {
        ws.terminate();
        continue;
      }
      ws.ping();
    }
  }, limits.heartbeat.intervalMs);
  keepalive.unref();

  return {
    port,
    audiences,
    hubs,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(keepalive);
        processMetrics?.stop();
        for (const hub of hubs.values()) hub.shutdown(RelayClose.GOING_AWAY, "relay shutting down");
        for (const ws of sockets) ws.close(RelayClose.GOING_AWAY, "relay shutting down");
        server.close(() => resolve());
        setTimeout(() => {
          for (const ws of sockets) ws.terminate();
          server.closeAllConnections();
        }, 500).unref();
      }),
  };
}
