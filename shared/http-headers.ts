/**
 * HTTP header names and parsing that the relay and the host's agent must
 * agree on: loopgate's own header names, the hop-by-hop headers a forwarded
 * response never carries on, and reading a bearer token from Authorization.
 * One copy, so the two sides of the link cannot drift apart.
 */

/**
 * The relay-verified client token, as the relay forwards it to a host's
 * gateway (WebSocket streams) and as a client presents it to a relay (never
 * confused with the upstream's own Authorization).
 */
export const CLIENT_TOKEN_HEADER = "x-loopgate-client-token";

/** Set to "1" on every request that came through a relay; only the relay or the link sets it. */
export const RELAY_HEADER = "x-loopgate-relay";

/**
 * A client's request headers that a relay passes on to the host, and the
 * host's link on to its gateway: what a page or client needs understood,
 * never credentials or addressing (those travel under the names above).
 */
export const END_TO_END_REQUEST_HEADERS = [
  "origin",
  "user-agent",
  "accept",
  "accept-language",
  "content-type",
  "accept-encoding",
  "if-none-match",
  "if-modified-since",
  "cache-control",
] as const;

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy proxy-connection):
 * they describe one connection, never the message forwarded on another.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Is this (lower-case) header name hop-by-hop? */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP_HEADERS.has(name);
}

const BEARER = /^bearer\s+/i;

/**
 * The token of an `Authorization: Bearer <token>` value, trimmed ("" when the
 * scheme is there and the token is not); undefined when the value is absent
 * or uses another scheme.
 */
export function bearerToken(value: string | null | undefined): string | undefined {
  if (!value || !BEARER.test(value)) return undefined;
  return value.replace(BEARER, "").trim();
}
