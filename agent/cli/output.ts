/**
 * CLI output and exit codes. Human output is short; --json output is one
 * stable JSON document on stdout. Failures print one line on stderr
 * ("loopgate: CODE: message — hint") or, with --json, {ok:false,error} on stdout.
 */
import { type LoopgateError, toLoopgateError, ErrorCodes, type ErrorCode } from "../../shared/errors.ts";
import { redactUrlsInText } from "../../shared/redact-url.ts";

/** Exit codes by failure class; documented in the README. */
export const ExitCodes: Partial<Record<ErrorCode, number>> & { default: number } = {
  default: 1,
  USAGE: 2,
  CONFIG_INVALID: 3,
  CONFIG_UNREADABLE: 3,
  SECRET_UNRESOLVED: 3,
  CREDENTIALS_MISSING: 3,
  URL_INVALID: 2,
  URL_UNSAFE: 4,
  PIN_INVALID: 2,
  PIN_MISMATCH: 5,
  TLS_FAILED: 5,
  UNREACHABLE: 6,
  TIMEOUT: 7,
  AUTH_REFUSED: 8,
  PROTOCOL_MISMATCH: 9,
  PROTOCOL_ERROR: 9,
  REQUEST_FAILED: 10,
  CONNECTION_CLOSED: 6,
  BIND_REFUSED: 11,
  BIND_FAILED: 11,
};

export function exitCodeFor(e: LoopgateError): number {
  return ExitCodes[e.code] ?? ExitCodes.default;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

function redactStrings(v: unknown, depth = 0): unknown {
  if (typeof v === "string") return redactUrlsInText(v);
  if (depth > 6 || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => redactStrings(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactStrings(x, depth + 1)]));
}

export function fail(e: unknown, json: boolean): never {
  const err = toLoopgateError(e, ErrorCodes.INTERNAL);
  // A URL in an error (an unreachable target, a bad --url) never carries its credentials out.
  if (json) printJson({ ok: false, error: redactStrings(err.toJSON()) });
  else process.stderr.write(`loopgate: ${redactUrlsInText(err.oneLine())}\n`);
  process.exit(exitCodeFor(err));
}
