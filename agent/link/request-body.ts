/**
 * The body of a relayed HTTP request: exactly one message on its stream
 * (possibly empty). Settles either way: with the bytes, or with undefined
 * when the stream ends first, so a relay that opens requests and closes
 * them without a body leaves nothing waiting on the host.
 */
import type { LinkStream } from "../../shared/link/stream.ts";

export function requestBody(stream: LinkStream): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    stream.onMessage = (data, _binary, release) => {
      release();
      resolve(typeof data === "string" ? new TextEncoder().encode(data) : data);
    };
    stream.onClose = () => resolve(undefined);
  });
}
