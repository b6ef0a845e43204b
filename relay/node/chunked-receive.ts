/**
 * A WebSocket's incoming data frames handed over as they arrive, not as
 * whole messages. ws's Receiver holds every frame until its last byte is in
 * and every message until its last frame. At the relay's public edge that
 * let any client make the relay hold a message up to the size limit per
 * stream, whatever the host's credit (four clients sending 24 MiB each into
 * a host that did not read: ~195 MiB); read in pieces, a message goes on as
 * credit allows and the relay stops reading past its per-stream buffer. The
 * standalone link reads its gateway's replies the same way.
 *
 * Here ws still parses each frame's header, checks opcodes, the mask rule,
 * reserved bits and the message size limit, and handles control frames and
 * the close handshake; only the payload of a data frame is taken over: each
 * piece, as soon as `minChunkBytes` of it (or the frame's rest) is in, goes
 * to the sink unmasked, as a view of the socket's read buffer, with `fin`
 * on the message's last byte. Text is passed on as its bytes, unchecked:
 * the peer it is forwarded to checks UTF-8 (the gateway's WebSocket, or the
 * link stream that reassembles it), as for the host's messages on the way
 * back (LinkStream.onChunk).
 *
 * This replaces one method of ws's Receiver (ws 8's getData, per socket) and
 * reads its parser state, the way frame-writer.ts uses ws's frame writer.
 * Where ws's internals differ, or for a compressed message, it leaves the
 * frame to ws and the caller gets whole messages as before; a unit test
 * fails if the fast path is lost.
 */
import { createRequire } from "node:module";
import type { WebSocket } from "ws";

/** One piece of a message: `fin` on its last (an empty piece can carry only that). */
export type ChunkSink = (chunk: Buffer, isBinary: boolean, fin: boolean) => void;

/** ws 8's Receiver state, as read and written here. */
interface ReceiverInternals {
  _opcode: number;
  _compressed: boolean;
  _fin: boolean;
  _masked: boolean;
  _mask: Buffer | undefined;
  _payloadLength: number;
  _bufferedBytes: number;
  _buffers: Buffer[];
  _totalPayloadLength: number;
  _messageLength: number;
  _fragmented: number;
  _numFragments: number;
  _maxFragments?: number;
  createError(kind: ErrorConstructor, message: string, prefix: boolean, status: number, code: string): Error;
  _allowSynchronousEvents: boolean;
  _loop: boolean;
  _state: number;
  _errored: boolean;
  consume(n: number): Buffer;
  getData(cb: (err?: Error) => void): void;
  [CHUNKED]?: ChunkState;
}

/** ws 8's parser state that reads the next frame's first bytes. */
const GET_INFO = 0;
/** Close, ping and pong: ws handles those (they are small and whole by protocol). */
const FIRST_CONTROL_OPCODE = 0x08;

const CHUNKED = Symbol("loopgate.chunkedReceive");
const EMPTY = Buffer.alloc(0);

interface ChunkState {
  sink: ChunkSink;
  minChunkBytes: number;
  /** Payload bytes of the current frame already handed over (the mask key's phase). */
  done: number;
  /** The current frame was counted against ws's fragment limit. */
  counted: boolean;
}

/** Below this, a piece of a frame waits for more of it: a peer trickling bytes gets no frame per byte. */
export const DEFAULT_MIN_CHUNK_BYTES = 8 * 1024;

/** ws's own getData (its Receiver's prototype's), found on the first socket. */
let wsGetData: ReceiverInternals["getData"] | undefined;

const unmaskNative = ((): ((buf: Buffer, mask: Buffer) => void) | undefined => {
  if (process.env.WS_NO_BUFFER_UTIL) return undefined;
  try {
    const bu = createRequire(import.meta.url)("bufferutil") as { unmask?: (buf: Buffer, mask: Buffer) => void };
    return typeof bu.unmask === "function" ? bu.unmask : undefined;
  } catch {
    return undefined;
  }
})();

/** XORs `buf` with the frame's mask key, `phase` payload bytes into the frame. */
export function unmaskAt(buf: Buffer, mask: Buffer, phase: number): void {
  const p = phase & 3;
  const key =
    p === 0
      ? mask
      : Buffer.from([
          mask[p] as number,
          mask[(p + 1) & 3] as number,
          mask[(p + 2) & 3] as number,
          mask[(p + 3) & 3] as number,
        ]);
  if (unmaskNative && buf.length >= 32) {
    unmaskNative(buf, key);
    return;
  }
  for (let i = 0; i < buf.length; i++) buf[i] = (buf[i] as number) ^ (key[i & 3] as number);
}

/**
 * From now on `ws` hands its data frames to `sink` piece by piece and emits
 * no 'message' for them. Call it before any data is read (in the upgrade's
 * callback or on 'open'). Returns false, changing nothing, where ws's
 * internals are not the ones this was written for: the caller then listens
 * for 'message' as usual.
 */
export function receiveInChunks(ws: WebSocket, sink: ChunkSink, minChunkBytes = DEFAULT_MIN_CHUNK_BYTES): boolean {
  const r = (ws as unknown as { _receiver?: ReceiverInternals })._receiver;
  if (
    !r ||
    Object.hasOwn(r, "getData") ||
    typeof r.getData !== "function" ||
    (wsGetData !== undefined && r.getData !== wsGetData) ||
    typeof r.consume !== "function" ||
    !Array.isArray(r._buffers) ||
    r._state !== GET_INFO ||
    typeof r._payloadLength !== "number" ||
    typeof r._totalPayloadLength !== "number" ||
    !r._allowSynchronousEvents ||
    typeof r.createError !== "function"
  )
    return false;
  wsGetData ??= r.getData;
  r[CHUNKED] = { sink, minChunkBytes: Math.max(1, minChunkBytes), done: 0, counted: false };
  r.getData = getDataInChunks;
  return true;
}

/** ws's getData for one socket: data frames' payloads go to the sink as they come; the rest is ws's. */
function getDataInChunks(this: ReceiverInternals, cb: (err?: Error) => void): void {
  const s = this[CHUNKED] as ChunkState;
  if (this._opcode >= FIRST_CONTROL_OPCODE || this._compressed)
    return (wsGetData as ReceiverInternals["getData"]).call(this, cb);
  if (!s.counted) {
    s.counted = true;
    // ws's limit on frames per message (16,384 on a server), checked where ws checks it.
    const max = this._maxFragments ?? 0;
    if (max > 0 && ++this._numFragments > max) {
      cb(this.createError(RangeError, "Too many message fragments", false, 1008, "WS_ERR_TOO_MANY_BUFFERED_PARTS"));
      return;
    }
  }
  const isBinary = this._opcode === 2;
  let left = this._payloadLength;
  if (left === 0) {
    // An empty frame: only a message's end is worth passing on.
    const fin = this._fin;
    endFrame(this, s);
    if (fin) s.sink(EMPTY, isBinary, true);
    return;
  }
  if (this._bufferedBytes < left && this._bufferedBytes < s.minChunkBytes) {
    this._loop = false;
    return;
  }
  const mask = this._mask;
  const masked = this._masked && mask !== undefined && mask.readUInt32LE(0) !== 0;
  while (left > 0 && this._bufferedBytes > 0) {
    // Never more than the first buffered read: ws's consume returns a view of it, not a copy.
    const n = Math.min(left, (this._buffers[0] as Buffer).length);
    const piece = this.consume(n);
    if (masked) unmaskAt(piece, mask, s.done);
    s.done += n;
    left -= n;
    this._payloadLength = left;
    const fin = left === 0 && this._fin;
    if (left === 0) endFrame(this, s);
    s.sink(piece, isBinary, fin);
    if (this._errored) return;
  }
  // The rest of this frame has not arrived yet: ws reads on and calls again.
  if (left > 0) this._loop = false;
}

/** The frame's payload is all handed over: ws reads the next frame's header. */
function endFrame(r: ReceiverInternals, s: ChunkState): void {
  s.done = 0;
  s.counted = false;
  // The key is a view of a read buffer; holding it would pin that buffer until the next frame.
  r._mask = undefined;
  if (r._fin) {
    // What ws's dataMessage resets at a message's end (nothing was collected in _fragments).
    r._totalPayloadLength = 0;
    r._messageLength = 0;
    r._fragmented = 0;
    r._numFragments = 0;
  }
  r._state = GET_INFO;
}
