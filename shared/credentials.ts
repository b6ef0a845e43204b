/**
 * Client credential precedence: the one place that decides which token or
 * password a command sends, and where the target URL comes from. Pure: the
 * caller passes the config, the environment and a secret resolver.
 *
 * The contract (remote-access seed, "Credential precedence"):
 * - explicit --token/--password always win;
 * - a CLI --url never reuses config/env credentials; without explicit ones it is an error;
 * - OPENCLAW_GATEWAY_URL may use only OPENCLAW_GATEWAY_TOKEN / OPENCLAW_GATEWAY_PASSWORD;
 * - local mode:  token    OPENCLAW_GATEWAY_TOKEN -> gateway.auth.token -> gateway.remote.token
 *                password OPENCLAW_GATEWAY_PASSWORD -> gateway.auth.password -> gateway.remote.password
 *                (the remote fallback applies only when the local auth input is unset);
 * - remote mode: token    gateway.remote.token -> OPENCLAW_GATEWAY_TOKEN -> gateway.auth.token
 *                password OPENCLAW_GATEWAY_PASSWORD -> gateway.remote.password -> gateway.auth.password;
 * - remote probe/status: token from gateway.remote.token only;
 * - CLAWDBOT_GATEWAY_* only on the compatibility call path (`gateway call`);
 * - a configured secret reference that does not resolve fails closed.
 */
import { LoopgateError, ErrorCodes } from "./errors.ts";
import type { LoopgateConfig, SecretInput, SecretRef } from "./config/schema.ts";
import { isSecretRef } from "./config/schema.ts";

export const DEFAULT_GATEWAY_PORT = 18789;

/** Which kind of command is asking: a call, a probe/status, or the legacy-compatible call path. */
export type CallPath = "call" | "probe" | "compat";

export type Env = Readonly<Record<string, string | undefined>>;
export type SecretResolver = (ref: SecretRef) => string | undefined;

export interface CredentialInput {
  config: LoopgateConfig;
  env: Env;
  path: CallPath;
  /** Credentials given on the command line (or by a --token-file / --password-file, named in *Source). */
  explicit?: { url?: string; token?: string; password?: string; tokenSource?: string; passwordSource?: string };
  resolveSecret: SecretResolver;
  /** The token the local gateway generated and stored on first start, if any. */
  storedLocalToken?: string;
}

export interface ResolvedSecret {
  value: string;
  /** Where it came from, e.g. "--token", "env:OPENCLAW_GATEWAY_TOKEN", "config:gateway.remote.token". Never the value. */
  source: string;
}

export interface ResolvedTarget {
  url: string;
  /** "--url", "env:OPENCLAW_GATEWAY_URL", "config:gateway.remote.url", "local:gateway.port", … */
  urlSource: string;
  mode: "local" | "remote";
  token?: ResolvedSecret;
  password?: ResolvedSecret;
}

type Candidate = { source: string; input: SecretInput | undefined; configKey?: string };

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== "" ? v : undefined;
}

function fromEnv(env: Env, name: string): Candidate {
  return { source: `env:${name}`, input: nonEmpty(env[name]) };
}

function fromConfig(key: string, input: SecretInput | undefined): Candidate {
  return { source: `config:${key}`, input, configKey: key };
}

/** Resolves one candidate; an unresolved reference throws (fail closed). */
function resolveCandidate(c: Candidate, resolveSecret: SecretResolver): ResolvedSecret | undefined {
  if (c.input === undefined) return undefined;
  if (typeof c.input === "string") return { value: c.input, source: c.source };
  if (isSecretRef(c.input)) {
    const value = nonEmpty(resolveSecret(c.input));
    if (value === undefined) {
      throw new LoopgateError(
        ErrorCodes.SECRET_UNRESOLVED,
        `${c.configKey ?? c.source} is a secret reference (${c.input.source}:${c.input.id}) that did not resolve`,
        {
          hint:
            c.input.source === "env"
              ? `set the environment variable ${c.input.id}, or change ${c.configKey ?? "the key"}`
              : `create the file ${c.input.id} (readable by you), or change ${c.configKey ?? "the key"}`,
          details: { key: c.configKey, ref: { source: c.input.source, id: c.input.id } },
        },
      );
    }
    return { value, source: `${c.source} (${c.input.source} ref)` };
  }
  return undefined;
}

/** First candidate that is set wins; a set-but-unresolved reference stops the chain with an error. */
function firstOf(chain: Candidate[], resolveSecret: SecretResolver): ResolvedSecret | undefined {
  for (const c of chain) {
    const r = resolveCandidate(c, resolveSecret);
    if (r) return r;
  }
  return undefined;
}

/** Token and password chains for a target with no URL override. Exported for the table test. */
export function credentialChains(
  input: CredentialInput,
  mode: "local" | "remote",
): { token: Candidate[]; password: Candidate[] } {
  const g = input.config.gateway ?? {};
  const auth = g.auth ?? {};
  const remote = g.remote ?? {};
  const env = input.env;
  const compat = input.path === "compat";
  const envToken = [
    fromEnv(env, "OPENCLAW_GATEWAY_TOKEN"),
    ...(compat ? [fromEnv(env, "CLAWDBOT_GATEWAY_TOKEN")] : []),
  ];
  const envPassword = [
    fromEnv(env, "OPENCLAW_GATEWAY_PASSWORD"),
    ...(compat ? [fromEnv(env, "CLAWDBOT_GATEWAY_PASSWORD")] : []),
  ];
  // The stored generated token is the local gateway's own auth token when none is configured.
  const localToken =
    auth.token !== undefined
      ? fromConfig("gateway.auth.token", auth.token)
      : { source: "state:gateway-token", input: nonEmpty(input.storedLocalToken) };
  if (mode === "local") {
    return {
      token: [...envToken, localToken, fromConfig("gateway.remote.token", remote.token)],
      password: [
        ...envPassword,
        fromConfig("gateway.auth.password", auth.password),
        fromConfig("gateway.remote.password", remote.password),
      ],
    };
  }
  if (input.path === "probe") {
    return {
      token: [fromConfig("gateway.remote.token", remote.token)],
      password: [
        ...envPassword,
        fromConfig("gateway.remote.password", remote.password),
        fromConfig("gateway.auth.password", auth.password),
      ],
    };
  }
  return {
    token: [
      fromConfig("gateway.remote.token", remote.token),
      ...envToken,
      fromConfig("gateway.auth.token", auth.token),
    ],
    password: [
      ...envPassword,
      fromConfig("gateway.remote.password", remote.password),
      fromConfig("gateway.auth.password", auth.password),
    ],
  };
}

function localUrl(input: CredentialInput): { url: string; source: string } {
  const envPort = nonEmpty(input.env.OPENCLAW_GATEWAY_PORT);
  if (envPort !== undefined) {
    const port = Number(envPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new LoopgateError(
        ErrorCodes.CONFIG_INVALID,
        `OPENCLAW_GATEWAY_PORT must be a port number 1-65535 (got ${JSON.stringify(envPort.slice(0, 20))})`,
        {
          hint: "unset it or set a valid port",
        },
      );
    }
    return { url: `ws://127.0.0.1:${port}`, source: "env:OPENCLAW_GATEWAY_PORT" };
  }
  const port = input.config.gateway?.port;
  if (port !== undefined && port !== 0) return { url: `ws://127.0.0.1:${port}`, source: "config:gateway.port" };
  return { url: `ws://127.0.0.1:${DEFAULT_GATEWAY_PORT}`, source: "default" };
}

/** Resolves the target URL and the credentials a command will send. */
export function resolveTarget(input: CredentialInput): ResolvedTarget {
  const explicitToken = nonEmpty(input.explicit?.token);
  const explicitPassword = nonEmpty(input.explicit?.password);
  const explicit: Pick<ResolvedTarget, "token" | "password"> = {
    ...(explicitToken !== undefined
      ? { token: { value: explicitToken, source: input.explicit?.tokenSource ?? "--token" } }
      : {}),
    ...(explicitPassword !== undefined
      ? { password: { value: explicitPassword, source: input.explicit?.passwordSource ?? "--password" } }
      : {}),
  };
  const hasExplicit = explicitToken !== undefined || explicitPassword !== undefined;
  const configMode = input.config.gateway?.mode ?? "local";

  // 1. CLI --url: explicit credentials only.
  const cliUrl = nonEmpty(input.explicit?.url);
  if (cliUrl !== undefined) {
    if (!hasExplicit) {
      throw new LoopgateError(
        ErrorCodes.CREDENTIALS_MISSING,
        "--url needs explicit credentials: it never reuses config or environment credentials",
        {
          hint: "add --token <token> or --password <password>",
        },
      );
    }
    return { url: cliUrl, urlSource: "--url", mode: configMode, ...explicit };
  }

  // 2. Environment URL override: environment credentials only.
  const envUrlName = nonEmpty(input.env.OPENCLAW_GATEWAY_URL)
    ? "OPENCLAW_GATEWAY_URL"
    : input.path === "compat" && nonEmpty(input.env.CLAWDBOT_GATEWAY_URL)
      ? "CLAWDBOT_GATEWAY_URL"
      : undefined;
  if (envUrlName !== undefined) {
    const url = input.env[envUrlName] as string;
    if (hasExplicit) return { url, urlSource: `env:${envUrlName}`, mode: configMode, ...explicit };
    const compat = input.path === "compat";
    const token = firstOf(
      [fromEnv(input.env, "OPENCLAW_GATEWAY_TOKEN"), ...(compat ? [fromEnv(input.env, "CLAWDBOT_GATEWAY_TOKEN")] : [])],
      input.resolveSecret,
    );
    const password = firstOf(
      [
        fromEnv(input.env, "OPENCLAW_GATEWAY_PASSWORD"),
        ...(compat ? [fromEnv(input.env, "CLAWDBOT_GATEWAY_PASSWORD")] : []),
      ],
      input.resolveSecret,
    );
    return {
      url,
      urlSource: `env:${envUrlName}`,
      mode: configMode,
      ...(token ? { token } : {}),
      ...(password ? { password } : {}),
    };
  }

  // 3. Config: remote mode targets gateway.remote.url, local mode the loopback port.
  let url: string;
  let urlSource: string;
  if (configMode === "remote") {
    const remoteUrl = nonEmpty(input.config.gateway?.remote?.url);
    if (remoteUrl === undefined) {
      throw new LoopgateError(ErrorCodes.CONFIG_INVALID, 'gateway.mode is "remote" but gateway.remote.url is not set', {
        hint: "set gateway.remote.url (for an ssh -L tunnel: ws://127.0.0.1:18789), or pass --url",
      });
    }
    url = remoteUrl;
    urlSource = "config:gateway.remote.url";
  } else {
    const l = localUrl(input);
    url = l.url;
    urlSource = l.source;
  }
  if (hasExplicit) return { url, urlSource, mode: configMode, ...explicit };
  const chains = credentialChains(input, configMode);
  const token = firstOf(chains.token, input.resolveSecret);
  const password = firstOf(chains.password, input.resolveSecret);
  return { url, urlSource, mode: configMode, ...(token ? { token } : {}), ...(password ? { password } : {}) };
}
