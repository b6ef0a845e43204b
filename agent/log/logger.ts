/**
 * Structured logs on Node: one JSON object per line on stderr (or a human
 * line when stderr is a TTY), through the shared line logger (shared/log.ts).
 * Secrets never reach a log: known secret fields are replaced, and anything
 * shaped like a token is masked as a last line of defence.
 */
import { redactUrlsInText } from "../../shared/redact-url.ts";
import { gatewayLogRing } from "./ring.ts";
import { createLineLogger, LOG_LEVEL_ORDER, type Logger, type LogLevel } from "../../shared/log.ts";

export type Level = LogLevel;
export type { Logger };

const SECRET_KEYS = /^(token|password|secret|authorization|auth|key|privateKey|cookie|set-cookie|bearer|jwt|d)$/i;
const JWT_SHAPE = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[deep]";
  if (typeof value === "string") return redactUrlsInText(value.replace(JWT_SHAPE, "[redacted-jwt]"));
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redact(v, depth + 1));
  if (value instanceof Error)
    return { name: value.name, message: redact(value.message, depth + 1), code: (value as { code?: unknown }).code };
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = SECRET_KEYS.test(k) ? (v === undefined ? undefined : "[redacted]") : redact(v, depth + 1);
    return out;
  }
  return value;
}

/** The shared line logger (shared/log.ts) on stderr: JSON lines, or a human line when stderr is a TTY. */
export function createLogger(
  opts: { level?: Level; json?: boolean; base?: Record<string, unknown>; write?: (line: string) => void } = {},
): Logger {
  const envLevel = process.env.LOOPGATE_LOG_LEVEL as Level | undefined;
  const json = opts.json ?? (process.env.LOOPGATE_LOG_FORMAT === "json" || !process.stderr.isTTY);
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  return createLineLogger({
    level: opts.level ?? (envLevel && envLevel in LOG_LEVEL_ORDER ? envLevel : "info"),
    ...(opts.base ? { base: opts.base } : {}),
    scrub: (v) => redact(v),
    write: ({ level, msg, fields, line }) => {
      // logs.tail reads these (JSON lines, whatever format stderr gets); kept only in a gateway process.
      gatewayLogRing.push(line);
      if (json) return write(line);
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${level.padEnd(5)} ${msg}${extra ? "  " + extra : ""}`);
    },
  });
}
