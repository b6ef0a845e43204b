/**
 * Who may read `/metrics`: only a scraper presenting the operator's metrics
 * token as `Authorization: Bearer`, compared in constant time. A relay with
 * no metrics token configured has no `/metrics` at all (404, like any other
 * unknown path). Used by the Hono app (Node) and the Workers entry alike.
 */
import { timingSafeEqualStr } from "../../shared/ct-compare.ts";
import { bearerToken } from "../../shared/http-headers.ts";
import { OPENMETRICS_CONTENT_TYPE } from "./openmetrics.ts";

export type MetricsAuth = "ok" | "missing" | "invalid";

/** Longest metrics token considered (a longer one is refused without hashing it). */
const MAX_TOKEN_CHARS = 4096;

export async function checkMetricsAuth(req: Request, token: string): Promise<MetricsAuth> {
  const given = bearerToken(req.headers.get("authorization"));
  if (given === undefined) return "missing";
  if (given === "" || given.length > MAX_TOKEN_CHARS) return "invalid";
  return (await timingSafeEqualStr(given, token)) ? "ok" : "invalid";
}

const NO_STORE = { "cache-control": "no-store", "x-content-type-options": "nosniff" };

/** The refusal for a scrape without the right token: a status and one line, never a metric. */
export function metricsRefusal(auth: Exclude<MetricsAuth, "ok">): Response {
  return new Response(
    auth === "missing" ? "metrics token required (Authorization: Bearer <token>)\n" : "metrics token refused\n",
    {
      status: 401,
      headers: {
        ...NO_STORE,
        "content-type": "text/plain; charset=utf-8",
        "www-authenticate": 'Bearer realm="loopgate-relay-metrics"',
      },
    },
  );
}

export function metricsResponse(text: string, method: string): Response {
  return new Response(method === "HEAD" ? null : text, {
    status: 200,
    headers: { ...NO_STORE, "content-type": OPENMETRICS_CONTENT_TYPE },
  });
}

/** Metrics tokens shorter than this are refused: a scrape token is a password, not a switch. */
export const MIN_METRICS_TOKEN_CHARS = 16;

/** A configured token as the relay will use it: trimmed; empty means none. */
export function normalizeMetricsToken(raw: string | undefined): string | undefined {
  const t = raw?.trim();
  return t ? t : undefined;
}
