/**
 * Redacts every secret from a config before it leaves the gateway
 * (config.get): values under secret-named keys, anything token-shaped
 * anywhere, credentials inside URLs, and every value of a header map. Secret
 * references ({ source, id }) stay, since they name where a secret lives, not
 * the secret.
 */
export const REDACTED = "__OPENCLAW_REDACTED__";

const SECRET_KEY =
  /(^|[-_.])(token|tokens|password|passwd|secret|secrets|apikey|api[-_]?key|key|privatekey|private[-_]?key|authorization|cookie|bearer|jwt|credential|credentials)$/i;
const HEADER_MAP_KEY = /^(headers|edgeauth|httpheaders)$/i;
const TOKEN_SHAPES = [
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g, // JWT
  /\b(sk|pk|rk|xox[abpr]|ghp|gho|github_pat|glpat)[-_][A-Za-z0-9_-]{12,}\b/g, // provider keys
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

function isSecretRef(v: unknown): boolean {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  return (
    keys.every((k) => k === "source" || k === "id" || k === "provider") &&
    typeof o.source === "string" &&
    typeof o.id === "string"
  );
}

function redactString(s: string): string {
  let out = s;
  for (const re of TOKEN_SHAPES) out = out.replace(re, REDACTED);
  // user:password@ in URLs
  out = out.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, `$1${REDACTED}@`);
  // ?token=… and similar query parameters
  out = out.replace(/([?&](?:token|access_token|password|key|api_key|apikey|secret)=)[^&#\s]+/gi, `$1${REDACTED}`);
  return out;
}

/** A deep copy of `value` with every secret replaced by {@link REDACTED}. */
export function redactSecrets(value: unknown): unknown {
  return walk(value, 0, false);
}

function walk(value: unknown, depth: number, allSecret: boolean): unknown {
  if (depth > 32) return REDACTED;
  if (typeof value === "string") return allSecret ? REDACTED : redactString(value);
  if (typeof value === "number" && allSecret) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, allSecret));
  if (value !== null && typeof value === "object") {
    if (allSecret && isSecretRef(value)) return { ...value };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      const secret = allSecret || SECRET_KEY.test(k) || HEADER_MAP_KEY.test(k);
      out[k] = walk(v, depth + 1, secret);
    }
    return out;
  }
  return value;
}
