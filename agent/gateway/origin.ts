/**
 * Who may address the gateway, by name (Host) and by web page (Origin).
 *
 * Host (every HTTP request and WebSocket upgrade): a loopback name
 * (`localhost`, `127.x.y.z`, `::1`), an address the gateway is bound to, a
 * name in `gateway.allowedHosts`, or (with gateway.auth.allowTailscale) a
 * `*.ts.net` name. Anything else is what a DNS-rebinding page sends (its own
 * name, now resolving to 127.0.0.1), and is refused. The port is not
 * compared: `ssh -L 9999:127.0.0.1:18789` makes clients send port 9999.
 *
 * `*.localhost` is NOT a loopback name here: browsers resolve it to loopback
 * without DNS, but the gateway never advertises such a name, and local
 * relays use `<host>.localhost` origins for content of *other* hosts, which
 * must never get a local client's trust. Add a name to gateway.allowedHosts
 * to use one.
 *
 * Origin (WebSocket upgrades; non-browser clients send none and pass):
 * - one of a fixed set: gateway.controlUi.allowedOrigins, the relay's origin
 *   (gateway.relay.url), `http://<allowed host>:<port>` for every bound
 *   address and loopback name, and http(s) origins of gateway.allowedHosts;
 * - a loopback origin on any port, for a direct loopback client (no
 *   forwarding headers): a page served from this machine's loopback, as
 *   OpenClaw allows (its Control UI on another port, a dev server);
 * - for a stream relayed by the link, the relay origin it names;
 * - the page's host equal to an allowed non-loopback Host it sent (the
 *   Control UI opened by its tailnet or configured name).
 * Never the Host header alone: a rebinding page's Origin matches its Host.
 */
import { networkInterfaces } from "node:os";
import { classifyIp, parseV6 } from "../../shared/url-safety.ts";

export const ALLOWED_HOSTS_KEY = "gateway.allowedHosts";
export const ALLOWED_ORIGINS_KEY = "gateway.controlUi.allowedOrigins";

export interface Refusal {
  code: "HOST_NOT_ALLOWED" | "ORIGIN_NOT_ALLOWED";
  /** What was refused, trimmed for logs (never a secret: Host and Origin carry none). */
  value: string;
  /** The config key that would allow it. */
  configKey: string;
  message: string;
}

export interface OriginPolicyInput {
  port: number;
  /** Addresses the gateway listens on; 0.0.0.0 / :: expand to every interface address. */
  boundAddresses: readonly string[];
  /** gateway.allowedHosts: extra names (optionally name:port) clients use for this gateway. */
  allowedHosts: readonly string[];
  /** gateway.controlUi.allowedOrigins plus the relay origin. */
  allowedOrigins: readonly string[];
  allowTailscale: boolean;
  /** Interface addresses (tests); default os.networkInterfaces(). */
  interfaceAddresses?: () => string[];
}

interface HostName {
  /** Lowercase, brackets removed, one trailing dot removed. */
  name: string;
  /** The port in the header, or undefined. */
  port: string | undefined;
}

const MAX_HEADER = 300;

/** Splits a Host header (name, name:port, [v6], [v6]:port); undefined when malformed. */
export function parseHostHeader(raw: string | undefined): HostName | undefined {
  if (raw === undefined) return undefined;
  const h = raw.trim().toLowerCase();
  if (h === "" || h.length > MAX_HEADER) return undefined;
  let name: string;
  let port: string | undefined;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0) return undefined;
    name = h.slice(1, end);
    const rest = h.slice(end + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
    port = rest === "" ? undefined : rest.slice(1);
    if (parseV6(name) === undefined) return undefined;
  } else {
    const colon = h.lastIndexOf(":");
    if (colon >= 0 && h.indexOf(":") !== colon) return undefined; // bare IPv6 is not a valid Host
    name = colon >= 0 ? h.slice(0, colon) : h;
    port = colon >= 0 ? h.slice(colon + 1) : undefined;
    if (port !== undefined && !/^\d{1,5}$/.test(port)) return undefined;
    if (!/^[a-z0-9._-]+$/.test(name)) return undefined;
  }
  if (name.endsWith(".") && !name.endsWith("..")) name = name.slice(0, -1);
  return name === "" ? undefined : { name, port };
}

/** localhost and loopback IP literals; `*.localhost` deliberately not (see above). */
export function isLoopbackName(name: string): boolean {
  return name === "localhost" || classifyIp(name) === "loopback";
}

function ipKey(addr: string): string {
  const v6 = parseV6(addr);
  if (v6) {
    // ::ffff:a.b.c.d is the same host as a.b.c.d
    if (v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff)
      return `${(v6[6] as number) >> 8}.${(v6[6] as number) & 0xff}.${(v6[7] as number) >> 8}.${(v6[7] as number) & 0xff}`;
    return v6.map((g) => g.toString(16)).join(":");
  }
  return addr.toLowerCase();
}

function allInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((a) => a?.address)
    .filter((a): a is string => typeof a === "string");
}

function trimForLog(v: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this strips from a logged header
  return v.replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 200);
}

/** Origin → "scheme://host[:port]" lowercased, or undefined when not a plain http(s) origin. */
function normalizeOrigin(
  raw: string,
): { origin: string; hostname: string; host: string; protocol: string } | undefined {
  const t = raw.trim();
  if (t === "" || t === "null" || t.length > MAX_HEADER) return undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#\\@]+\/?$/i.test(t)) return undefined;
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return {
    origin: `${u.protocol}//${u.host}`.toLowerCase(),
    hostname: hostname.toLowerCase(),
    host: u.host.toLowerCase(),
    protocol: u.protocol,
  };
}

export class OriginPolicy {
  readonly #ips = new Set<string>();
  readonly #names = new Set<string>();
  readonly #origins = new Set<string>();
  readonly #allowTailscale: boolean;

  constructor(input: OriginPolicyInput) {
    this.#allowTailscale = input.allowTailscale;
    const wildcard = input.boundAddresses.some((a) => a === "0.0.0.0" || a === "::");
    const bound = wildcard
      ? [...input.boundAddresses, ...(input.interfaceAddresses ?? allInterfaceAddresses)()]
      : [...input.boundAddresses];
    for (const a of bound) if (a !== "0.0.0.0" && a !== "::" && classifyIp(a) !== undefined) this.#ips.add(ipKey(a));
    const own = (host: string) => this.#origins.add(`http://${host}:${input.port}`.toLowerCase());
    for (const n of ["localhost", "127.0.0.1", "[::1]"]) own(n);
    for (const a of this.#ips) own(a.includes(":") ? `[${a}]` : a);
    for (const entry of input.allowedHosts) {
      const p = parseHostHeader(entry);
      if (!p) continue;
      this.#names.add(p.name);
      const h = p.name.includes(":") ? `[${p.name}]` : p.name;
      const withPort = p.port !== undefined ? `${h}:${p.port}` : h;
      for (const scheme of ["http", "https"]) this.#origins.add(`${scheme}://${withPort}`);
      own(h);
    }
    for (const o of input.allowedOrigins) {
      const n = normalizeOrigin(o.replace(/\/+$/, ""));
      if (n) this.#origins.add(n.origin);
    }
  }

  /** The fixed origins (for status and tests). */
  get fixedOrigins(): string[] {
    return [...this.#origins];
  }

  #hostAllowed(name: string): boolean {
    if (isLoopbackName(name)) return true;
    if (classifyIp(name) !== undefined) return this.#ips.has(ipKey(name));
    if (this.#names.has(name)) return true;
    return this.#allowTailscale && name.endsWith(".ts.net") && name.length > ".ts.net".length;
  }

  /** Refusal for a Host header this gateway does not answer to, else undefined. */
  checkHost(raw: string | undefined): Refusal | undefined {
    const p = parseHostHeader(raw);
    if (p && this.#hostAllowed(p.name)) return undefined;
    const value = trimForLog(raw ?? "(none)");
    return {
      code: "HOST_NOT_ALLOWED",
      value,
      configKey: ALLOWED_HOSTS_KEY,
      message: p
        ? `host not allowed: ${value} is not a name of this gateway (a page using DNS rebinding sends its own name); if clients really reach it by that name, add "${p.name}" to ${ALLOWED_HOSTS_KEY}`
        : `host not allowed: malformed or missing Host header (${value})`,
    };
  }

  /**
   * Refusal for a browser Origin on a WebSocket upgrade, else undefined.
   * `local`: a direct loopback peer with no forwarding headers. `relayHost`:
   * the relay host a link-relayed stream names.
   */
  checkOrigin(
    raw: string | undefined,
    ctx: { host: string | undefined; local: boolean; relayHost?: string | undefined },
  ): Refusal | undefined {
    if (raw === undefined) return undefined;
    const o = normalizeOrigin(raw);
    const value = trimForLog(raw);
    const refuse = (why: string): Refusal => ({
      code: "ORIGIN_NOT_ALLOWED",
      value,
      configKey: ALLOWED_ORIGINS_KEY,
      message: `origin not allowed: ${why}`,
    });
    if (!o)
      return refuse(
        `${value === "" ? "(empty)" : value} is not an http(s) origin (an opaque "null" origin is never allowed)`,
      );
    if (this.#origins.has(o.origin)) return undefined;
    if (ctx.local && isLoopbackName(o.hostname)) return undefined;
    if (ctx.relayHost !== undefined && o.protocol === "https:" && o.host === ctx.relayHost.toLowerCase())
      return undefined;
    const host = parseHostHeader(ctx.host);
    if (
      host &&
      !isLoopbackName(host.name) &&
      this.#hostAllowed(host.name) &&
      o.host === (ctx.host ?? "").trim().toLowerCase()
    )
      return undefined;
    return refuse(
      `${o.origin} may not open this gateway's WebSocket; add it to ${ALLOWED_ORIGINS_KEY} if you trust that site`,
    );
  }
}
