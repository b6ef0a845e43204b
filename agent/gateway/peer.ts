/**
 * Who is on the other end of a gateway connection. A connection is local
 * only when its TCP peer is loopback and it carries no forwarding headers:
 * anything that came through the relay link or a proxy is forwarded, and its
 * client address is taken from the forwarding headers only when the TCP peer
 * is a trusted proxy (loopback, or one of gateway.trustedProxies).
 *
 * A client handed over by the gateway's own in-process link has no TCP peer
 * at all: `linkedPeerInfo` makes it forwarded and never local by
 * construction, from the headers the link itself set (agent/link/upstream-request.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import { classifyIp, normalizeAddr } from "../../shared/url-safety.ts";
import { CLIENT_TOKEN_HEADER, RELAY_HEADER } from "../../shared/http-headers.ts";

/** Who a proxy says the client is, after its checks passed (identity-proxy.ts). */
export interface ProxyIdentity {
  user: string;
  via: "tailscale" | "trusted-proxy";
}

/** What the gateway knows of a connection's peer before it authenticates. */
export interface PeerInfo {
  /** The TCP peer. */
  remoteAddr: string;
  /** The address the gateway attributes the connection to (the real client when forwarded by a trusted proxy/relay). */
  clientAddr: string;
  /** True when the connection came through the relay link or a proxy (forwarding headers present). */
  forwarded: boolean;
  /** True only for a direct loopback peer with no forwarding headers. */
  local: boolean;
  origin: string | undefined;
  userAgent: string | undefined;
  /** The client token the relay verified, passed on by the link (browsers on the relay have no other). */
  edgeToken?: string | undefined;
  /** The relay host the client used (X-Forwarded-Host from the link). */
  relayHost?: string;
  /** A proxy-asserted identity that passed its checks (Tailscale Serve + whois, or a trusted proxy). */
  proxyIdentity?: ProxyIdentity | undefined;
}

export const FORWARDING_HEADERS = [
  "x-forwarded-for",
  "forwarded",
  "x-real-ip",
  RELAY_HEADER,
  "tailscale-user-login",
] as const;

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The rightmost X-Forwarded-For entry: the address the nearest (trusted) proxy saw. */
export function lastForwardedFor(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const parts = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const last = parts[parts.length - 1];
  if (last === undefined) return undefined;
  const bare = last.startsWith("[")
    ? last.slice(1, last.indexOf("]"))
    : last.includes(".") && last.includes(":")
      ? last.slice(0, last.lastIndexOf(":"))
      : last;
  return classifyIp(bare) !== undefined ? bare : undefined;
}

export function peerInfo(
  remoteAddress: string | undefined,
  headers: IncomingHttpHeaders,
  trustedProxies: readonly string[],
): PeerInfo {
  const remoteAddr = normalizeAddr(remoteAddress);
  const loopbackPeer = classifyIp(remoteAddr) === "loopback";
  const forwarded = FORWARDING_HEADERS.some((n) => header(headers, n) !== undefined);
  const trusted = loopbackPeer || trustedProxies.includes(remoteAddr);
  let clientAddr = remoteAddr;
  if (forwarded && trusted) {
    clientAddr = lastForwardedFor(header(headers, "x-forwarded-for")) ?? header(headers, "x-real-ip") ?? remoteAddr;
  }
  return {
    remoteAddr,
    clientAddr,
    forwarded,
    local: loopbackPeer && !forwarded,
    // Set by a link (which connects from loopback) for relayed clients; the gateway still verifies the token.
    ...(loopbackPeer ? linkClaims(headers) : {}),
    origin: header(headers, "origin"),
    userAgent: header(headers, "user-agent"),
  };
}

/** What a link says of its relayed client: the token the relay verified (checked again in connect) and the relay host it used. */
function linkClaims(headers: IncomingHttpHeaders): Pick<PeerInfo, "edgeToken" | "relayHost"> {
  const edge = header(headers, CLIENT_TOKEN_HEADER);
  const relayHost = header(headers, "x-forwarded-host");
  return {
    ...(edge && edge.length <= 8192 ? { edgeToken: edge } : {}),
    ...(header(headers, RELAY_HEADER) === "1" && relayHost ? { relayHost: relayHost.slice(0, 255) } : {}),
  };
}

/** The `remoteAddr` of a client that came in over the gateway's own link: no socket, no address. */
export const LINK_PEER = "relay-link";

/**
 * A client relayed by the gateway's own link: forwarded and not local,
 * whatever the headers say; the client address is the relay's claim from the
 * OPEN (an IP address or "unknown"), for rate limits and logs only. `headers`
 * are the ones the link built for this stream (upstreamRequest), so the relay
 * cannot set x-loopgate-relay, x-forwarded-for or -proto itself.
 */
export function linkedPeerInfo(
  headers: Readonly<Record<string, string>>,
): PeerInfo & { forwarded: true; local: false } {
  return {
    remoteAddr: LINK_PEER,
    clientAddr: lastForwardedFor(headers["x-forwarded-for"]) ?? "unknown",
    forwarded: true,
    local: false,
    ...linkClaims(headers),
    origin: headers["origin"],
    userAgent: headers["user-agent"],
  };
}
