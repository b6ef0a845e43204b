/**
 * A relayed client's link stream as the gateway's ClientSocket: how the
 * gateway's own in-process link hands a client straight to the gateway, with
 * no loopback socket and no second WebSocket encode/decode. Messages arrive
 * whole and already UTF-8 checked (the stream reassembles them); what the
 * gateway sends waits for the stream's credit, and what waits is the
 * connection's bufferedAmount.
 */
import type { LinkStream } from "../../shared/link/stream.ts";
import type { ClientSocket } from "../gateway/client-socket.ts";

export function linkStreamSocket(stream: LinkStream): ClientSocket {
  let ended = false;
  let closing: { code: number; reason: string } | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    socket.onclose();
  };
  const socket: ClientSocket = {
    get open() {
      return stream.open;
    },
    get bufferedAmount() {
      return stream.queuedBytes;
    },
    // The stream's own limits close it (1008) if the client never reads; the gateway's slow-reader checks use bufferedAmount.
    send: (text) => void stream.sendMessage(text),
    close: (code, reason) => {
      closing ??= { code, reason };
      // Sent after what is queued; the connection is gone for the gateway at once, as with a ws close.
      stream.close(code, reason);
      queueMicrotask(end);
    },
    // A close still waiting for credit is cut short with the code it meant to send.
    terminate: () => {
      stream.abort(closing?.code ?? 1011, closing?.reason ?? "gateway dropped the connection");
      queueMicrotask(end);
    },
    limitMessageBytes: (bytes) => {
      stream.limitIncoming(bytes);
      return true;
    },
    onmessage: () => {},
    onclose: () => {},
    onerror: () => {},
  };
  stream.onMessage = (data, isBinary, release, bytes) => {
    // Handed over whole: the gateway parses at once, so credit goes back at once (as a ws socket keeps reading).
    release();
    socket.onmessage({
      binary: isBinary,
      bytes,
      text: () => (typeof data === "string" ? data : new TextDecoder().decode(data)),
    });
  };
  // Peer CLOSE, a stream limit, or the link lost.
  stream.onClose = () => end();
  return socket;
}
