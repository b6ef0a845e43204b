/**
 * What both relay adapters (relay/node/server.ts, relay/workers/worker.ts)
 * do with a host's hub once the app has checked a request: refuse it when
 * the host has no link or is over a cap, or hand it to the hub. Each adapter
 * keeps only its runtime's socket work.
 */
import type { OpenMeta } from "../../shared/link/codec.ts";
import { passThroughInit } from "./host-origin.ts";
import { HOST_OFFLINE, type HostHub } from "./hub.ts";
import type { RelayMetrics } from "./metrics.ts";

/**
 * Runs `go` with the host's hub when the request may reach it; otherwise the
 * refusal (counted): 503 when no link is up (also when this relay never had
 * one for the host), 429 over a per-token or per-address cap.
 */
export function whenAdmitted<T extends Response | Promise<Response>>(
  hub: HostHub | undefined,
  meta: OpenMeta,
  metrics: RelayMetrics,
  go: (hub: HostHub) => T,
): T | Response {
  let no: { status: number; text: string } | undefined;
  if (!hub) {
    metrics.refused("host_offline");
    no = { status: 503, text: `${HOST_OFFLINE}\n` };
  } else no = hub.admission(meta);
  if (no || !hub)
    return new Response(no?.text ?? "", {
      status: no?.status ?? 503,
      headers: { "content-type": "text/plain; charset=UTF-8" },
    });
  return go(hub);
}

/**
 * One HTTP request through the hub, as a Response whose body streams from
 * the host. Its headers are filtered by the app (hostResponse in
 * host-origin.ts: hop-by-hop and origin-reaching headers never pass).
 */
export async function hubHttpResponse(
  hub: HostHub,
  method: string,
  meta: OpenMeta,
  body: Uint8Array | undefined,
): Promise<Response> {
  const reply = await hub.forwardHttp(meta, body);
  return new Response(
    method === "HEAD" ? null : reply.body,
    passThroughInit({ status: reply.status, headers: new Headers(reply.headers) }),
  );
}
