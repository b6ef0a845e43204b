/**
 * Identity from a proxy in front of the gateway, trusted only as far as it
 * can be checked:
 * - Tailscale Serve (gateway.auth.allowTailscale): the connection arrives on
 *   loopback with `Tailscale-User-Login` and `X-Forwarded-For`, is not a
 *   relayed one, and `tailscale whois` for the forwarded address names the
 *   same login. Anything less is ignored.
 * - trusted-proxy mode: the TCP peer is one of the configured proxy
 *   addresses, the required headers are present, and the user header names
 *   an allowed user.
 */
import { execFile } from "node:child_process";
import type { IncomingHttpHeaders } from "node:http";
import { classifyIp, normalizeAddr } from "../../shared/url-safety.ts";
import { lastForwardedFor, type ProxyIdentity } from "./peer.ts";
import { CLIENT_TOKEN_HEADER, RELAY_HEADER } from "../../shared/http-headers.ts";
import { setBounded } from "../../shared/bounded-map.ts";

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

type Whois = (addr: string) => Promise<string | undefined>;

const cache = new Map<string, { login: string | undefined; at: number }>();

/** `tailscale whois --json ADDR` → the login name, or undefined (not a tailnet peer, no tailscale, error). */
export function tailscaleWhois(bin = process.env.LOOPGATE_TAILSCALE_BIN ?? "tailscale"): Whois {
  return (addr) => {
    const hit = cache.get(addr);
    if (hit && Date.now() - hit.at < 30_000) return Promise.resolve(hit.login);
    return new Promise((resolve) => {
      execFile(bin, ["whois", "--json", addr], { timeout: 3000, maxBuffer: 256 * 1024 }, (err, stdout) => {
        let login: string | undefined;
        if (!err) {
          try {
            const j = JSON.parse(String(stdout)) as { UserProfile?: { LoginName?: unknown } };
            if (typeof j.UserProfile?.LoginName === "string") login = j.UserProfile.LoginName;
          } catch {
            login = undefined;
          }
        }
        setBounded(cache, addr, { login, at: Date.now() }, 1000);
        resolve(login);
      });
    });
  };
}

/** A Tailscale Serve identity, confirmed by whois; undefined when anything does not check out. */
export async function tailscaleIdentity(
  remoteAddress: string | undefined,
  headers: IncomingHttpHeaders,
  whois: Whois = tailscaleWhois(),
): Promise<ProxyIdentity | undefined> {
  if (classifyIp(normalizeAddr(remoteAddress)) !== "loopback") return undefined;
  // The relay's link also connects from loopback: a relayed client never gets Serve's trust.
  if (header(headers, RELAY_HEADER) !== undefined || header(headers, CLIENT_TOKEN_HEADER) !== undefined)
    return undefined;
  const login = header(headers, "tailscale-user-login");
  const addr = lastForwardedFor(header(headers, "x-forwarded-for"));
  if (!login || !addr || login.length > 320) return undefined;
  const confirmed = await whois(addr);
  return confirmed !== undefined && confirmed === login ? { user: login, via: "tailscale" } : undefined;
}

export interface TrustedProxyConfig {
  userHeader: string;
  requiredHeaders: string[];
  allowUsers: string[];
  proxies: string[];
}

/** An identity asserted by a configured proxy; undefined unless every rule holds. */
export function trustedProxyIdentity(
  remoteAddress: string | undefined,
  headers: IncomingHttpHeaders,
  cfg: TrustedProxyConfig,
): ProxyIdentity | undefined {
  if (!cfg.proxies.includes(normalizeAddr(remoteAddress))) return undefined;
  if (header(headers, RELAY_HEADER) !== undefined) return undefined;
  if (!cfg.requiredHeaders.every((h) => (header(headers, h) ?? "") !== "")) return undefined;
  const user = header(headers, cfg.userHeader)?.trim();
  if (!user || user.length > 320) return undefined;
  if (cfg.allowUsers.length > 0 && !cfg.allowUsers.includes(user)) return undefined;
  return { user, via: "trusted-proxy" };
}
