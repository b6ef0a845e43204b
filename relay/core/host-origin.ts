/**
 * Keeping hosts apart in the browser. Every host gets its own origin on the
 * relay, `https://<label>.<relay host>/` (shared/host-label.ts), serving that
 * host at `/`: its pages, storage, cookies and service workers live in an
 * origin no other host's content ever runs in. The old path form
 * `/h/<hostId>/…` shares the relay's one origin between hosts, so on a relay
 * that allows more than one host it takes only credentials a browser never
 * attaches by itself (Authorization, our header, a subprotocol: CLIs) and
 * never serves a page a browser would run.
 *
 * Runtime-agnostic: used by the Hono app (relay/core/app.ts) and the Workers
 * router (relay/workers/worker.ts).
 */
import { hostIdFromLabel, hostLabel } from "../../shared/host-label.ts";
import type { TokenSource } from "./auth.ts";
import { HOP_BY_HOP_HEADERS } from "../../shared/http-headers.ts";

export type HostRouteVia = "origin" | "path";

export interface HostTarget {
  hostId: string;
  /** Reached at its own origin (`<label>.<relay>`) or under the shared `/h/<hostId>` prefix. */
  via: HostRouteVia;
  /** The path the host sees (always starts with `/`). */
  rest: string;
}

/** The relay's cookie on a host's own origin: `__Host-` forbids Domain and demands Secure and Path=/, so a sibling origin cannot plant one. */
export const HOST_ORIGIN_COOKIE = "__Host-loopgate";

const PATH_FORM = /^\/h\/([A-Za-z0-9_-]{43})(\/.*)?$/;

/** The host id a Host header names as its own origin (`<label>.<relay host>[:port]`), if any. */
export function hostIdFromHostHeader(host: string | null | undefined): string | undefined {
  if (!host || host.startsWith("[")) return undefined;
  const name = host.replace(/:\d{1,5}$/, "");
  const dot = name.indexOf(".");
  if (dot <= 0 || dot === name.length - 1) return undefined;
  return hostIdFromLabel(name.slice(0, dot));
}

/** Which host a request is for, and how it addressed it; undefined for the relay's own routes. */
export function hostTarget(req: Request): HostTarget | undefined {
  const url = new URL(req.url);
  const byOrigin = hostIdFromHostHeader(req.headers.get("host") ?? url.host);
  if (byOrigin) return { hostId: byOrigin, via: "origin", rest: url.pathname || "/" };
  if (!url.pathname.startsWith("/h/")) return undefined;
  // The raw (still percent-encoded) path: the prefix is matched and cut on the very same string.
  const m = PATH_FORM.exec(url.pathname);
  if (!m) return { hostId: "", via: "path", rest: "/" };
  return { hostId: m[1]!, via: "path", rest: m[2] ?? "/" };
}

/** The relay's own origin for this request (what a page on it sends as Origin). */
export function requestOrigin(req: Request): string {
  const url = new URL(req.url);
  return `https://${(req.headers.get("host") ?? url.host).toLowerCase()}`;
}

/** The relay's own host name (and port) for a request to a host's origin: the Host header minus the label. */
export function relayHostOf(req: Request): string {
  const host = (req.headers.get("host") ?? new URL(req.url).host).toLowerCase();
  return hostIdFromHostHeader(host) ? host.slice(host.indexOf(".") + 1) : host;
}

/** The URL of a host's own origin on the relay this request came to, if the relay is reached by name. */
export function originUrlFor(req: Request, hostId: string): string | undefined {
  const label = hostLabel(hostId);
  const host = (req.headers.get("host") ?? new URL(req.url).host).toLowerCase();
  if (!label || /^[\d.]+(:\d+)?$/.test(host) || host.startsWith("[")) return undefined;
  return `https://${label}.${host}`;
}

export function cookieFor(target: HostTarget, legacyName: string): { name: string; path: string } {
  return target.via === "origin"
    ? { name: HOST_ORIGIN_COOKIE, path: "/" }
    : { name: legacyName, path: `/h/${target.hostId}` };
}

/**
 * Why a request must be refused before its credential is even checked, if it
 * must. Browser-borne credentials (the cookie, `?token=`) are accepted only
 * where the host's content cannot share an origin with another host's, and a
 * cookie only on requests the host's own pages made (or plain navigations):
 * sibling host origins are same-site, so SameSite alone would let
 * `evil.<relay>` open `wss://victim.<relay>/` with the victim's cookie.
 */
export function browserCredentialRefusal(
  req: Request,
  target: HostTarget,
  source: TokenSource,
  singleHost: boolean,
): string | undefined {
  if (source !== "cookie" && source !== "query") return undefined;
  if (target.via === "path" && !singleHost) {
    const at = originUrlFor(req, target.hostId);
    return `browser sign-in under /h/ is off on a relay shared by several hosts${at ? `: open ${at}/ instead` : "; reach the relay by its host name"}`;
  }
  if (source !== "cookie") return undefined;
  const origin = req.headers.get("origin");
  if (origin !== null && origin.toLowerCase() !== requestOrigin(req))
    return "cross-origin request refused: the cookie is for this host's own pages";
  const site = req.headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") {
    const mode = req.headers.get("sec-fetch-mode");
    const dest = req.headers.get("sec-fetch-dest");
    if (!(req.method === "GET" && mode === "navigate" && dest === "document"))
      return "cross-origin request refused: the cookie is for this host's own pages";
  }
  return undefined;
}

/** A service worker can only be registered on a host's own origin (whose scope cannot reach another host). */
export function serviceWorkerRefusal(req: Request, target: HostTarget): string | undefined {
  if (target.via === "path" && req.headers.get("service-worker") !== null)
    return "service workers are served only on a host's own origin";
  return undefined;
}

/** Response headers a host may never set through the relay: they reach beyond its origin or its response. */
const DROPPED = new Set([
  ...HOP_BY_HOP_HEADERS,
  "content-length",
  "set-cookie",
  "set-cookie2",
  "service-worker-allowed",
  "clear-site-data",
  "alt-svc",
  "strict-transport-security",
]);

/** Headers the relay sets on every host response, whatever the host sent. */
const ENFORCED: Record<string, string> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "x-content-type-options": "nosniff",
};

/** The host's response as the relay serves it: body untouched, headers filtered (see DROPPED, ENFORCED). */
export function hostResponse(res: Response, target: HostTarget, singleHost: boolean): Response {
  const headers = new Headers();
  res.headers.forEach((v, k) => {
    if (!DROPPED.has(k.toLowerCase())) headers.append(k, v);
  });
  for (const [k, v] of Object.entries(ENFORCED)) headers.set(k, v);
  // On a shared origin nothing a host sends may run as a page or a worker.
  if (target.via === "path" && !singleHost) headers.set("content-security-policy", "sandbox");
  return new Response(res.body, passThroughInit({ status: res.status, statusText: res.statusText, headers }));
}

/**
 * Response options for a body that is already encoded as its headers say:
 * Workers would otherwise compress a body again to match `content-encoding`
 * (`encodeBody: "manual"` stops it; other runtimes ignore the option).
 */
export function passThroughInit(init: ResponseInit): ResponseInit {
  const manual: ResponseInit & { encodeBody: "manual" } = { ...init, encodeBody: "manual" };
  return manual;
}
