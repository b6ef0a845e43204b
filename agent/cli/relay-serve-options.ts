/**
 * The options of `loopgate relay serve`, in one table that both the full CLI
 * (commander) and the lean relay entry (node:util parseArgs) read, and the
 * parsers of their values. No imports beyond the error type: the full CLI
 * loads this for every command.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";

export interface RelayServeOption {
  /** Long name, without the dashes. */
  name: string;
  /** Placeholder of its value; absent for a switch. */
  value?: string;
  /** Repeatable (and comma-separated). */
  multiple?: true;
  description: string;
}

export const RELAY_SERVE_OPTIONS: readonly RelayServeOption[] = [
  { name: "host", value: "address", description: "address to listen on (default relay.host or 127.0.0.1)" },
  { name: "port", value: "port", description: "port (default relay.port or 8443; 0 picks a free one)" },
  { name: "cert", value: "file", description: "PEM certificate (with --key)" },
  { name: "key", value: "file", description: "PEM private key (with --cert)" },
  {
    name: "allow-host",
    value: "id",
    multiple: true,
    description: "host id allowed to link (repeatable, or comma-separated)",
  },
  {
    name: "public-url",
    value: "url",
    multiple: true,
    description:
      "a URL clients and hosts use (token audience; repeatable), e.g. https://relay.example.com; the listening URL always counts",
  },
  {
    name: "heartbeat-ms",
    value: "ms",
    description: "ping clients and links this often; 3 silent intervals drop the peer (default 15000)",
  },
  { name: "max-streams", value: "n", description: "concurrent client streams per host (default 1024)" },
  {
    name: "max-streams-per-token",
    value: "n",
    description: "concurrent streams one client token may hold on a host (default: a quarter of --max-streams)",
  },
  {
    name: "max-streams-per-addr",
    value: "n",
    description: "concurrent streams one client address may hold on a host (default: half of --max-streams)",
  },
  {
    name: "metrics-token-file",
    value: "file",
    description:
      "serve OpenMetrics at /metrics to scrapers sending this file's token as a bearer token (or set LOOPGATE_METRICS_TOKEN); without one there is no /metrics",
  },
  {
    name: "metrics-per-host",
    description: "add /metrics families labelled with host ids (off: no host id appears in metrics)",
  },
  { name: "json", description: "log JSON lines and print a JSON ready line on stdout" },
];

/** The parsed options, by camel-cased name (as commander and relay-main.ts both produce them). */
export interface RelayServeFlags {
  host?: string;
  port?: string;
  cert?: string;
  key?: string;
  allowHost?: string[];
  publicUrl?: string[];
  heartbeatMs?: string;
  maxStreams?: string;
  maxStreamsPerToken?: string;
  maxStreamsPerAddr?: string;
  metricsTokenFile?: string;
  metricsPerHost?: boolean;
  json?: boolean;
}

export const camelName = (name: string): string => name.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());

/** --heartbeat-ms: an interval of 100 ms to 10 minutes; the peer is dead after three silent intervals. */
export function parseHeartbeat(raw: string): { intervalMs: number; timeoutMs: number } {
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100 || ms > 600_000)
    throw new LoopgateError(ErrorCodes.USAGE, `--heartbeat-ms must be 100-600000 (got ${raw})`);
  return { intervalMs: ms, timeoutMs: ms * 3 };
}

export function parseMaxStreams(raw: string, flag = "--max-streams"): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000)
    throw new LoopgateError(ErrorCodes.USAGE, `${flag} must be 1-1000000 (got ${raw})`);
  return n;
}

/** Is this command line one the lean entry serves (`relay serve …` with no help asked for)? agent/bin/loopgate.mjs applies the same rule. */
export function isLeanRelayServe(argv: readonly string[]): boolean {
  return argv[0] === "relay" && argv[1] === "serve" && !argv.some((a) => a === "-h" || a === "--help" || a === "--");
}

/** Parses `relay serve`'s options (argv after `relay serve`); a USAGE error for anything else. */
export function parseRelayServeArgs(args: readonly string[]): { flags: RelayServeFlags; config: string | undefined } {
  const options: NonNullable<ParseArgsConfig["options"]> = { config: { type: "string" } };
  for (const o of RELAY_SERVE_OPTIONS)
    options[o.name] = o.value ? { type: "string", ...(o.multiple ? { multiple: true } : {}) } : { type: "boolean" };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new LoopgateError(ErrorCodes.USAGE, `relay serve: ${(e as Error).message}`, {
      hint: "loopgate relay serve --help lists the options",
    });
  }
  const flags: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (k !== "config" && v !== undefined) flags[camelName(k)] = v;
  const config = typeof values.config === "string" ? values.config : undefined;
  return { flags: flags as RelayServeFlags, config };
}
