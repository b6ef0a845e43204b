/**
 * Structured logs: one JSON object per line on stderr (or a human line when
 * stderr is a TTY). Secrets never reach a log: known secret fields are
 * replaced, and anything shaped like a token is masked as a last line of defence.
 */
import { redactUrlsInText } from "../../shared/redact-url.ts";
import { gatewayLogRing } from "./ring.ts";

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

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

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  opts: { level?: Level; json?: boolean; base?: Record<string, unknown>; write?: (line: string) => void } = {},
): Logger {
  const envLevel = process.env.LOOPGATE_LOG_LEVEL as Level | undefined;
  const min = ORDER[opts.level ?? (envLevel && envLevel in ORDER ? envLevel : "info")];
  const json = opts.json ?? (process.env.LOOPGATE_LOG_FORMAT === "json" || !process.stderr.isTTY);
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const base = opts.base ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const f = redact({ ...base, ...fields }) as Record<string, unknown>;
    // logs.tail reads these (JSON lines, whatever format stderr gets); kept only in a gateway process.
    const line = JSON.stringify({ ts: new Date().toISOString(), level, msg: redact(msg), ...f });
    gatewayLogRing.push(line);
    if (json) {
      write(line);
    } else {
      const extra = Object.entries(f)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${level.padEnd(5)} ${String(redact(msg))}${extra ? "  " + extra : ""}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...opts, json, write, base: { ...base, ...fields } }),
  };
}
