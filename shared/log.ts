/**
 * The one logger shape, and one JSON-lines implementation of it that runs
 * anywhere (Node, Workers): the relay core logs through it on both
 * runtimes, and the agent's logger (agent/log/logger.ts) is this with Node's
 * stderr, a human format for terminals and secret redaction added.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every entry. */
  child(fields: LogFields): Logger;
}

/** What the relay core calls: any Logger serves, and so does a test's `{ info, warn }`. */
export type RelayLog = Pick<Logger, "info" | "warn">;

export const LOG_LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One entry as written: the JSON line, and its parts for writers that format otherwise. */
export interface LogEntry {
  level: LogLevel;
  msg: string;
  fields: LogFields;
  /** `{"ts":…,"level":…,"msg":…,…fields}` */
  line: string;
}

export interface LineLoggerOptions {
  /** Entries below this level are dropped (default "info"). */
  level?: LogLevel;
  base?: LogFields;
  /** Applied to the message and to the fields before anything is written (the agent masks secrets here). */
  scrub?: (value: unknown) => unknown;
  write: (entry: LogEntry) => void;
}

export function createLineLogger(opts: LineLoggerOptions): Logger {
  const min = LOG_LEVEL_ORDER[opts.level ?? "info"];
  const scrub = opts.scrub ?? ((v: unknown) => v);
  const base = opts.base ?? {};
  const emit = (level: LogLevel, rawMsg: string, rawFields?: LogFields) => {
    if (LOG_LEVEL_ORDER[level] < min) return;
    const fields = scrub({ ...base, ...rawFields }) as LogFields;
    const msg = String(scrub(rawMsg));
    const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
    opts.write({ level, msg, fields, line });
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLineLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** JSON lines on the console (Workers: the platform's log stream), warnings and errors on its error channel. */
export function consoleLineLogger(opts: Omit<LineLoggerOptions, "write"> = {}): Logger {
  return createLineLogger({
    ...opts,
    write: ({ level, line }) => (level === "warn" || level === "error" ? console.warn(line) : console.log(line)),
  });
}
