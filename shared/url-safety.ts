/**
 * URL safety for gateway targets (remote-access seed, "Security rules"):
 * - plaintext ws:// only to loopback;
 * - ws:// to a private-network address only with OPENCLAW_ALLOW_INSECURE_PRIVATE_WS=1;
 * - ws:// never to a public address;
 * - wss:// anywhere (with CA verification or a pin).
 * Pure: hostnames are classified by the caller's resolver (DNS lives in agent/).
 */
import { LoopgateError, ErrorCodes } from "./errors.ts";
import { redactUrl } from "./redact-url.ts";

export type AddressClass = "loopback" | "private" | "public";

function parseV4(host: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

/** Expands an IPv6 literal (no brackets) to 8 hextets, or undefined. Handles embedded IPv4. */
export function parseV6(host: string): number[] | undefined {
  let h = host.toLowerCase();
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  if (!/^[0-9a-f:.]+$/.test(h) || !h.includes(":")) return undefined;
  const lastColon = h.lastIndexOf(":");
  const maybeV4 = h.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    // Embedded IPv4 (e.g. ::ffff:127.0.0.1): rewrite it as two hextets.
    const v4 = parseV4(maybeV4);
    if (!v4) return undefined;
    const hi = (((v4[0] as number) << 8) | (v4[1] as number)).toString(16);
    const lo = (((v4[2] as number) << 8) | (v4[3] as number)).toString(16);
    h = `${h.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = h.split("::");
  if (halves.length > 2) return undefined;
  const toNums = (s: string) =>
    s === "" ? [] : s.split(":").map((x) => (/^[0-9a-f]{1,4}$/.test(x) ? parseInt(x, 16) : NaN));
  const head = toNums(halves[0] ?? "");
  const rest = halves.length === 2 ? toNums(halves[1] ?? "") : [];
  const want = 8;
  let groups: number[];
  if (halves.length === 2) {
    const fill = want - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    groups = head;
  }
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  return groups;
}

function classifyV4(p: number[]): AddressClass {
  const [a, b] = p as [number, number, number, number];
  if (a === 127) return "loopback";
  if (a === 10) return "private";
  if (a === 172 && b >= 16 && b <= 31) return "private";
  if (a === 192 && b === 168) return "private";
  if (a === 169 && b === 254) return "private"; // link-local
  if (a === 100 && b >= 64 && b <= 127) return "private"; // CGNAT / tailnet 100.64.0.0/10
  return "public";
}

/** Classifies an IP literal; undefined for a hostname. */
export function classifyIp(host: string): AddressClass | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = parseV4(bare);
  if (v4) return classifyV4(v4);
  const v6 = parseV6(bare);
  if (!v6) return undefined;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return "loopback";
  // IPv4-mapped ::ffff:a.b.c.d
  if (v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff) {
    const g6 = v6[6] as number;
    const g7 = v6[7] as number;
    return classifyV4([g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff]);
  }
  const first = v6[0] as number;
  if ((first & 0xfe00) === 0xfc00) return "private"; // fc00::/7 unique local (incl. tailnet fd7a:115c:a1e0::/48)
  if ((first & 0xffc0) === 0xfe80) return "private"; // fe80::/10 link-local
  return "public";
}

/** A socket's peer address as logged and compared: IPv4-mapped IPv6 (::ffff:a.b.c.d) as plain IPv4; "unknown" when absent. */
export function normalizeAddr(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || classifyIp(h) === "loopback";
}

export interface ParsedTarget {
  url: URL;
  secure: boolean;
  host: string; // without brackets
  port: number;
}

/** Parses and shape-checks a gateway URL (ws:, wss:; http(s) are accepted and mapped). */
export function parseGatewayUrl(raw: string): ParsedTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LoopgateError(
      ErrorCodes.URL_INVALID,
      `not a valid URL: ${JSON.stringify(redactUrl(raw).slice(0, 200))}`,
      {
        hint: "use ws://127.0.0.1:18789 or wss://relay.example/h/<hostId>",
      },
    );
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new LoopgateError(ErrorCodes.URL_INVALID, `unsupported URL scheme ${url.protocol} (want ws:// or wss://)`, {
      hint: "gateway URLs start with ws:// (loopback) or wss://",
    });
  }
  if (url.username || url.password) {
    throw new LoopgateError(ErrorCodes.URL_INVALID, "credentials in the URL are not allowed", {
      hint: "pass --token or --password instead",
    });
  }
  const secure = url.protocol === "wss:";
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  return { url, secure, host, port };
}

/**
 * Checks the plaintext rule. `resolvedClasses` are the classes of every address
 * the host name resolves to (the caller does DNS); for IP literals it is ignored.
 */
export function checkUrlSafety(
  target: ParsedTarget,
  env: Readonly<Record<string, string | undefined>>,
  resolvedClasses?: AddressClass[],
): void {
  if (target.secure) return;
  let cls: AddressClass;
  if (isLoopbackHost(target.host)) cls = "loopback";
  else {
    const lit = classifyIp(target.host);
    if (lit) cls = lit;
    else if (resolvedClasses && resolvedClasses.length > 0) {
      cls = resolvedClasses.includes("public")
        ? "public"
        : resolvedClasses.every((c) => c === "loopback")
          ? "loopback"
          : "private";
    } else cls = "public";
  }
  if (cls === "loopback") return;
  if (cls === "private") {
    if (env.OPENCLAW_ALLOW_INSECURE_PRIVATE_WS === "1") return;
    throw new LoopgateError(
      ErrorCodes.URL_UNSAFE,
      `refusing plaintext ws:// to the private-network address ${target.host}: ws:// is loopback-only by default`,
      {
        hint: "use wss:// (with --tls-fingerprint), an ssh -L tunnel to ws://127.0.0.1, or on a trusted network set OPENCLAW_ALLOW_INSECURE_PRIVATE_WS=1",
        details: { rule: "private-ws-needs-break-glass", host: target.host },
      },
    );
  }
  throw new LoopgateError(
    ErrorCodes.URL_UNSAFE,
    `refusing plaintext ws:// to the public address ${target.host}: tokens would cross the internet in clear`,
    {
      hint: "use wss:// (the relay, with its pin) or an ssh -L tunnel to ws://127.0.0.1",
      details: { rule: "public-ws-never", host: target.host },
    },
  );
}
