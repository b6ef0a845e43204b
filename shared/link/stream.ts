/**
 * One stream of the link, seen from one side: outgoing messages are chunked
 * and sent only while the peer's credit allows (the rest waits in a bounded
 * queue); incoming chunks are reassembled into whole messages; credit goes
 * back to the peer only as the consumer releases what it was given, so a
 * reader that stops reading stalls its own stream and nothing else.
 *
 * Windows: both sides start each stream with `initialWindow` of credit (a
 * protocol constant: it must match the peer's). A receiver with a larger
 * `receiveWindow` grants the difference at once (growWindow), so a fast path
 * keeps more in flight; a peer that caps credit at the initial window simply
 * does not use the extra.
 */
import { encodeClose, encodeCredit, encodeAccept, type OpenMeta, type AcceptInfo } from "./codec.ts";

export interface StreamLimits {
  /** Credit each side starts with, per stream (bytes). Both peers must agree on it. */
  initialWindow: number;
  /** What this side lets its peer have in flight per stream (bytes; initialWindow when absent or smaller). */
  receiveWindow?: number;
  /** Largest reassembled message (bytes); larger closes the stream with 1009. */
  maxMessageBytes: number;
  /** Bytes queued for sending before the stream is closed (a source that cannot be paused). */
  maxQueuedBytes: number;
  /** Above this many queued bytes the source should pause (see `onDrain`). */
  highWaterBytes: number;
  chunkBytes: number;
}

export interface StreamHost {
  sendFrame(frame: Uint8Array): void;
  /** A DATA chunk: the host encodes it (as one frame, or as its head and the chunk unjoined). */
  sendData(id: number, chunk: Uint8Array, binary: boolean, fin: boolean): void;
  remove(id: number): void;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** `fin`: this is a message's last piece (whole messages are one piece). */
type Outgoing = { data: Uint8Array; offset: number; binary: boolean; fin: boolean };

/** Most credit a sender keeps: far past any window, so a peer's grants can never overflow it. */
const MAX_SEND_CREDIT = 64 * 1024 * 1024;

/** `bytes`: the message's size on the wire (UTF-8 bytes for text), so a consumer need not re-encode to measure it. */
export type MessageHandler = (data: string | Uint8Array, isBinary: boolean, release: () => void, bytes: number) => void;

/** One chunk of a message, for a consumer that forwards without reassembling (see `onChunk`). */
export type ChunkHandler = (chunk: Uint8Array, isBinary: boolean, fin: boolean, release: () => void) => void;

const releaseAtOnce: MessageHandler = (_d, _b, release) => release();
const ignore = (): void => {};

export class LinkStream {
  readonly id: number;
  /** The OPEN's request (host side); the host drops it once the stream is wired, as it carries the client's token. */
  meta: OpenMeta | undefined;
  readonly #host: StreamHost;
  readonly #limits: StreamLimits;
  #sendCredit: number;
  #queue: Outgoing[] = [];
  #queuedBytes = 0;
  /** Bytes of the message being queued piece by piece (sendChunk), for the size limit. */
  #chunkedBytes = 0;
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  #partsBinary = false;
  /** Received and held here, not yet granted back to the peer. */
  #ungranted = 0;
  /** Received but not yet covered by a grant: must never exceed the window. */
  #outstanding = 0;
  /** Bytes handed to the consumer and not yet released (they hold back the next grant). */
  #unreleasedBytes = 0;
  #state: "open" | "closing" | "closed" = "open";
  #closeAfterFlush: { code: number; reason: string } | undefined;
  #wasAboveHighWater = false;
  /** Largest message accepted from the peer (at most limits.maxMessageBytes; see limitIncoming). */
  #maxIncoming: number;
  /** This side's receive window: the most the peer may have sent and not had granted back. */
  readonly #window: number;
  #grown = false;
  /** onChunk: inside a message whose first chunk was handed over. */
  #midMessage = false;

  // The defaults are shared functions: a closure each per stream would cost every idle stream ~200 bytes.
  onMessage: MessageHandler = releaseAtOnce;
  /**
   * When set, messages are not reassembled: each chunk is handed over as it
   * arrives (`fin` on a message's last), as bytes even for text (not checked
   * as UTF-8: the consumer forwards them to a peer that checks). A relay
   * streams large messages through this way, without holding them whole.
   */
  onChunk: ChunkHandler | undefined;
  /** The stream ended other than by our own close(): peer CLOSE, a limit, or link loss. Fires once. */
  onClose: (code: number, reason: string) => void = ignore;
  onAccept: (info: AcceptInfo) => void = ignore;
  /** The send queue fell below the high-water mark again. */
  onDrain: () => void = ignore;

  constructor(id: number, host: StreamHost, limits: StreamLimits, meta?: OpenMeta) {
    this.id = id;
    this.#host = host;
    this.#limits = limits;
    this.meta = meta;
    this.#sendCredit = limits.initialWindow;
    this.#maxIncoming = limits.maxMessageBytes;
    this.#window = Math.max(limits.initialWindow, limits.receiveWindow ?? limits.initialWindow);
  }

  /**
   * Caps the messages this stream accepts from now on (never above the link's
   * own limit): a larger one closes the stream with 1009 as its chunks
   * arrive, before it is reassembled. A gateway sets its pre-auth cap here.
   */
  limitIncoming(bytes: number): void {
    this.#maxIncoming = Math.min(Math.max(0, bytes), this.#limits.maxMessageBytes);
  }

  get open(): boolean {
    return this.#state === "open";
  }
  get queuedBytes(): number {
    return this.#queuedBytes;
  }
  get sendCredit(): number {
    return this.#sendCredit;
  }
  /** Bytes held for the consumer (reassembly and unreleased), for stats and tests. */
  get heldBytes(): number {
    return this.#outstanding;
  }
  get aboveHighWater(): boolean {
    return this.#queuedBytes > this.#limits.highWaterBytes;
  }

  accept(info: AcceptInfo = {}): void {
    if (this.#state !== "open") return;
    this.#host.sendFrame(encodeAccept(this.id, info));
  }

  /**
   * Queues a message; returns false when the caller should pause its source.
   * `binary`: false sends bytes as a text message (UTF-8 the caller has
   * already checked, e.g. a WebSocket text frame), without decoding them.
   */
  sendMessage(data: string | Uint8Array, binary = typeof data !== "string"): boolean {
    if (this.#state !== "open") return false;
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    if (bytes.length > this.#limits.maxMessageBytes) {
      this.#fail(1009, `message of ${bytes.length} bytes exceeds the ${this.#limits.maxMessageBytes}-byte limit`);
      return false;
    }
    return this.#enqueue(bytes, binary, true);
  }

  /**
   * Queues one piece of a message as it arrives (`fin` on its last), so a
   * large message goes on before its end is in; the size limit counts the
   * whole message. A message's pieces must not be interleaved with another
   * message. Returns false when the caller should pause its source.
   */
  sendChunk(chunk: Uint8Array, binary: boolean, fin: boolean): boolean {
    if (this.#state !== "open") return false;
    this.#chunkedBytes += chunk.length;
    if (this.#chunkedBytes > this.#limits.maxMessageBytes) {
      this.#fail(1009, `message exceeds the ${this.#limits.maxMessageBytes}-byte limit`);
      return false;
    }
    if (fin) this.#chunkedBytes = 0;
    else if (chunk.length === 0) return this.#queuedBytes <= this.#limits.highWaterBytes;
    return this.#enqueue(chunk, binary, fin);
  }

  #enqueue(bytes: Uint8Array, binary: boolean, fin: boolean): boolean {
    this.#queue.push({ data: bytes, offset: 0, binary, fin });
    this.#queuedBytes += bytes.length;
    if (this.#queuedBytes > this.#limits.maxQueuedBytes) {
      this.#fail(1008, "send buffer limit exceeded: the peer is not reading fast enough");
      return false;
    }
    this.#pump();
    const below = this.#queuedBytes <= this.#limits.highWaterBytes;
    if (!below) this.#wasAboveHighWater = true;
    return below;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as Outgoing;
      const remaining = head.data.length - head.offset;
      if (remaining > 0 && this.#sendCredit <= 0) break;
      const n = Math.min(remaining, this.#limits.chunkBytes, this.#sendCredit);
      const last = n === remaining;
      const fin = last && head.fin;
      const chunk = head.data.subarray(head.offset, head.offset + n);
      // State first: a transport that answers synchronously (credit back inside sendFrame) re-enters #pump.
      head.offset += n;
      this.#sendCredit -= n;
      this.#queuedBytes -= n;
      if (last) this.#queue.shift();
      this.#host.sendData(this.id, chunk, head.binary, fin);
      if (this.#state === "closed") return;
    }
    if (this.#wasAboveHighWater && this.#queuedBytes <= this.#limits.highWaterBytes / 2) {
      this.#wasAboveHighWater = false;
      this.onDrain();
    }
    if (this.#queue.length === 0 && this.#closeAfterFlush) {
      const { code, reason } = this.#closeAfterFlush;
      this.#closeAfterFlush = undefined;
      this.#finish(code, reason, true, false);
    }
  }

  /** Closes the stream after queued messages are sent (they still need credit). */
  close(code: number, reason = ""): void {
    if (this.#state !== "open") return;
    if (this.#queue.length === 0) {
      this.#finish(code, reason, true, false);
      return;
    }
    this.#state = "closing";
    this.#closeAfterFlush = { code, reason };
  }

  /** Closes at once, dropping anything queued. */
  abort(code: number, reason = ""): void {
    if (this.#state === "closed") return;
    this.#finish(code, reason, true, false);
  }

  #fail(code: number, reason: string): void {
    this.#finish(code, reason, true, true);
  }

  #finish(code: number, reason: string, sendClose: boolean, notify: boolean): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#chunkedBytes = 0;
    this.#parts = [];
    this.#partsBytes = 0;
    if (sendClose) this.#host.sendFrame(encodeClose(this.id, code, reason));
    this.#host.remove(this.id);
    if (notify) this.onClose(code, reason);
  }

  // ---- from the mux ----

  /** @internal */
  handleData(binary: boolean, fin: boolean, data: Uint8Array): void {
    if (this.#state === "closed") return;
    this.#outstanding += data.length;
    if (this.#outstanding > this.#window) {
      this.#fail(1008, "link protocol: credit exceeded");
      return;
    }
    this.#ungranted += data.length;
    if (this.#partsBytes + data.length > this.#maxIncoming) {
      this.#fail(1009, `message exceeds the ${this.#maxIncoming}-byte limit`);
      return;
    }
    // A message that began whole (onChunk set since) is finished whole.
    if (this.onChunk && this.#parts.length === 0) return this.#handleChunk(binary, fin, data);
    if (!fin) {
      if (this.#parts.length === 0) this.#partsBinary = binary;
      // A view, not a copy: what the mux hands in is a fresh receive buffer that nothing writes to again.
      this.#parts.push(data);
      this.#partsBytes += data.length;
      this.#maybeGrant();
      return;
    }
    let whole: Uint8Array;
    let isBinary = binary;
    if (this.#parts.length === 0) whole = data;
    else {
      isBinary = this.#partsBinary;
      whole = new Uint8Array(this.#partsBytes + data.length);
      let o = 0;
      for (const p of this.#parts) {
        whole.set(p, o);
        o += p.length;
      }
      whole.set(data, o);
      this.#parts = [];
      this.#partsBytes = 0;
    }
    let payload: string | Uint8Array = whole;
    if (!isBinary) {
      try {
        payload = dec.decode(whole);
      } catch {
        this.#fail(1007, "text message is not valid UTF-8");
        return;
      }
    }
    this.#unreleasedBytes += whole.length;
    let released = false;
    this.onMessage(
      payload,
      isBinary,
      () => {
        if (released) return;
        released = true;
        this.#unreleasedBytes -= whole.length;
        this.#maybeGrant();
      },
      whole.length,
    );
  }

  /** A chunk handed over as it is: the message's type is its first chunk's; the size limit still counts the whole. */
  #handleChunk(binary: boolean, fin: boolean, data: Uint8Array): void {
    if (!this.#midMessage) this.#partsBinary = binary;
    this.#partsBytes += data.length;
    this.#midMessage = !fin;
    const isBinary = this.#partsBinary;
    if (fin) this.#partsBytes = 0;
    this.#unreleasedBytes += data.length;
    let released = false;
    (this.onChunk as ChunkHandler)(data, isBinary, fin, () => {
      if (released) return;
      released = true;
      this.#unreleasedBytes -= data.length;
      this.#maybeGrant();
    });
  }

  /** Receiver: gives the peer the part of our receive window past the initial one (once, when the stream opens). */
  growWindow(): void {
    const extra = this.#window - this.#limits.initialWindow;
    if (this.#state !== "open" || extra <= 0 || this.#grown) return;
    this.#grown = true;
    this.#host.sendFrame(encodeCredit(this.id, extra));
  }

  /**
   * Grants back what the consumer no longer holds: received bytes minus those
   * of messages still unreleased (a pipelined stream keeps flowing while one
   * message is in flight; a stalled consumer stops the grants). Small grants
   * are batched unless the peer is running low.
   */
  #maybeGrant(): void {
    if (this.#state === "closed") return;
    const n = Math.min(this.#ungranted, this.#ungranted - this.#unreleasedBytes);
    if (n <= 0) return;
    if (n < this.#window / 4 && this.#outstanding < this.#window / 2) return;
    this.#ungranted -= n;
    this.#outstanding -= n;
    this.#host.sendFrame(encodeCredit(this.id, n));
  }

  /** Grants any held credit now (used when the consumer is idle, e.g. after a burst of small messages). */
  flushCredit(): void {
    if (this.#state === "closed") return;
    const n = this.#ungranted - this.#unreleasedBytes;
    if (n <= 0) return;
    this.#ungranted -= n;
    this.#outstanding -= n;
    this.#host.sendFrame(encodeCredit(this.id, n));
  }

  /** @internal */
  handleCredit(n: number): void {
    if (this.#state === "closed") return;
    this.#sendCredit = Math.min(this.#sendCredit + n, MAX_SEND_CREDIT);
    this.#pump();
  }

  /** @internal */
  handleAccept(info: AcceptInfo): void {
    if (this.#state !== "closed") this.onAccept(info);
  }

  /** @internal The peer closed, or the link is gone. */
  handleClose(code: number, reason: string): void {
    this.#finish(code, reason, false, true);
  }
}
