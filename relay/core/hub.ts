/**
 * One host at the relay: its link (a LinkMux) and the client streams riding
 * on it. Runtime-agnostic: the Node adapter and the Workers Durable Object
 * feed it sockets through the small interfaces below.
 */
import type { JWK } from "jose";
import { LinkMux, type LinkLimits } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import type { OpenMeta, AcceptInfo } from "../../shared/link/codec.ts";
import { Heartbeat, LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { sendableCloseCode } from "../../shared/close.ts";
import { RelayClose, streamCaps, type RelayLimits } from "./limits.ts";
import type { HostRecord } from "./auth.ts";
import { ExchangeCodeTable, type ExchangeCodeEntry } from "./exchange-codes.ts";
import { RelayMetrics, type HostSample, type LinkDropReason, type RefusalReason } from "./metrics.ts";
import type { RelayLog } from "../../shared/log.ts";

/** A client WebSocket as the hub needs it. */
export interface ClientSocket {
  /** Sends; `done` runs once the bytes left this process (or at once where the runtime cannot tell). */
  send(data: string | Uint8Array, done: () => void): void;
  /**
   * Where the runtime can send a message in fragments (Node): one chunk of a
   * message from the host, sent on as it arrives (`fin` on the last; text
   * as its UTF-8 bytes), so the relay never holds a large message whole.
   */
  sendChunk?(chunk: Uint8Array, isBinary: boolean, fin: boolean, done: () => void): void;
  close(code: number, reason: string): void;
  /** Stop/start reading from the client (no-ops where the runtime cannot). */
  pause(): void;
  resume(): void;
}

export interface LinkSocket {
  /** A frame, or the text answer to the host's keepalive. */
  send(frame: Uint8Array | string): void;
  /** A DATA frame as its head and payload, sent as one message without joining them (LinkMux's sendParts). */
  sendParts?(head: Uint8Array, payload: Uint8Array): void;
  close(code: number, reason: string): void;
}

export interface ClientHandle {
  /** The link stream carrying this client (persisted by relays that can be evicted). */
  streamId: number;
  /** `isBinary` false with bytes: a text message's UTF-8 (already checked by the socket), passed on as is. */
  message(data: string | Uint8Array, isBinary?: boolean): void;
  /**
   * One piece of a client's message as it arrives (`fin` on its last), where
   * the runtime can read messages in pieces (Node): sent on at once, never
   * held whole here. Text is its UTF-8 bytes, checked by the host's side.
   */
  chunk(data: Uint8Array, isBinary: boolean, fin: boolean): void;
  closed(code: number, reason: string): void;
}

export interface LinkHandle {
  /** A message from the link socket: binary frames for the mux, the host's text keepalive, or a violation. */
  message(data: Uint8Array | string): void;
  closed(): void;
}

export interface HubOptions {
  /** Extra link limits (tests; Workers lowers the queue bound). */
  linkLimits?: Partial<LinkLimits>;
  /**
   * "timer": the hub pings the link itself (Node). "external": the runtime
   * calls checkLink() (Workers alarms), so an idle object can hibernate.
   */
  heartbeat?: "timer" | "external";
  /** Revocations known from before (Workers storage). */
  revoked?: readonly string[];
  /** Called when the host pushes a new revocation list (Workers persists it). */
  onRevocations?: (ids: string[]) => void;
  /** Exchange codes known from before (Workers storage). */
  exchangeCodes?: readonly ExchangeCodeEntry[];
  /** Called when the exchange codes change: a push from the host, or a code spent (Workers persists them). */
  onExchangeCodes?: (codes: ExchangeCodeEntry[]) => void;
  /** The counters links and streams are counted in (the relay's; a private set when absent). */
  metrics?: RelayMetrics;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array>;
}

export class HostHub implements HostRecord {
  readonly hostId: string;
  publicJwk: JWK;
  readonly #limits: RelayLimits;
  readonly #opts: HubOptions;
  readonly #log: RelayLog;
  #link: { sock: LinkSocket; mux: LinkMux; heartbeat: Heartbeat | undefined; since: number } | undefined;
  readonly #revoked = new Set<string>();
  readonly #codes: ExchangeCodeTable;
  /** Who holds each open client stream, and how many each token and address hold (the per-token/per-address caps). */
  readonly #owners = new Map<LinkStream, StreamOwner>();
  readonly #held = new Map<string, number>();
  readonly #caps: { perToken: number; perAddr: number };
  #bytesIn = 0;
  #bytesOut = 0;
  readonly #metrics: RelayMetrics;
  /** A link attached since this hub began: the next one is a reconnect. */
  #everLinked = false;

  constructor(hostId: string, publicJwk: JWK, limits: RelayLimits, log: RelayLog, opts: HubOptions = {}) {
    this.hostId = hostId;
    this.publicJwk = publicJwk;
    this.#limits = limits;
    this.#opts = opts;
    this.#log = log;
    this.#caps = streamCaps(limits);
    this.#metrics = opts.metrics ?? new RelayMetrics();
    for (const id of opts.revoked ?? []) this.#revoked.add(id);
    this.#codes = new ExchangeCodeTable({ maxTokenBytes: limits.maxTokenBytes, initial: opts.exchangeCodes ?? [] });
  }

  /** Before an adapter upgrades a client or forwards a request: refused (and counted) when offline or over a cap (checked again when the stream opens). */
  admission(meta: OpenMeta): { status: 503 | 429; text: string } | undefined {
    if (!this.linked) return this.#refused("host_offline", { status: 503, text: HOST_OFFLINE_TEXT });
    const over = this.#overCap(meta.tokenId, meta.clientAddr);
    return over ? this.#refused("stream_cap", { status: 429, text: `${over}\n` }) : undefined;
  }

  #refused<T>(why: RefusalReason, value: T): T {
    this.#metrics.refused(why);
    return value;
  }

  /** This host as a metrics sample. */
  sample(): HostSample {
    const s = this.stats();
    return {
      hostId: this.hostId,
      linked: s.linked,
      streams: s.streams,
      bytesFromHost: s.bytesIn,
      bytesToHost: s.bytesOut,
    };
  }

  #overCap(tokenId: string | undefined, addr: string): string | undefined {
    if (tokenId !== undefined && (this.#held.get(`t:${tokenId}`) ?? 0) >= this.#caps.perToken)
      return `too many streams for this token (${this.#caps.perToken})`;
    if ((this.#held.get(`a:${addr}`) ?? 0) >= this.#caps.perAddr)
      return `too many streams from this address (${this.#caps.perAddr})`;
    return undefined;
  }

  #track(stream: LinkStream, owner: StreamOwner): void {
    this.#owners.set(stream, owner);
    for (const k of [owner.tokenId !== undefined ? `t:${owner.tokenId}` : undefined, `a:${owner.addr}`])
      if (k) this.#held.set(k, (this.#held.get(k) ?? 0) + 1);
  }

  #untrack(stream: LinkStream): void {
    const o = this.#owners.get(stream);
    if (!o) return;
    this.#owners.delete(stream);
    for (const k of [o.tokenId !== undefined ? `t:${o.tokenId}` : undefined, `a:${o.addr}`]) {
      if (!k) continue;
      const n = (this.#held.get(k) ?? 1) - 1;
      if (n > 0) this.#held.set(k, n);
      else this.#held.delete(k);
    }
  }

  /** The id the link will give the next stream. */
  get nextStreamId(): number {
    return this.#link?.mux.nextStreamId ?? 1;
  }

  get linked(): boolean {
    return this.#link !== undefined;
  }

  isRevoked(tokenId: string): boolean {
    return this.#revoked.has(tokenId);
  }

  redeemExchangeCode(hash: string): string | undefined {
    const token = this.#codes.redeem(hash);
    if (token !== undefined) this.#opts.onExchangeCodes?.(this.#codes.snapshot());
    return token;
  }

  stats(): { linked: boolean; streams: number; bytesIn: number; bytesOut: number; linkedForMs: number | null } {
    return {
      linked: this.linked,
      streams: this.#link?.mux.size ?? 0,
      bytesIn: this.#bytesIn + (this.#link?.mux.bytesIn ?? 0),
      bytesOut: this.#bytesOut + (this.#link?.mux.bytesOut ?? 0),
      linkedForMs: this.#link ? Date.now() - this.#link.since : null,
    };
  }

  /** A new link replaces any old one: the old link and its streams close with 1012. */
  attachLink(sock: LinkSocket, publicJwk: JWK): LinkHandle {
    this.publicJwk = publicJwk;
    if (this.#link) {
      this.#log.info("link replaced by a newer one", { hostId: this.hostId });
      this.#dropLink("replaced", RelayClose.RESTART, "host link replaced; reconnect");
    }
    this.#metrics.linkConnected(this.#everLinked);
    this.#everLinked = true;
    const handle = this.#installLink(sock);
    this.#log.info("host linked", { hostId: this.hostId });
    return handle;
  }

  /** After an eviction: the link socket survived, its in-memory state did not. */
  restoreLink(sock: LinkSocket, nextStreamId: number): LinkHandle {
    this.#everLinked = true;
    const handle = this.#installLink(sock);
    this.#link!.mux.nextStreamId = nextStreamId;
    return handle;
  }

  /** Runtimes without timers here (Workers alarms): closes the link if it has been silent too long. */
  checkLink(lastSeenElsewhere = 0): boolean {
    const link = this.#link;
    if (!link) return false;
    const silent = Date.now() - Math.max(link.mux.lastReceivedAt, lastSeenElsewhere);
    if (silent <= this.#limits.heartbeat.timeoutMs) return true;
    this.#log.warn("link silent; closing it", { hostId: this.hostId, silentMs: silent });
    this.#dropLink("silent", RelayClose.RESTART, "host link lost; reconnect");
    return false;
  }

  #installLink(sock: LinkSocket): LinkHandle {
    const mux: LinkMux = new LinkMux({
      role: "relay",
      send: (f) => sock.send(f),
      ...(sock.sendParts ? { sendParts: (h: Uint8Array, p: Uint8Array) => sock.sendParts?.(h, p) } : {}),
      limits: {
        maxStreams: this.#limits.maxStreamsPerHost,
        maxMessageBytes: this.#limits.maxMessageBytes,
        ...this.#opts.linkLimits,
      },
      onControl: (m) => this.#onControl(m),
      onFatal: (err) => {
        this.#log.warn("link protocol error; closing the link", { hostId: this.hostId, err: err.message });
        if (this.#link?.mux === mux)
          this.#dropLink(
            "protocol_error",
            RelayClose.RESTART,
            "host link failed; reconnect",
            1002,
            "link protocol error",
          );
        else sock.close(1002, "link protocol error");
      },
    });
    let heartbeat: Heartbeat | undefined;
    if ((this.#opts.heartbeat ?? "timer") === "timer") {
      heartbeat = new Heartbeat({
        intervalMs: this.#limits.heartbeat.intervalMs,
        timeoutMs: this.#limits.heartbeat.timeoutMs,
        ping: () => mux.ping(),
        lastReceivedAt: () => mux.lastReceivedAt,
        onDead: (silent) => {
          this.#log.warn("link silent; closing it", { hostId: this.hostId, silentMs: silent });
          if (this.#link?.mux === mux) this.#dropLink("silent", RelayClose.RESTART, "host link lost; reconnect");
          sock.close(1011, "heartbeat timeout");
        },
      });
      heartbeat.start();
    }
    const link = { sock, mux, heartbeat, since: Date.now() };
    this.#link = link;
    return {
      message: (data) => {
        if (typeof data !== "string") return mux.receive(data);
        // The host's keepalive is the only text on a link (Workers answers it without waking the object).
        if (data === LINK_PING_TEXT) sock.send(LINK_PONG_TEXT);
        else sock.close(1003, "the link carries binary frames only");
      },
      closed: () => {
        if (this.#link === link) {
          this.#log.info("host link closed", { hostId: this.hostId });
          this.#dropLink("closed", RelayClose.RESTART, "host link lost; reconnect");
        }
      },
    };
  }

  /** Ends the link: its streams close with `code`; the link socket with `linkCode` (default: 1012 for restarts, else 1001). */
  #dropLink(why: LinkDropReason, code: number, reason: string, linkCode?: number, linkReason?: string): void {
    const link = this.#link;
    if (!link) return;
    this.#link = undefined;
    this.#metrics.linkDropped(why);
    link.heartbeat?.stop();
    this.#bytesIn += link.mux.bytesIn;
    this.#bytesOut += link.mux.bytesOut;
    link.mux.closeAll(code, reason);
    link.sock.close(linkCode ?? (code === RelayClose.RESTART ? 1012 : 1001), linkReason ?? reason);
  }

  /** Closes the hub (relay shutting down). */
  shutdown(code: number, reason: string): void {
    this.#dropLink("shutdown", code, reason);
  }

  #onControl(m: Record<string, unknown>): void {
    if (m.type === "exchange-codes" && Array.isArray(m.codes)) {
      // Never the codes or tokens in a log line: only how many are pending.
      if (this.#codes.merge(m.codes.slice(0, 1000))) this.#opts.onExchangeCodes?.(this.#codes.snapshot());
      this.#log.info("exchange codes updated", { hostId: this.hostId, pending: this.#codes.size });
      return;
    }
    if (m.type === "revocations" && Array.isArray(m.ids)) {
      const ids = m.ids.filter((x): x is string => typeof x === "string" && x.length <= 256).slice(0, 100_000);
      this.#revoked.clear();
      for (const id of ids) this.#revoked.add(id);
      this.#opts.onRevocations?.(ids);
      this.#log.info("revocations updated", { hostId: this.hostId, revoked: ids.length });
      // Close the open streams of revoked tokens.
      for (const [stream, { tokenId }] of [...this.#owners]) {
        if (tokenId !== undefined && this.#revoked.has(tokenId)) {
          // abort() tells the host; onClose tells the client (abort alone does not notify).
          stream.abort(RelayClose.REVOKED, "token revoked");
          stream.onClose(RelayClose.REVOKED, "token revoked");
        }
      }
    }
  }

  /**
   * Opens a stream for an authenticated client WebSocket. Returns undefined
   * (and closes the socket) when the host is offline or at its stream limit.
   */
  attachClient(sock: ClientSocket, meta: OpenMeta): ClientHandle | undefined {
    const link = this.#link;
    if (!link) {
      this.#metrics.refused("host_offline");
      sock.close(RelayClose.TRY_AGAIN, HOST_OFFLINE);
      return undefined;
    }
    const over = this.#overCap(meta.tokenId, meta.clientAddr);
    if (over) {
      this.#metrics.refused("stream_cap");
      sock.close(RelayClose.TRY_AGAIN, over);
      return undefined;
    }
    let stream: LinkStream;
    try {
      stream = link.mux.openStream(meta);
    } catch {
      this.#metrics.refused("stream_cap");
      sock.close(RelayClose.TRY_AGAIN, "too many streams for this host");
      return undefined;
    }
    this.#metrics.streamOpened("ws");
    return this.#wireClient(sock, stream, meta.tokenId, meta.clientAddr);
  }

  /** After an eviction: a client socket that survived gets its stream back. */
  restoreClient(
    sock: ClientSocket,
    streamId: number,
    tokenId: string | undefined,
    clientAddr = "unknown",
  ): ClientHandle | undefined {
    const link = this.#link;
    if (!link) {
      sock.close(RelayClose.HOST_OFFLINE, "host link lost; reconnect");
      return undefined;
    }
    if (tokenId !== undefined && this.#revoked.has(tokenId)) {
      sock.close(RelayClose.REVOKED, "token revoked");
      return undefined;
    }
    return this.#wireClient(sock, link.mux.restoreStream(streamId), tokenId, clientAddr);
  }

  #wireClient(sock: ClientSocket, stream: LinkStream, tokenId: string | undefined, clientAddr: string): ClientHandle {
    const wire = new ClientWire(sock, stream, tokenId, clientAddr, this.#clientEnded);
    this.#track(stream, wire);
    stream.onMessage = (data, _isBinary, release) => wire.toClient(data, release);
    if (sock.sendChunk)
      stream.onChunk = (chunk, isBinary, fin, release) => wire.chunkToClient(chunk, isBinary, fin, release);
    stream.onDrain = () => sock.resume();
    stream.onClose = (code, reason) => wire.streamClosed(code, reason);
    return wire;
  }

  /** One function for every client of this hub (not a closure per client). */
  readonly #clientEnded = (wire: ClientWire): void => {
    this.#untrack(wire.stream);
    this.#metrics.observeBufferPeak(wire.peak);
  };

  /** Forwards one HTTP request over the link; the response body streams back. */
  forwardHttp(meta: OpenMeta, body: Uint8Array | undefined): Promise<HttpReply> {
    const link = this.#link;
    if (!link) return Promise.resolve(this.#refused("host_offline", textReply(503, HOST_OFFLINE_TEXT)));
    const over = this.#overCap(meta.tokenId, meta.clientAddr);
    if (over) return Promise.resolve(this.#refused("stream_cap", textReply(429, `${over}\n`)));
    let stream: LinkStream;
    try {
      stream = link.mux.openStream(meta);
    } catch {
      return Promise.resolve(this.#refused("stream_cap", textReply(503, "too many streams for this host\n")));
    }
    this.#metrics.streamOpened("http");
    this.#track(stream, { tokenId: meta.tokenId, addr: meta.clientAddr });
    let peak = 0;
    let observed = false;
    const done = () => {
      this.#untrack(stream);
      if (observed) return;
      observed = true;
      this.#metrics.observeBufferPeak(peak);
    };
    // Methods with a body send it as exactly one message (possibly empty); GET and HEAD send none.
    if (body !== undefined) stream.sendMessage(body);
    return new Promise((resolve) => {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const pending: (() => void)[] = [];
      const bodyStream = new ReadableStream<Uint8Array>(
        {
          start: (c) => {
            controller = c;
          },
          pull: () => {
            pending.splice(0).forEach((r) => r());
          },
          cancel: () => {
            done();
            stream.abort(1001, "client went away");
          },
        },
        { highWaterMark: 4 },
      );
      let accepted = false;
      stream.onAccept = (info: AcceptInfo) => {
        accepted = true;
        resolve({ status: info.status ?? 502, headers: info.headers ?? {}, body: bodyStream });
      };
      stream.onMessage = (data, _bin, release) => {
        if (stream.heldBytes > peak) peak = stream.heldBytes;
        controller.enqueue(typeof data === "string" ? new TextEncoder().encode(data) : data);
        if ((controller.desiredSize ?? 1) > 0) release();
        else pending.push(release);
      };
      stream.onClose = (code, reason) => {
        done();
        if (!accepted) {
          resolve(textReply(code === 1013 ? 503 : 502, `the host could not answer: ${reason || code}\n`));
          return;
        }
        if (code === 1000) controller.close();
        else controller.error(new Error(`host closed the response: ${code} ${reason}`));
      };
    });
  }
}

/** Who holds a stream: what the per-token and per-address caps count. */
interface StreamOwner {
  readonly tokenId: string | undefined;
  readonly addr: string;
}

/**
 * A client WebSocket wired to its link stream: the handle the adapter feeds
 * and the stream's owner, in one object per client (an idle client is most
 * of a relay's memory, so no closure per method).
 */
class ClientWire implements ClientHandle, StreamOwner {
  readonly streamId: number;
  readonly tokenId: string | undefined;
  readonly addr: string;
  readonly stream: LinkStream;
  readonly #sock: ClientSocket;
  readonly #onEnd: (wire: ClientWire) => void;
  #ended = false;
  /** The most this stream held here at once: queued toward the host, or given to the client socket and not yet sent. */
  peak = 0;

  constructor(
    sock: ClientSocket,
    stream: LinkStream,
    tokenId: string | undefined,
    addr: string,
    onEnd: (wire: ClientWire) => void,
  ) {
    this.streamId = stream.id;
    this.tokenId = tokenId;
    this.addr = addr;
    this.stream = stream;
    this.#sock = sock;
    this.#onEnd = onEnd;
  }

  #end(): void {
    this.#ended = true;
    this.#onEnd(this);
  }

  #notePeak(bytes: number): void {
    if (bytes > this.peak) this.peak = bytes;
  }

  toClient(data: string | Uint8Array, release: () => void): void {
    this.#notePeak(this.stream.heldBytes);
    this.#sock.send(data, release);
  }

  chunkToClient(chunk: Uint8Array, isBinary: boolean, fin: boolean, release: () => void): void {
    this.#notePeak(this.stream.heldBytes);
    this.#sock.sendChunk?.(chunk, isBinary, fin, release);
  }

  /** The stream ended from the host's side (or a limit, or the link): the client socket closes too. */
  streamClosed(code: number, reason: string): void {
    this.#end();
    this.#sock.close(code, reason);
  }

  message(data: string | Uint8Array, isBinary?: boolean): void {
    if (this.#ended) return;
    const below = this.stream.sendMessage(data, isBinary ?? typeof data !== "string");
    this.#notePeak(this.stream.queuedBytes);
    if (!below) this.#sock.pause();
  }

  chunk(data: Uint8Array, isBinary: boolean, fin: boolean): void {
    if (this.#ended) return;
    const below = this.stream.sendChunk(data, isBinary, fin);
    this.#notePeak(this.stream.queuedBytes);
    if (!below) this.#sock.pause();
  }

  closed(code: number, reason: string): void {
    if (this.#ended) return;
    this.#end();
    this.stream.close(sendableCloseCode(code), reason);
  }
}

/** Why a request for a host without a link is refused (a close reason, or a 503's text with a newline). */
export const HOST_OFFLINE = "host offline: its link is not connected";
const HOST_OFFLINE_TEXT = `${HOST_OFFLINE}\n`;

function textReply(status: number, text: string): HttpReply {
  const bytes = new TextEncoder().encode(text);
  return {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
    body: new ReadableStream({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    }),
  };
}
