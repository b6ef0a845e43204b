/**
 * One end of the link: many streams over one WebSocket. Decodes frames,
 * routes them to streams, enforces the stream limit, answers pings, and
 * carries control messages. No timers and no sockets here: the adapter
 * passes bytes in (`receive`) and gives a `send` function.
 */
import { LoopgateError, ErrorCodes } from "../errors.ts";
import {
  decodeFrame,
  encodeOpen,
  encodePing,
  encodeControl,
  encodeClose,
  encodeData,
  encodeDataHead,
  DATA_HEAD_BYTES,
  FrameType,
  BadOpenError,
  BAD_OPEN_CLOSE_CODE,
  type OpenMeta,
} from "./codec.ts";
import { LinkStream, type StreamLimits } from "./stream.ts";

export interface LinkLimits extends StreamLimits {
  maxStreams: number;
}

/**
 * Defaults: every stream starts with the protocol's 256 KiB of credit each
 * way; each receiver then grants up to a 1 MiB window, so one stream keeps a
 * fast path busy (a 1 MiB message crosses in one round of credit) while a
 * stalled one holds at most that.
 */
export const DEFAULT_LINK_LIMITS: LinkLimits = {
  maxStreams: 1024,
  initialWindow: 256 * 1024,
  receiveWindow: 1024 * 1024,
  maxMessageBytes: 25 * 1024 * 1024,
  maxQueuedBytes: 32 * 1024 * 1024,
  highWaterBytes: 512 * 1024,
  chunkBytes: 64 * 1024,
};

export interface MuxOptions {
  role: "relay" | "host";
  send: (frame: Uint8Array) => void;
  /**
   * Sends a DATA frame given as its head (codec.encodeDataHead) and its
   * payload, as one message, without joining them: a transport that can
   * write both parts as one WebSocket message saves a copy of every chunk.
   * Without it, DATA frames go through `send` whole.
   */
  sendParts?: (head: Uint8Array, payload: Uint8Array) => void;
  limits?: Partial<LinkLimits>;
  /** Host side: a new stream from the relay. */
  onOpen?: (stream: LinkStream) => void;
  onControl?: (message: Record<string, unknown>) => void;
  /** The link is unusable (malformed frame): close it with 1002. */
  onFatal?: (err: LoopgateError) => void;
  /** Host side: an OPEN was refused (its stream closed with 1008); the link goes on. For logs. */
  onRefusedOpen?: (streamId: number, err: LoopgateError) => void;
  onPong?: (nonce: Uint8Array) => void;
  now?: () => number;
}

export class LinkMux {
  readonly role: "relay" | "host";
  readonly limits: LinkLimits;
  readonly #opts: MuxOptions;
  readonly #streams = new Map<number, LinkStream>();
  #nextId = 1;
  #lastRx: number;
  #bytesIn = 0;
  #bytesOut = 0;
  #dead = false;

  constructor(opts: MuxOptions) {
    this.role = opts.role;
    this.#opts = opts;
    this.limits = { ...DEFAULT_LINK_LIMITS, ...opts.limits };
    // A caller that sets only the initial window means that window (tests, small links).
    if (opts.limits?.initialWindow !== undefined && opts.limits.receiveWindow === undefined)
      this.limits.receiveWindow = opts.limits.initialWindow;
    this.#lastRx = (opts.now ?? Date.now)();
  }

  get size(): number {
    return this.#streams.size;
  }
  get lastReceivedAt(): number {
    return this.#lastRx;
  }
  get bytesIn(): number {
    return this.#bytesIn;
  }
  get bytesOut(): number {
    return this.#bytesOut;
  }
  streams(): IterableIterator<LinkStream> {
    return this.#streams.values();
  }
  get(id: number): LinkStream | undefined {
    return this.#streams.get(id);
  }

  #send = (frame: Uint8Array): void => {
    if (this.#dead) return;
    this.#bytesOut += frame.length;
    this.#opts.send(frame);
  };

  #streamHost = {
    sendFrame: (f: Uint8Array) => this.#send(f),
    sendData: (id: number, chunk: Uint8Array, binary: boolean, fin: boolean) => {
      const parts = this.#opts.sendParts;
      if (!parts) return this.#send(encodeData(id, chunk, binary, fin));
      if (this.#dead) return;
      this.#bytesOut += DATA_HEAD_BYTES + chunk.length;
      parts(encodeDataHead(id, chunk.length, binary, fin), chunk);
    },
    remove: (id: number) => {
      this.#streams.delete(id);
    },
  };

  /** Relay side: opens a stream to the host. Throws LIMIT_EXCEEDED past maxStreams. */
  openStream(meta: OpenMeta): LinkStream {
    if (this.role !== "relay") throw new Error("only the relay opens streams");
    if (this.#streams.size >= this.limits.maxStreams) {
      throw new LoopgateError(
        ErrorCodes.LIMIT_EXCEEDED,
        `this host already has ${this.limits.maxStreams} open streams`,
        { hint: "close idle clients or raise the limit" },
      );
    }
    let id = this.#nextId;
    while (this.#streams.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    // The relay side does not keep `meta`: it carries the client's credentials, needed only in OPEN.
    const s = new LinkStream(id, this.#streamHost, this.limits);
    this.#streams.set(id, s);
    this.#send(encodeOpen(id, meta));
    s.growWindow();
    return s;
  }

  /** The id the next openStream() will try first (persisted by relays that can be evicted). */
  get nextStreamId(): number {
    return this.#nextId;
  }
  set nextStreamId(id: number) {
    if (Number.isInteger(id) && id >= 1 && id <= 0xffffffff) this.#nextId = id;
  }

  /**
   * Relay side, after an eviction (Workers): re-creates an open stream whose
   * in-memory state was lost. Credit starts from a full window again, which is
   * what both sides hold once a stream has been idle long enough for eviction.
   */
  restoreStream(id: number, meta?: OpenMeta): LinkStream {
    if (this.role !== "relay") throw new Error("only the relay restores streams");
    const existing = this.#streams.get(id);
    if (existing) return existing;
    const s = new LinkStream(id, this.#streamHost, this.limits, meta);
    this.#streams.set(id, s);
    return s;
  }

  sendControl(message: Record<string, unknown>): void {
    this.#send(encodeControl(message));
  }

  ping(nonce?: Uint8Array): Uint8Array {
    const n = nonce ?? new Uint8Array(8);
    if (!nonce) new DataView(n.buffer).setFloat64(0, (this.#opts.now ?? Date.now)());
    this.#send(encodePing(n));
    return n;
  }

  receive(bytes: Uint8Array): void {
    if (this.#dead) return;
    this.#bytesIn += bytes.length;
    this.#lastRx = (this.#opts.now ?? Date.now)();
    let f;
    try {
      f = decodeFrame(bytes);
    } catch (e) {
      if (e instanceof BadOpenError && this.role === "host") {
        // A bad request fails its own stream only: one client's request never drops everyone's link.
        this.#forgetReused(e.streamId);
        this.refuseOpen(e.streamId, e);
        return;
      }
      const err = e instanceof LoopgateError ? e : new LoopgateError(ErrorCodes.LINK_PROTOCOL, String(e));
      this.#opts.onFatal?.(err);
      return;
    }
    switch (f.type) {
      case FrameType.OPEN: {
        if (this.role !== "host")
          return this.#opts.onFatal?.(
            new LoopgateError(ErrorCodes.LINK_PROTOCOL, "link frame: OPEN sent to the relay"),
          );
        this.#forgetReused(f.streamId);
        if (this.#streams.size >= this.limits.maxStreams) {
          this.#send(encodeClose(f.streamId, 1013, "too many streams on this host"));
          return;
        }
        const s = new LinkStream(f.streamId, this.#streamHost, this.limits, f.meta);
        this.#streams.set(f.streamId, s);
        s.growWindow();
        try {
          this.#opts.onOpen?.(s);
        } catch (e) {
          // Whatever the handler could not start (a request the local stack refuses) fails that stream alone.
          // A typed refusal says why (1008); anything else is the host's own failure (1011).
          const err =
            e instanceof LoopgateError
              ? e
              : new LoopgateError(ErrorCodes.INTERNAL, e instanceof Error ? e.message : String(e));
          if (s.open)
            s.abort(
              e instanceof LoopgateError ? BAD_OPEN_CLOSE_CODE : 1011,
              e instanceof LoopgateError
                ? `request refused by the host: ${err.message}`
                : "the host could not open this stream",
            );
          this.#opts.onRefusedOpen?.(f.streamId, err);
        }
        return;
      }
      case FrameType.ACCEPT:
        this.#streams.get(f.streamId)?.handleAccept(f.info);
        return;
      case FrameType.DATA:
        // Unknown streams are ignored: DATA may race a CLOSE.
        this.#streams.get(f.streamId)?.handleData(f.binary, f.fin, f.data);
        return;
      case FrameType.CLOSE:
        this.#streams.get(f.streamId)?.handleClose(f.code, f.reason);
        return;
      case FrameType.CREDIT:
        this.#streams.get(f.streamId)?.handleCredit(f.bytes);
        return;
      case FrameType.PING:
        this.#send(encodePing(f.nonce, true));
        return;
      case FrameType.PONG:
        this.#opts.onPong?.(f.nonce);
        return;
      case FrameType.CONTROL:
        this.#opts.onControl?.(f.message);
        return;
    }
  }

  /**
   * Host side: an OPEN for an id still open here means the relay forgot that
   * stream (a restart, an eviction): end ours locally, without a CLOSE that
   * would hit the new one, instead of failing the whole link.
   */
  #forgetReused(streamId: number): void {
    const old = this.#streams.get(streamId);
    if (!old) return;
    old.handleClose(1011, "the relay reused this stream id");
    this.#opts.onRefusedOpen?.(
      streamId,
      new LoopgateError(ErrorCodes.LINK_PROTOCOL, `stream ${streamId} opened again; the old one was ended`),
    );
  }

  /** Host side: refuses one OPEN with a CLOSE on its stream id (1008 and a short reason); the link goes on. */
  refuseOpen(streamId: number, err: LoopgateError): void {
    this.#send(
      encodeClose(
        streamId,
        BAD_OPEN_CLOSE_CODE,
        `request refused by the host: ${err.message.replace(/^link frame: /, "")}`,
      ),
    );
    this.#opts.onRefusedOpen?.(streamId, err);
  }

  /** The link is gone: every stream ends with this code (each onClose fires once). */
  closeAll(code: number, reason: string): void {
    this.#dead = true;
    const all = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of all) s.handleClose(code, reason);
  }
}
