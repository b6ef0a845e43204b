/**
 * One relayed HTTP request, answered by the gateway, its response streamed
 * back over the link byte for byte. The body streams with the stream's
 * credit: a slow client slows only its own response.
 *
 * Two ways to reach the gateway: over loopback with undici's `request` (the
 * standalone link, in front of any gateway), or inside loopgate's own
 * gateway (its in-process link), which runs the request through the
 * gateway's app directly, with no loopback socket and no second HTTP
 * encode/parse, and marks it relayed by construction. Neither decodes
 * anything: a brotli or gzip body goes back with its `content-encoding` and
 * its compressed bytes, as the gateway produced them.
 */
import { undici } from "../lazy-undici.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { requestBody } from "./request-body.ts";
import { isHopByHop } from "../../shared/http-headers.ts";
import type { GatewayHandle } from "../gateway/server.ts";

/** The local request a stream stands for (the connector decides URL and headers). */
export interface LocalHttpRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
}

/** What the gateway answered: status, end-to-end headers, and the body (none for HEAD). */
export interface LocalHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array> | undefined;
  /** Stops reading the body (the client went away). */
  cancel(): void;
}

/** Sends the request to the gateway. */
export type LocalHttpSend = (
  req: LocalHttpRequest,
  body: Uint8Array | undefined,
  signal: AbortSignal,
) => Promise<LocalHttpResponse>;

/** Hop-by-hop headers describe the connection the response came on, not the response. */
function endToEnd(entries: Iterable<[string, string | string[] | undefined]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (v === undefined || isHopByHop(k)) continue;
    const value = Array.isArray(v) ? v.join(", ") : v;
    out[k] = out[k] === undefined ? value : `${out[k]}, ${value}`;
  }
  return out;
}

/** Over loopback, with undici's `request` (not `fetch`: nothing is decoded on the way). */
export const viaLoopback: LocalHttpSend = async (req, body, signal) => {
  const { request } = await undici();
  const res = await request(req.url, {
    method: req.method,
    headers: req.headers,
    ...(body ? { body } : {}),
    signal,
  });
  return {
    status: res.statusCode,
    headers: endToEnd(Object.entries(res.headers)),
    body: req.method === "HEAD" ? undefined : (res.body as AsyncIterable<Uint8Array>),
    cancel: () => res.body.destroy(),
  };
};

/** Inside loopgate's own gateway: its app answers the request directly (GatewayHandle.fetchLinked). */
export function viaGateway(gateway: Pick<GatewayHandle, "fetchLinked">): LocalHttpSend {
  return async (req, body, signal) => {
    // The Host a loopback request would carry: the gateway checks it as for any request.
    const headers = new Headers(req.headers);
    if (!headers.has("host")) headers.set("host", req.url.host);
    const res = await gateway.fetchLinked(
      new Request(req.url, {
        method: req.method,
        headers,
        ...(body ? { body: body as Uint8Array<ArrayBuffer> } : {}),
        signal,
      }),
      req.headers,
    );
    const reader = req.method === "HEAD" ? undefined : res.body?.getReader();
    if (!reader) void res.body?.cancel();
    return {
      status: res.status,
      headers: endToEnd(res.headers.entries()),
      body: reader && readAll(reader),
      cancel: () => void reader?.cancel().catch(() => {}),
    };
  };
}

async function* readAll(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncIterable<Uint8Array> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (value.length > 0) yield value;
  }
}

export async function forwardHttpStream(
  stream: LinkStream,
  req: LocalHttpRequest,
  send: LocalHttpSend = viaLoopback,
): Promise<void> {
  let body: Uint8Array | undefined;
  // A method's body comes over the link as exactly one message (possibly empty); GET and HEAD have none.
  if (req.method !== "GET" && req.method !== "HEAD") {
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
    const res = await send(req, body, ac.signal);
    stream.accept({ status: res.status, headers: res.headers });
    for await (const chunk of res.body ?? []) {
      if (!stream.open) break;
      if (!stream.sendMessage(chunk)) {
        await new Promise<void>((r) => {
          wake = r;
          stream.onDrain = r;
        });
      }
    }
    if (stream.open) stream.close(1000, "");
    else res.cancel();
  } catch {
    if (stream.open) stream.abort(1011, "gateway HTTP request failed on the host");
  }
}
