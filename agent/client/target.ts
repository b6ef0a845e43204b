/**
 * Glue between the CLI and the pure credential rules: loads config, the
 * stored local token, and the TLS pins that apply to the resolved URL.
 */
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { resolveTarget, type CallPath, type ResolvedTarget } from "../../shared/credentials.ts";
import { parsePins } from "../../shared/pin.ts";
import { loadConfig, makeSecretResolver, type LoadedConfig } from "../config/load.ts";
import { credentialFlags } from "../config/secret-file.ts";
import { statePath, readIfExists } from "../state.ts";
import { GATEWAY_TOKEN_FILE } from "../gateway/settings.ts";

export interface TargetFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  password?: string;
  passwordFile?: string;
  tlsFingerprint?: string;
  timeout?: string;
}

export interface ClientTarget {
  target: ResolvedTarget;
  pins: string[];
  pinSource: string | undefined;
  config: LoadedConfig;
  timeoutMs: number;
}

export function parseTimeout(raw: string | undefined, fallback = 10_000): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000) {
    throw new LoopgateError(
      ErrorCodes.USAGE,
      `--timeout must be a whole number of milliseconds 1-3600000 (got ${JSON.stringify(raw.slice(0, 20))})`,
      { hint: "e.g. --timeout 5000" },
    );
  }
  return n;
}

export function resolveClientTarget(
  flags: TargetFlags,
  configFlag: string | undefined,
  path: CallPath,
  env: NodeJS.ProcessEnv = process.env,
): ClientTarget {
  const config = loadConfig({ ...(configFlag !== undefined ? { flag: configFlag } : {}), env });
  const stored = readIfExists(statePath(GATEWAY_TOKEN_FILE, env))?.trim();
  const { token, password } = credentialFlags(flags);
  const target = resolveTarget({
    config: config.config,
    env,
    path,
    explicit: {
      ...(flags.url !== undefined ? { url: flags.url } : {}),
      ...(token ? { token: token.value, tokenSource: token.source } : {}),
      ...(password ? { password: password.value, passwordSource: password.source } : {}),
    },
    resolveSecret: makeSecretResolver(env),
    ...(stored ? { storedLocalToken: stored } : {}),
  });
  let pins: string[] = [];
  let pinSource: string | undefined;
  if (flags.tlsFingerprint !== undefined) {
    pins = parsePins(flags.tlsFingerprint);
    pinSource = "--tls-fingerprint";
  } else {
    const remote = config.config.gateway?.remote;
    if (remote?.tlsFingerprint !== undefined && remote.url !== undefined && sameTarget(remote.url, target.url)) {
      pins = parsePins(remote.tlsFingerprint);
      pinSource = "config:gateway.remote.tlsFingerprint";
    }
  }
  return { target, pins, pinSource, config, timeoutMs: parseTimeout(flags.timeout) };
}

function sameTarget(a: string, b: string): boolean {
  try {
    const ua = new URL(a);
    const ub = new URL(b);
    return ua.host === ub.host && ua.pathname.replace(/\/+$/, "") === ub.pathname.replace(/\/+$/, "");
  } catch {
    return false;
  }
}
