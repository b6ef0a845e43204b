/**
 * The host's link connector: dials the relay (outbound only), verifies its
 * pin before sending anything, authenticates with a short-lived link token,
 * and for each client stream opens one local WebSocket (or HTTP request) to
 * the gateway on loopback; inside loopgate's own gateway (`gateway`), it
 * hands each WebSocket stream and HTTP request straight to the gateway. Heartbeats,
 * reconnects with jittered exponential backoff, logs state changes, and
 * pushes token revocations and pending exchange codes to the relay.
 */
import WebSocket from "ws";
import type { Logger } from "../log/logger.ts";
import { LinkMux, type LinkLimits } from "../../shared/link/mux.ts";
import { MAX_FRAME_BYTES, useFrameAllocator } from "../../shared/link/codec.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { zeroMask } from "../tls/pinned-connect.ts";
import { Heartbeat, LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { signLinkToken, relayAudience } from "../../shared/tokens.ts";
import { toLoopgateError } from "../../shared/errors.ts";
import { openWebSocket } from "../tls/pinned-connect.ts";
import type { HostIdentity } from "../identity.ts";
import { forwardHttpStream, viaGateway, viaLoopback } from "./http-forward.ts";
import { upstreamRequest, type UpstreamRequest } from "./upstream-request.ts";
import { linkStreamSocket } from "./stream-socket.ts";
import type { GatewayHandle } from "../gateway/server.ts";
import type { Voucher } from "./vouch.ts";
import { holdMessages } from "./hold-messages.ts";
import { FrameWriter } from "../../relay/node/frame-writer.ts";
import { tuneHeapForByteTraffic } from "../../relay/node/heap-tuning.ts";
import { receiveInChunks } from "../../relay/node/chunked-receive.ts";

// Link frames are written in full before they are sent: no need to zero them first.
useFrameAllocator((n) => Buffer.allocUnsafe(n));

export type LinkState = "connecting" | "linked" | "backoff" | "stopped";

export interface ConnectorOptions {
  relayUrl: string;
  pins: string[];
  /** ws://127.0.0.1:PORT of the gateway. */
  upstream: string;
  /**
   * The gateway this connector runs in, if any: its WebSocket and HTTP
   * streams go straight to it (no loopback socket).
   */
  gateway?: Pick<GatewayHandle, "acceptLinked" | "fetchLinked">;
  identity: HostIdentity;
  log: Logger;
  revokedIds?: () => string[];
  /** Pending exchange codes (agent/tokens/exchange-codes.ts): sha256 of each code, its token, expiry in ms. */
  exchangeCodes?: () => { hash: string; token: string; exp: number }[];
  heartbeat?: { intervalMs: number; timeoutMs: number };
  backoff?: { baseMs: number; maxMs: number };
  limits?: Partial<LinkLimits>;
  onState?: (state: LinkState, info: Record<string, unknown>) => void;
  /** Standalone link in front of a trusted-proxy gateway: names each verified client in a header (vouch.ts). */
  vouch?: Voucher;
}

export function linkUrl(relayUrl: string): string {
  const u = new URL(relayUrl);
  if (u.protocol === "https:") u.protocol = "wss:";
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/link`;
  u.search = "";
  return u.toString();
}

export class LinkConnector {
  readonly #o: ConnectorOptions;
  #state: LinkState = "stopped";
  #attempt = 0;
  #ws: WebSocket | undefined;
  #mux: LinkMux | undefined;
  #heartbeat: Heartbeat | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #linkedAt: number | undefined;
  #lastError: string | undefined;
  #upstreams = new Set<WebSocket>();
  /** Exchange codes already sent to the relay (hash → expiry, ms): never sent again. */
  readonly #pushedCodes = new Map<string, number>();

  constructor(o: ConnectorOptions) {
    this.#o = o;
  }

  get state(): LinkState {
    return this.#state;
  }

  status(): Record<string, unknown> {
    return {
      state: this.#state,
      relay: this.#o.relayUrl,
      hostId: this.#o.identity.hostId,
      pinned: this.#o.pins.length > 0,
      linkedForMs: this.#linkedAt ? Date.now() - this.#linkedAt : null,
      streams: this.#mux?.size ?? 0,
      lastError: this.#lastError ?? null,
    };
  }

  #setState(s: LinkState, info: Record<string, unknown> = {}): void {
    if (this.#state === s && s !== "backoff") return;
    this.#state = s;
    this.#o.log.info(`relay link ${s}`, { relay: this.#o.relayUrl, ...info });
    this.#o.onState?.(s, info);
  }

  start(): void {
    if (!this.#stopped) return;
    tuneHeapForByteTraffic();
    this.#stopped = false;
    void this.#connect();
  }

  /** Pushes the current revocation list to the relay (call after `token revoke`). */
  pushRevocations(): void {
    this.#mux?.sendControl({ type: "revocations", ids: this.#o.revokedIds?.() ?? [] });
  }

  /**
   * Pushes the pending exchange codes the relay has not been sent yet (call
   * after `token create --exchange`). Each code goes once per process: a Node
   * relay that restarted forgot which codes were spent, so sending them again
   * on the next link could make a spent code work twice; a code lost with the
   * relay's memory only fails (mint another).
   */
  pushExchangeCodes(): void {
    const mux = this.#mux;
    const ws = this.#ws;
    if (!mux || !ws || ws.readyState !== WebSocket.OPEN || !this.#o.exchangeCodes) return;
    let codes: { hash: string; token: string; exp: number }[];
    try {
      codes = this.#o.exchangeCodes();
    } catch (e) {
      this.#o.log.warn("cannot read the pending exchange codes; they do not reach the relay", {
        err: toLoopgateError(e).oneLine(),
      });
      return;
    }
    const now = Date.now();
    for (const [hash, exp] of this.#pushedCodes) if (exp <= now) this.#pushedCodes.delete(hash);
    codes = codes.filter((c) => !this.#pushedCodes.has(c.hash));
    if (codes.length === 0) return;
    for (const c of codes) this.#pushedCodes.set(c.hash, c.exp);
    // A CONTROL message holds 64 KiB: send the list in batches under that (the relay merges them).
    let batch: typeof codes = [];
    let bytes = 0;
    for (const c of codes) {
      const size = c.token.length + c.hash.length + 64;
      if (batch.length > 0 && bytes + size > 48 * 1024) {
        mux.sendControl({ type: "exchange-codes", codes: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(c);
      bytes += size;
    }
    mux.sendControl({ type: "exchange-codes", codes: batch });
    // How many, never which: a code or token in a log would defeat the point.
    this.#o.log.info("exchange codes pushed to the relay", { codes: codes.length });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#heartbeat?.stop();
    this.#mux?.closeAll(1001, "host link shutting down");
    for (const u of this.#upstreams) u.close(1001, "host link shutting down");
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1001, "host shutting down");
        setTimeout(() => (ws.terminate(), resolve()), 1000).unref();
      });
    }
    this.#setState("stopped");
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    this.#setState("connecting");
    try {
      const token = await signLinkToken(
        this.#o.identity.privateKey,
        this.#o.identity.publicJwk,
        this.#o.identity.hostId,
        relayAudience(this.#o.relayUrl),
      );
      const ws = await openWebSocket(linkUrl(this.#o.relayUrl), {
        pins: this.#o.pins,
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: 10_000,
        // One message is one link frame, held whole until decoded: a relay may send nothing larger (1009).
        maxPayload: MAX_FRAME_BYTES + 1024,
        zeroMask: true,
      });
      if (this.#stopped) {
        ws.close(1001, "stopped");
        return;
      }
      this.#attach(ws);
    } catch (e) {
      const err = toLoopgateError(e);
      this.#lastError = err.oneLine();
      this.#scheduleReconnect(err.oneLine());
    }
  }

  #scheduleReconnect(reason: string): void {
    if (this.#stopped) return;
    const { baseMs, maxMs } = this.#o.backoff ?? { baseMs: 200, maxMs: 5000 };
    const ceiling = Math.min(maxMs, baseMs * 2 ** this.#attempt);
    const delay = Math.round(ceiling * (0.5 + Math.random() * 0.5));
    this.#attempt = Math.min(this.#attempt + 1, 16);
    this.#setState("backoff", { retryInMs: delay, reason });
    this.#timer = setTimeout(() => void this.#connect(), delay);
    this.#timer.unref?.();
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    this.#attempt = 0;
    this.#linkedAt = Date.now();
    this.#lastError = undefined;
    const writer = new FrameWriter(ws, true);
    const mux = new LinkMux({
      role: "host",
      send: (f) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(f);
      },
      // The link's socket sends with an all-zero mask (zeroMask in #connect).
      sendParts: (head, payload) => writer.writeParts(head, payload),
      ...(this.#o.limits ? { limits: this.#o.limits } : {}),
      onOpen: (stream) => this.#onStream(stream),
      onRefusedOpen: (id, err) =>
        this.#o.log.warn("relay sent a request the host refuses; that stream is closed", {
          stream: id,
          err: err.message,
        }),
      onFatal: (err) => {
        this.#o.log.warn("relay sent a malformed frame; reconnecting", { err: err.message });
        ws.close(1002, "link protocol error");
      },
    });
    this.#mux = mux;
    const hb = this.#o.heartbeat ?? { intervalMs: 10_000, timeoutMs: 30_000 };
    // Pings are text so a Workers relay answers them without waking up (see heartbeat.ts).
    let lastPong = Date.now();
    this.#heartbeat = new Heartbeat({
      intervalMs: hb.intervalMs,
      timeoutMs: hb.timeoutMs,
      ping: () => {
        if (ws.readyState === WebSocket.OPEN) ws.send(LINK_PING_TEXT);
      },
      lastReceivedAt: () => Math.max(mux.lastReceivedAt, lastPong),
      onDead: (silent) => {
        this.#o.log.warn("relay link silent; reconnecting", { silentMs: silent });
        ws.terminate();
      },
    });
    this.#heartbeat.start();
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        if (String(data) === LINK_PONG_TEXT) lastPong = Date.now();
        return;
      }
      const b = data as Buffer;
      mux.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
    ws.on("close", (code, reason) => {
      this.#heartbeat?.stop();
      mux.closeAll(1012, "relay link lost; reconnect");
      this.#mux = undefined;
      this.#ws = undefined;
      this.#linkedAt = undefined;
      if (!this.#stopped)
        this.#scheduleReconnect(`link closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
    });
    ws.on("error", () => {});
    this.#setState("linked", { hostId: this.#o.identity.hostId });
    this.pushRevocations();
    this.pushExchangeCodes();
  }

  #onStream(stream: LinkStream): void {
    const meta = stream.meta;
    if (!meta) return stream.abort(1011, "no stream metadata");
    // Throws for a request the host refuses: the mux then fails this stream alone.
    const req = upstreamRequest(meta, this.#o.upstream, relayAudience(this.#o.relayUrl));
    const voucher = this.#o.vouch;
    if (!voucher) return this.#openUpstream(stream, req);
    // The token is verified again here, with the host key, before anything reaches the upstream.
    const held = holdMessages(stream);
    voucher.vouch(meta, req).then(
      (vouched) => {
        if (!stream.open) return held.drop();
        try {
          this.#openUpstream(stream, vouched);
          held.replay();
        } catch (e) {
          held.drop();
          this.#o.log.warn("the host could not open a vouched stream", {
            stream: stream.id,
            err: toLoopgateError(e).oneLine(),
          });
          if (stream.open) stream.abort(1011, "the host could not open this stream");
        }
      },
      (e: unknown) => {
        held.drop();
        this.#o.log.warn("the link could not vouch for a relayed client; that stream is closed", {
          stream: stream.id,
          err: toLoopgateError(e).oneLine(),
        });
        if (stream.open) stream.abort(1008, "the host refused this client's token");
      },
    );
  }

  #openUpstream(stream: LinkStream, req: UpstreamRequest): void {
    const meta = stream.meta;
    if (!meta) return stream.abort(1011, "no stream metadata");
    // Everything needed is in `req` now: an open stream keeps neither the OPEN nor the client's token in it.
    stream.meta = undefined;
    if (meta.kind === "http") {
      void forwardHttpStream(stream, req, this.#o.gateway ? viaGateway(this.#o.gateway) : viaLoopback);
      return;
    }
    if (this.#o.gateway) {
      // The same checked request as a local WebSocket would carry; the gateway builds its peer from these headers only.
      const refused = this.#o.gateway.acceptLinked(linkStreamSocket(stream), {
        path: req.url.pathname,
        headers: req.headers,
      });
      if (refused) stream.abort(refused.code, refused.reason);
      return;
    }
    const local = new WebSocket(req.url, req.protocols, {
      headers: req.headers,
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      generateMask: zeroMask,
    });
    this.#upstreams.add(local);
    // What the client sent before the local socket opened (made only if it did).
    let early: { data: string | Uint8Array; binary: boolean; fin: boolean; release: () => void }[] | undefined;
    // Made at open (ws's frame writer exists from then on); the link's zero mask, as for the relay's socket.
    let writer: FrameWriter | undefined;
    const write = (data: string | Uint8Array, binary: boolean, fin: boolean, release: () => void) => {
      writer ??= new FrameWriter(local, true);
      writer.writeFrame(data, binary, fin, release);
    };
    const toLocal = (data: string | Uint8Array, binary: boolean, fin: boolean, release: () => void) => {
      if (local.readyState === WebSocket.OPEN) write(data, binary, fin, release);
      else (early ??= []).push({ data, binary, fin, release });
    };
    // Held messages arrive whole; the rest go on chunk by chunk as WebSocket fragments (text as its
    // UTF-8 bytes, which the gateway's WebSocket checks), never reassembled or re-encoded here.
    stream.onMessage = (data, _bin, release) => toLocal(data, typeof data !== "string", true, release);
    stream.onChunk = toLocal;
    stream.onDrain = () => local.resume();
    stream.onClose = (code, reason) => {
      if (local.readyState === WebSocket.OPEN || local.readyState === WebSocket.CONNECTING) {
        try {
          local.close(code, reason);
        } catch {
          local.terminate();
        }
      }
    };
    local.on("open", () => {
      // The gateway's messages go on piece by piece as they arrive, not once whole (chunked-receive.ts);
      // where that is not possible, whole through 'message' below.
      receiveInChunks(local, (chunk, isBinary, fin) => {
        if (!stream.sendChunk(chunk, isBinary, fin)) local.pause();
      });
      const held = early;
      early = undefined;
      for (const m of held ?? []) write(m.data, m.binary, m.fin, m.release);
    });
    local.on("message", (data, isBinary) => {
      const b = data as Buffer;
      // A view of ws's fresh message buffer (nothing writes to it again), not a copy; text stays its
      // UTF-8 bytes (ws has checked them).
      if (!stream.sendMessage(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), isBinary)) local.pause();
    });
    local.on("close", (code, reason) => {
      this.#upstreams.delete(local);
      stream.close(code, reason.toString());
    });
    local.on("unexpected-response", (_req, res) => {
      stream.abort(res.statusCode === 403 ? 1008 : 1011, `gateway refused the WebSocket: HTTP ${res.statusCode}`);
      local.terminate();
    });
    local.on("error", (e: NodeJS.ErrnoException) => {
      if (!stream.open) return;
      // The errno (never a secret) tells a refused gateway from a host out of file descriptors.
      this.#o.log.warn("gateway connection failed", { stream: stream.id, code: e.code ?? e.message });
      stream.abort(
        1011,
        e.code === "ECONNREFUSED"
          ? "gateway unreachable on the host"
          : `gateway connection failed${e.code ? ` (${e.code})` : ""}`,
      );
    });
  }
}
