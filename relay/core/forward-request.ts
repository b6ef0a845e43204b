/**
 * What the relay forwards to a host, and what it refuses first. A request
 * reaches a host only as an OPEN the host would accept (the same checks the
 * host runs, shared/link/codec.ts validateOpenMeta), so one client's odd
 * request is answered here with a clear status and never travels the link:
 *   - the host id segment must be the host id as written (no percent-encoding): else 400
 *   - path over 4096 bytes or query over 8192: 414
 *   - a method outside GET HEAD POST PUT PATCH DELETE OPTIONS: 405
 *   - a forwarded header over 4096 bytes: 431; one with control characters: 400
 * Runtime-agnostic (Node and Workers).
 */
import { isOwnAuthorization } from "./auth.ts";
import {
  MAX_OPEN_HEADER_VALUE_BYTES,
  MAX_OPEN_PATH_BYTES,
  MAX_OPEN_QUERY_BYTES,
  OPEN_METHODS,
  validateOpenMeta,
  type OpenMeta,
} from "../../shared/link/codec.ts";
import { END_TO_END_REQUEST_HEADERS, RELAY_HEADER } from "../../shared/http-headers.ts";

export interface Refusal {
  refused: true;
  status: 400 | 405 | 414 | 431;
  reason: string;
  headers?: Record<string, string>;
}

const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HOST_HEADER = /^[A-Za-z0-9.:[\]-]{1,255}$/;

/**
 * `/h/<id>/…` whose id segment is a host id only once percent-decoded: the
 * id must appear literally, or the forwarded path would be cut in the wrong
 * place. (host-origin.ts matches the prefix on the raw path.)
 */
export function encodedHostIdRefusal(pathname: string): Refusal | undefined {
  const seg = /^\/h\/([^/]*)/.exec(pathname)?.[1];
  if (seg === undefined || !seg.includes("%")) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(seg);
  } catch {
    return { refused: true, status: 400, reason: "the host id in the path is not valid percent-encoding" };
  }
  return /^[A-Za-z0-9_-]{43}$/.test(decoded)
    ? { refused: true, status: 400, reason: "the host id in the path must not be percent-encoded" }
    : undefined;
}

export function isRefusal(v: object): v is Refusal {
  return (v as Partial<Refusal>).refused === true;
}

/** Method and size checks, before any token work. */
export function checkRequestShape(method: string, rest: string, query: string): Refusal | undefined {
  if (!OPEN_METHODS.includes(method))
    return {
      refused: true,
      status: 405,
      reason: `method ${method.slice(0, 16)} is not forwarded`,
      headers: { allow: OPEN_METHODS.join(", ") },
    };
  if (rest.length > MAX_OPEN_PATH_BYTES)
    return { refused: true, status: 414, reason: `path longer than ${MAX_OPEN_PATH_BYTES} bytes` };
  if (query.length > MAX_OPEN_QUERY_BYTES)
    return { refused: true, status: 414, reason: `query longer than ${MAX_OPEN_QUERY_BYTES} bytes` };
  return undefined;
}

/** The headers a host gets for this request, or why the request is refused. */
export function forwardedHeaders(req: Request, clientAddr: string, hostId: string): Record<string, string> | Refusal {
  const h: Record<string, string> = {};
  // Passed on to the gateway; never the relay's own auth material.
  for (const name of END_TO_END_REQUEST_HEADERS) {
    const v = req.headers.get(name);
    if (v === null) continue;
    if (v.length > MAX_OPEN_HEADER_VALUE_BYTES)
      return { refused: true, status: 431, reason: `header ${name} longer than ${MAX_OPEN_HEADER_VALUE_BYTES} bytes` };
    if (!HEADER_VALUE.test(v)) return { refused: true, status: 400, reason: `header ${name} has control characters` };
    h[name] = v;
  }
  // An Authorization that is not a loopgate token is the upstream's own (e.g. a UI's bearer secret).
  const authz = req.headers.get("authorization");
  if (authz !== null && !isOwnAuthorization(authz, hostId)) {
    if (authz.length > MAX_OPEN_HEADER_VALUE_BYTES)
      return {
        refused: true,
        status: 431,
        reason: `header authorization longer than ${MAX_OPEN_HEADER_VALUE_BYTES} bytes`,
      };
    if (!HEADER_VALUE.test(authz))
      return { refused: true, status: 400, reason: "header authorization has control characters" };
    h["authorization"] = authz;
  }
  h["x-forwarded-for"] = clientAddr;
  h["x-forwarded-proto"] = "https";
  const host = req.headers.get("host");
  if (host && HOST_HEADER.test(host)) h["x-forwarded-host"] = host;
  h[RELAY_HEADER] = "1";
  return h;
}

/** The OPEN for this request, checked exactly as the host will check it; a refusal instead of an OPEN a host would refuse. */
export function checkedOpenMeta(meta: OpenMeta): OpenMeta | Refusal {
  try {
    return validateOpenMeta(meta as unknown as Record<string, unknown>);
  } catch (e) {
    return {
      refused: true,
      status: 400,
      reason: `request not forwardable: ${(e instanceof Error ? e.message : String(e)).replace(/^link frame: /, "")}`,
    };
  }
}
