/**
 * `loopgate relay serve`: what it does, for the full CLI and the lean relay
 * entry (agent/cli/relay-main.ts) alike. Loads nothing of the gateway or the
 * CLI framework; the config schema is loaded only when there is a config
 * file to validate.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { formatPin } from "../../shared/pin.ts";
import { relayAudience } from "../../shared/tokens.ts";
import type { LoopgateConfig } from "../../shared/config/schema.ts";
import { createLogger } from "../log/logger.ts";
import { stateDir } from "../state.ts";
import { configLocation } from "../config/location.ts";
import { readSecretFile } from "../config/secret-file.ts";
import { MIN_METRICS_TOKEN_CHARS } from "../../relay/core/metrics-endpoint.ts";
import { parseHeartbeat, parseMaxStreams, type RelayServeFlags } from "./relay-serve-options.ts";

const splitList = (xs: readonly string[] | undefined): string[] =>
  (xs ?? [])
    .flatMap((v) => v.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");

/** The metrics token: --metrics-token-file, else LOOPGATE_METRICS_TOKEN; undefined means no /metrics. */
export function metricsToken(
  flags: RelayServeFlags,
  env: NodeJS.ProcessEnv,
  warn: (msg: string) => void,
): string | undefined {
  let token: string | undefined;
  let from: string;
  if (flags.metricsTokenFile !== undefined) {
    const r = readSecretFile(flags.metricsTokenFile, "--metrics-token-file");
    if (r.looseMode) warn(`${flags.metricsTokenFile} is readable by other users; chmod 600 it`);
    token = r.value;
    from = "--metrics-token-file";
  } else {
    token = env.LOOPGATE_METRICS_TOKEN?.trim() || undefined;
    from = "LOOPGATE_METRICS_TOKEN";
  }
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_CHARS) {
    throw new LoopgateError(
      ErrorCodes.USAGE,
      `${from}: the metrics token must be at least ${MIN_METRICS_TOKEN_CHARS} characters`,
      { hint: "e.g. openssl rand -hex 32 > metrics-token && chmod 600 metrics-token" },
    );
  }
  return token;
}

/** The relay section of the config: the schema is loaded (and the file validated) only when a config file is there. */
async function relayConfig(configFlag: string | undefined): Promise<NonNullable<LoopgateConfig["relay"]>> {
  const where = configLocation(configFlag !== undefined ? { flag: configFlag } : {});
  if (!where.required && !existsSync(where.path)) return {};
  const { loadConfig } = await import("../config/load.ts");
  return loadConfig(configFlag !== undefined ? { flag: configFlag } : {}).config.relay ?? {};
}

/** Runs the relay until SIGINT/SIGTERM. */
export async function serveRelay(flags: RelayServeFlags, configFlag: string | undefined): Promise<void> {
  const cfg = await relayConfig(configFlag);
  const log = createLogger(flags.json ? { json: true } : {});
  const token = metricsToken(flags, process.env, (m) => log.warn(m));
  const { loadCertFiles, loadOrCreateRelayCert } = await import("../../relay/node/certificate.ts");
  const { startNodeRelay } = await import("../../relay/node/server.ts");
  const certFile = flags.cert ?? cfg.cert;
  const keyFile = flags.key ?? cfg.key;
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new LoopgateError(ErrorCodes.USAGE, "--cert and --key go together", {
      hint: "pass both, or neither for a generated certificate",
    });
  const host = flags.host ?? cfg.host ?? "127.0.0.1";
  // Several public URLs (repeated or comma-separated) for a relay known by more than one name or address.
  const publicUrls = flags.publicUrl?.length ? splitList(flags.publicUrl) : splitList([cfg.publicUrl ?? ""]);
  const hostnames = [
    ...(host === "0.0.0.0" || host === "::" ? [] : [host]),
    ...publicUrls.map((u) => new URL(u).hostname),
  ];
  const cert =
    certFile && keyFile
      ? loadCertFiles(certFile, keyFile)
      : await loadOrCreateRelayCert(join(stateDir(), "relay"), { hostnames });
  const allow = [...splitList(flags.allowHost), ...(cfg.allowHosts ?? [])];
  if (allow.length === 0)
    log.warn(
      "no --allow-host given: no host can link until you add one (loopgate host id on the host prints its id; write --allow-host=ID, since an id may start with -)",
    );
  const portRaw = flags.port ?? (cfg.port !== undefined ? String(cfg.port) : "8443");
  const port = Number(portRaw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new LoopgateError(ErrorCodes.USAGE, `--port must be 0-65535 (got ${portRaw})`);
  const relayServer = await startNodeRelay({
    host,
    port,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    allowHosts: allow,
    audiences: publicUrls.map((u) => relayAudience(u)),
    limits: {
      ...(flags.heartbeatMs !== undefined ? { heartbeat: parseHeartbeat(flags.heartbeatMs) } : {}),
      ...(flags.maxStreams !== undefined ? { maxStreamsPerHost: parseMaxStreams(flags.maxStreams) } : {}),
      ...(flags.maxStreamsPerToken !== undefined
        ? { maxStreamsPerToken: parseMaxStreams(flags.maxStreamsPerToken, "--max-streams-per-token") }
        : {}),
      ...(flags.maxStreamsPerAddr !== undefined
        ? { maxStreamsPerClientAddr: parseMaxStreams(flags.maxStreamsPerAddr, "--max-streams-per-addr") }
        : {}),
    },
    ...(token !== undefined ? { metrics: { token, perHost: Boolean(flags.metricsPerHost) } } : {}),
    log,
  });
  const url = `wss://${host.includes(":") ? `[${host}]` : host}:${relayServer.port}`;
  if (relayServer.audiences.length === 0)
    log.warn(
      "no --public-url given and the relay listens on every address: no token is accepted until --public-url names the URL clients use",
    );
  if (flags.metricsPerHost && token === undefined)
    log.warn(
      "--metrics-per-host has no effect without a metrics token (--metrics-token-file or LOOPGATE_METRICS_TOKEN)",
    );
  log.info("relay listening", {
    url,
    allowedHosts: allow.length,
    certificate: cert.generated ? "generated (self-signed)" : (cert.certPath ?? "given"),
    metrics: token !== undefined ? `/metrics (bearer token${flags.metricsPerHost ? ", per-host labels" : ""})` : "off",
  });
  // Signals are handled before "ready" is announced: whoever waits for that line may stop the relay at once.
  const stop = () => void relayServer.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const ready = {
    ok: true,
    event: "ready",
    port: relayServer.port,
    url,
    pin: formatPin(cert.pin),
    generatedCertificate: cert.generated,
  };
  if (flags.json) process.stdout.write(JSON.stringify(ready) + "\n");
  else
    process.stdout.write(
      `loopgate relay on ${url}\n  certificate pin: ${formatPin(cert.pin)}\n  hosts link with: loopgate link --relay ${url} --relay-fingerprint ${formatPin(cert.pin)} …\n`,
    );
}
