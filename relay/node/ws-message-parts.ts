/**
 * One binary WebSocket message written from two buffers, a link DATA frame's
 * head and its payload, without joining them. `ws.send` takes one buffer, so
 * joining would copy every chunk once more (and, at tens of MiB/s, the
 * garbage of those copies costs more than the copying: V8 runs a full
 * collection for every 64 MiB of buffers allocated).
 *
 * This writes through ws's Sender.sendFrame (ws 8: a corked write of the
 * frame header and the payload), the path ws.send itself ends in. Where ws
 * is not in a state to take it (not open, a send still being prepared) or
 * its internals differ, it falls back to ws.send of the joined bytes: the
 * same message, one copy more. A unit test fails if the fast path is lost.
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

/**
 * `masked`: this end is a WebSocket client created with an all-zero mask
 * (pinned-connect's zeroMask): the header carries the mask bit and a zero key,
 * and the payload goes as it is. A server end sends unmasked.
 */
export function sendMessageParts(ws: WebSocket, head: Uint8Array, payload: Uint8Array, masked: boolean): boolean {
  if (ws.readyState !== OPEN) return false;
  const sender = (ws as unknown as { _sender?: SenderInternals })._sender;
  if (!sender || sender._state !== SENDER_IDLE || typeof sender.sendFrame !== "function") {
    ws.send(Buffer.concat([head, payload]));
    return false;
  }
  const len = head.length + payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const keyAt = 2 + ext;
  const headAt = keyAt + (masked ? 4 : 0);
  // A small message goes as one buffer (from Node's pool): one plain write costs less than a corked pair.
  const joined = payload.length <= JOIN_BELOW;
  const buf = Buffer.allocUnsafe(headAt + head.length + (joined ? payload.length : 0));
  buf[0] = 0x82; // FIN, binary
  if (ext === 0) buf[1] = len;
  else if (ext === 2) {
    buf[1] = 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(0, 2);
    buf.writeUInt32BE(len, 6);
  }
  if (masked) {
    buf[1] = (buf[1] as number) | 0x80;
    buf.fill(0, keyAt, headAt);
  }
  buf.set(head, headAt);
  if (joined) buf.set(payload, headAt + head.length);
  sender.sendFrame.call(sender, joined ? [buf] : [buf, payload]);
  return true;
}
