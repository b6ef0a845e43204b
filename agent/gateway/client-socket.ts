/**
 * What a gateway connection needs of its transport, and nothing more: send a
 * text frame, close with a code, see what is still buffered, and hear
 * messages and the end. Two transports implement it: a `ws` socket (direct
 * clients, `ssh -L`, proxies, the standalone link) here, and a link stream
 * (the gateway's own in-process link, agent/link/stream-socket.ts), which
 * hands a relayed client to the gateway with no loopback socket and no
 * second WebSocket encode/decode.
 */
import type { WebSocket, RawData } from "ws";

/** One whole message from the client. `text()` decodes (or returns) a text message; `bytes` is its size on the wire. */
export interface InboundMessage {
  binary: boolean;
  bytes: number;
  text(): string;
}

export interface ClientSocket {
  /** True while frames can still be sent. */
  readonly open: boolean;
  /** Bytes accepted by send() and not yet handed to the network (the slow-reader signal). */
  readonly bufferedAmount: number;
  send(text: string): void;
  /** Closes after what is already queued; may throw on a socket in a bad state (then call terminate). */
  close(code: number, reason: string): void;
  /** Drops the transport now. */
  terminate(): void;
  /**
   * Caps the size of the client's next messages at the transport, so an
   * oversize one is refused (1009) before it is buffered whole; false when the
   * transport cannot, and the caller must check `bytes` itself.
   */
  limitMessageBytes(bytes: number): boolean;
  onmessage: (m: InboundMessage) => void;
  /** The transport ended, whoever closed it. Fires once. */
  onclose: () => void;
  onerror: (err: Error) => void;
}

/** Raises ws's per-socket parser limit (ws has no public setter; guarded). */
function setReceiverMaxPayload(ws: WebSocket, bytes: number): boolean {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
  if (receiver && typeof receiver._maxPayload === "number") {
    receiver._maxPayload = bytes;
    return true;
  }
  return false;
}

function rawBytes(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).byteLength;
}

function rawText(data: RawData): string {
  return Array.isArray(data) ? Buffer.concat(data).toString("utf8") : data.toString("utf8");
}

/** A `ws` server-side socket as a ClientSocket. */
export function wsClientSocket(ws: WebSocket): ClientSocket {
  const socket: ClientSocket = {
    get open() {
      return ws.readyState === 1;
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    limitMessageBytes: (bytes) => setReceiverMaxPayload(ws, bytes),
    onmessage: () => {},
    onclose: () => {},
    onerror: () => {},
  };
  ws.on("message", (data, isBinary) =>
    socket.onmessage({ binary: isBinary, bytes: rawBytes(data), text: () => rawText(data) }),
  );
  ws.on("close", () => socket.onclose());
  ws.on("error", (err) => socket.onerror(err));
  return socket;
}
