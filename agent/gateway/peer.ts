/**
 * Who is on the other end of a gateway connection. A connection is local
 * only when its TCP peer is loopback and it carries no forwarding headers:
 * anything that came through the relay link or a proxy is forwarded, and its
 * client address is taken from the forwarding headers only when the TCP peer
 * is a trusted proxy (loopback, or one of gateway.trustedProxies).
 */
import type { IncomingHttpHeaders } from "node:http";
import { classifyIp } from "../../shared/url-safety.ts";
import type { PeerInfo } from "./auth.ts";

export const FORWARDING_HEADERS = ["x-forwarded-for", "forwarded", "x-real-ip", "x-loopgate-relay", "tailscale-user-login"] as const;

export function normalizeAddr(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The rightmost X-Forwarded-For entry: the address the nearest (trusted) proxy saw. */
export function lastForwardedFor(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const parts = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const last = parts[parts.length - 1];
  if (last === undefined) return undefined;
  const bare = last.startsWith("[") ? last.slice(1, last.indexOf("]")) : last.includes(".") && last.includes(":") ? last.slice(0, last.lastIndexOf(":")) : last;
  return classifyIp(bare) !== undefined ? bare : undefined;
}

export function peerInfo(remoteAddress: string | undefined, headers: IncomingHttpHeaders, trustedProxies: readonly string[]): PeerInfo {
  const remoteAddr = normalizeAddr(remoteAddress);
  const loopbackPeer = classifyIp(remoteAddr) === "loopback";
  const forwarded = FORWARDING_HEADERS.some((n) => header(headers, n) !== undefined);
  const trusted = loopbackPeer || trustedProxies.includes(remoteAddr);
  let clientAddr = remoteAddr;
  if (forwarded && trusted) {
    clientAddr = lastForwardedFor(header(headers, "x-forwarded-for")) ?? header(headers, "x-real-ip") ?? remoteAddr;
  }
  const edge = header(headers, "x-loopgate-client-token");
  const relayHost = header(headers, "x-forwarded-host");
  return {
    remoteAddr,
    clientAddr,
    forwarded,
    local: loopbackPeer && !forwarded,
    // Set by the link (which connects from loopback) for relayed clients; the gateway still verifies the token.
    ...(loopbackPeer && edge && edge.length <= 8192 ? { edgeToken: edge } : {}),
    ...(loopbackPeer && header(headers, "x-loopgate-relay") === "1" && relayHost ? { relayHost: relayHost.slice(0, 255) } : {}),
    origin: header(headers, "origin"),
    userAgent: header(headers, "user-agent"),
  };
}
