/**
 * What the host's link turns one OPEN into: the local gateway URL, method and
 * headers. Pure, so the fuzz suite can drive it.
 *
 * The relay is not trusted to say who is local. Whatever forwarding headers
 * it sent are dropped and the connector sets its own: every stream it opens
 * carries `X-Loopgate-Relay: 1` and `X-Forwarded-For` (the client address
 * from the OPEN is only a claim, used for forwarding and rate limits, and
 * never makes a stream look local). Anything the local stack would refuse
 * throws a LoopgateError, which fails that one stream.
 */
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { OPEN_METHODS, type OpenMeta } from "../../shared/link/codec.ts";
import { classifyIp } from "../../shared/url-safety.ts";
import { decodeJwt } from "jose/jwt/decode";
import { CLIENT_TOKEN_HEADER, END_TO_END_REQUEST_HEADERS, RELAY_HEADER } from "../../shared/http-headers.ts";

/** Request headers the gateway may see from a relayed client (besides the ones the connector sets itself). */
const PASSED_HEADERS = new Set<string>([
  ...END_TO_END_REQUEST_HEADERS,
  "x-forwarded-host",
  "authorization",
  "cookie",
  CLIENT_TOKEN_HEADER,
]);

/** Headers only the connector sets: a relay's values for them are dropped. */
export const HOST_SET_HEADERS = [RELAY_HEADER, "x-forwarded-for", "x-forwarded-proto"] as const;

export interface UpstreamRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  protocols: string[];
}

function refuse(message: string): never {
  throw new LoopgateError(ErrorCodes.LINK_PROTOCOL, message);
}

/** The client address to forward: the relay's claim if it is an IP address, else "unknown" (never loopback trust either way). */
export function forwardedFor(clientAddr: string): string {
  return classifyIp(clientAddr) !== undefined ? clientAddr : "unknown";
}

/** True when a token (not verified here; the gateway does that) names `audience`. */
function namesAudience(token: string, audience: string): boolean {
  try {
    const aud = decodeJwt(token).aud;
    return Array.isArray(aud) ? aud.includes(audience) : aud === audience;
  } catch {
    return false;
  }
}

/**
 * The local request for an OPEN. With `relayAudience` (the relay this link
 * dialled), a relayed client token for any other relay is refused: a relay
 * cannot pass on tokens it was never meant to see.
 */
export function upstreamRequest(meta: OpenMeta, upstream: string, relayAudience?: string): UpstreamRequest {
  const url = new URL(upstream);
  if (meta.kind === "http") url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  const base = `${url.protocol}//${url.host}`;
  // Built as one string and parsed back: the path may not move the request to another origin.
  let target: URL;
  try {
    target = new URL(`${base}${meta.path}${meta.query ? `?${meta.query}` : ""}`);
  } catch {
    refuse("the OPEN's path is not a URL path");
  }
  if (target.host !== url.host || target.protocol !== url.protocol || target.username || target.password)
    refuse("the OPEN's path leaves the gateway");
  const method = meta.kind === "ws" ? "GET" : (meta.method ?? "GET");
  if (!OPEN_METHODS.includes(method)) refuse(`method ${method.slice(0, 16)} is not allowed`);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta.headers)) {
    if (!PASSED_HEADERS.has(k)) continue;
    // A WebSocket authenticates in `connect`; relay credentials stay at the relay.
    if (meta.kind === "ws" && (k === "authorization" || k === "cookie")) continue;
    if (k === CLIENT_TOKEN_HEADER && relayAudience !== undefined && !namesAudience(v, relayAudience))
      refuse("the client token is for another relay");
    headers[k] = v;
  }
  headers[RELAY_HEADER] = "1";
  headers["x-forwarded-for"] = forwardedFor(meta.clientAddr);
  headers["x-forwarded-proto"] = "https";
  return { url: target, method, headers, protocols: meta.protocols ?? [] };
}
