/**
 * One relayed HTTP request, replayed against the gateway on loopback, its
 * response streamed back over the link byte for byte. undici's `request`
 * (not `fetch`) so nothing is decoded on the way: a brotli or gzip body
 * arrives with its `content-encoding` and its compressed bytes, as the
 * upstream sent them. The body streams with the stream's credit: a slow
 * client slows only its own response.
 */
import { request } from "undici";
import type { LinkStream } from "../../shared/link/stream.ts";
import { requestBody } from "./request-body.ts";
import { isHopByHop } from "../../shared/http-headers.ts";

/** The local request a stream stands for (the connector decides URL and headers). */
export interface LocalHttpRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
}

export async function forwardHttpStream(stream: LinkStream, req: LocalHttpRequest): Promise<void> {
  const { url, method, headers } = req;
  let body: Uint8Array | undefined;
  // A method's body comes over the link as exactly one message (possibly empty); GET and HEAD have none.
  if (method !== "GET" && method !== "HEAD") {
    body = await requestBody(stream);
    if (body === undefined || !stream.open) return;
  }
  const ac = new AbortController();
  // A stream that ends while its response waits for credit must wake that wait, or the request lingers.
  let wake: (() => void) | undefined;
  stream.onClose = () => {
    ac.abort();
    wake?.();
  };
  try {
    const res = await request(url, { method, headers, ...(body ? { body } : {}), signal: ac.signal });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) {
      // Hop-by-hop headers describe the loopback connection, not the response.
      if (v === undefined || isHopByHop(k)) continue;
      out[k] = Array.isArray(v) ? v.join(", ") : v;
    }
    stream.accept({ status: res.statusCode, headers: out });
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (!stream.open) break;
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (!stream.sendMessage(bytes)) {
        await new Promise<void>((r) => {
          wake = r;
          stream.onDrain = r;
        });
      }
    }
    if (stream.open) stream.close(1000, "");
    else res.body.destroy();
  } catch {
    if (stream.open) stream.abort(1011, "gateway HTTP request failed on the host");
  }
}
