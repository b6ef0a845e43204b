/**
 * WebSocket data frames written by us, through ws's own frame writer, from
 * one or two buffers: a link DATA frame's head and its payload go out as one
 * message without being joined, and small frames go out as one pooled buffer
 * in one plain write. `ws.send` takes one buffer (so a link frame would be
 * copied once more) and always writes header and payload as a corked pair
 * (a writev, even for a 60-byte message). At tens of MiB/s the garbage of
 * those copies costs more than the copying: V8 runs a full collection for
 * every few tens of MiB of buffers allocated.
 *
 * This goes through ws's Sender.sendFrame (ws 8), the call ws.send itself
 * ends in, so ws's close handshake, pings and bufferedAmount work as before.
 * It needs ws's Sender idle (no permessage-deflate, no Blob sends: loopgate
 * uses neither); where ws's internals differ it falls back to ws.send, and a
 * unit test fails if the fast path is lost.
 */
import type { WebSocket } from "ws";

interface SenderInternals {
  _state?: unknown;
  sendFrame?: (list: Uint8Array[], cb?: (err?: Error) => void) => void;
}

/** ws's Sender state when nothing is queued ahead (ws 8: DEFAULT = 0). */
const SENDER_IDLE = 0;
const OPEN = 1;
/** Payloads up to this size are copied behind the header and written once (Node pools buffers under 4 KiB). */
const JOIN_BELOW = 2048;

type Done = (err?: Error | null) => void;
const EMPTY = new Uint8Array(0);

/**
 * Data frames for one socket. `masked`: this end is a WebSocket client made
 * with an all-zero mask (pinned-connect's zeroMask): the header carries the
 * mask bit and a zero key, and the payload goes as it is. A server end sends
 * unmasked. All of a socket's data frames must go through its writer (it
 * keeps the fragment state: continuation frames after a message's first).
 */
export class FrameWriter {
  readonly #ws: WebSocket;
  readonly #masked: boolean;
  readonly #sender: SenderInternals | undefined;
  /** Inside a fragmented message: the next frame is a continuation. */
  #mid = false;

  constructor(ws: WebSocket, masked: boolean) {
    this.#ws = ws;
    this.#masked = masked;
    const sender = (ws as unknown as { _sender?: SenderInternals })._sender;
    this.#sender = sender && typeof sender.sendFrame === "function" && "_state" in sender ? sender : undefined;
  }

  /** True when frames go through ws's frame writer (not the ws.send fallback). */
  get direct(): boolean {
    return this.#sender !== undefined;
  }

  /** One whole binary message from a head and a payload, unjoined (the link's DATA frames). */
  writeParts(head: Uint8Array, payload: Uint8Array): void {
    this.#write(head, payload, true, true);
  }

  /**
   * One frame of a message (`fin` on its last); a string goes as its UTF-8.
   * `done` runs once the bytes left this process, or with an error if the
   * socket is not open.
   */
  writeFrame(data: string | Uint8Array, isBinary: boolean, fin: boolean, done?: Done): void {
    this.#write(EMPTY, typeof data === "string" ? Buffer.from(data) : data, isBinary, fin, done);
  }

  #write(head: Uint8Array, payload: Uint8Array, isBinary: boolean, fin: boolean, done?: Done): void {
    const ws = this.#ws;
    if (ws.readyState !== OPEN) {
      if (done) process.nextTick(done, new Error("WebSocket is not open"));
      return;
    }
    const sender = this.#sender;
    // Without ws's writer every frame goes through ws.send, which then keeps the fragment state itself.
    // A busy writer (not possible here: see the module comment) may only queue whole messages behind it.
    if (!sender || (sender._state !== SENDER_IDLE && !this.#mid && fin)) {
      const data = head.length === 0 ? payload : Buffer.concat([head, payload]);
      ws.send(data, { binary: isBinary, fin }, done);
      return;
    }
    const len = head.length + payload.length;
    const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
    const keyAt = 2 + ext;
    const headAt = keyAt + (this.#masked ? 4 : 0);
    const joined = payload.length <= JOIN_BELOW;
    const buf = Buffer.allocUnsafe(headAt + head.length + (joined ? payload.length : 0));
    buf[0] = (fin ? 0x80 : 0) | (this.#mid ? 0 : isBinary ? 2 : 1);
    this.#mid = !fin;
    if (ext === 0) buf[1] = len;
    else if (ext === 2) {
      buf[1] = 126;
      buf.writeUInt16BE(len, 2);
    } else {
      buf[1] = 127;
      buf.writeUInt32BE(0, 2);
      buf.writeUInt32BE(len, 6);
    }
    if (this.#masked) {
      buf[1] = (buf[1] as number) | 0x80;
      buf.fill(0, keyAt, headAt);
    }
    buf.set(head, headAt);
    if (joined) buf.set(payload, headAt + head.length);
    sender.sendFrame?.call(sender, joined ? [buf] : [buf, payload], done);
  }
}
