/**
 * Resolves how the gateway runs from flags, environment and config:
 * port (--port > OPENCLAW_GATEWAY_PORT > gateway.port > 18789), bind mode,
 * auth mode and secrets, limits. Enforces the bind-safety rule: nothing
 * beyond loopback without token or password auth.
 */
import { randomBytes } from "node:crypto";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import {
  BIND_MODES,
  AUTH_MODES,
  isSecretRef,
  type BindMode,
  type AuthMode,
  type LoopgateConfig,
  type SecretInput,
} from "../../shared/config/schema.ts";
import { DEFAULT_GATEWAY_PORT, type SecretResolver } from "../../shared/credentials.ts";
import { DEFAULT_AUTH_RATE_LIMIT, type RateLimitOptions } from "../../shared/rate-limit.ts";
import { statePath, readIfExists, writeSecretFile } from "../state.ts";
import { redactUrl } from "../../shared/redact-url.ts";
import { credentialFlags } from "../config/secret-file.ts";

export interface GatewayFlags {
  port?: string;
  bind?: string;
  host?: string;
  auth?: string;
  token?: string;
  tokenFile?: string;
  password?: string;
  passwordFile?: string;
}

export interface SecretValue {
  value: string;
  source: string;
}

export interface GatewaySettings {
  port: number;
  portSource: string;
  bind: BindMode;
  customHost: string | undefined;
  auth: {
    mode: AuthMode;
    token: SecretValue | undefined;
    password: SecretValue | undefined;
    /** Set when the token was generated and stored by loopgate. */
    generatedTokenPath: string | undefined;
    allowTailscale: boolean;
    /** Set in trusted-proxy mode. */
    trustedProxy?: { userHeader: string; requiredHeaders: string[]; allowUsers: string[]; proxies: string[] };
    /** exemptLoopback: direct loopback clients without an Origin are never locked out. */
    rateLimit: RateLimitOptions & { exemptLoopback: boolean };
  };
  limits: {
    maxPayload: number;
    maxBufferedBytes: number;
    tickIntervalMs: number;
    maxConnections: number;
    preAuthMaxPayload: number;
  };
  relay: { enabled: boolean; url: string | undefined; tlsFingerprint: string | string[] | undefined };
  allowedOrigins: string[];
  /** gateway.allowedHosts: names clients use besides loopback names and bound addresses. */
  allowedHosts: string[];
  trustedProxies: string[];
}

export const GATEWAY_TOKEN_FILE = "gateway-token";
export const PRE_AUTH_MAX_PAYLOAD = 64 * 1024;

function parsePort(raw: string, source: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new LoopgateError(
      ErrorCodes.CONFIG_INVALID,
      `${source} must be a port number 0-65535 (got ${JSON.stringify(raw.slice(0, 20))})`,
      {
        hint: "use e.g. --port 18789 (0 picks a free port)",
      },
    );
  }
  return n;
}

function oneOf<T extends string>(raw: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new LoopgateError(
    ErrorCodes.CONFIG_INVALID,
    `${what} must be one of ${allowed.join(", ")} (got ${JSON.stringify(raw.slice(0, 40))})`,
    {
      hint: `pick one of ${allowed.join(" | ")}`,
    },
  );
}

function resolveSecretInput(
  key: string,
  input: SecretInput | undefined,
  resolve: SecretResolver,
): SecretValue | undefined {
  if (input === undefined) return undefined;
  if (typeof input === "string") return { value: input, source: `config:${key}` };
  if (isSecretRef(input)) {
    const v = resolve(input);
    if (v === undefined || v === "") {
      throw new LoopgateError(
        ErrorCodes.SECRET_UNRESOLVED,
        `${key} is a secret reference (${input.source}:${input.id}) that did not resolve`,
        {
          hint: input.source === "env" ? `set the environment variable ${input.id}` : `create the file ${input.id}`,
          details: { key },
        },
      );
    }
    return { value: v, source: `config:${key} (${input.source} ref)` };
  }
  return undefined;
}

function relayOrigin(url: string): string {
  try {
    const u = new URL(url);
    return `https://${u.host}`;
  } catch {
    throw new LoopgateError(
      ErrorCodes.CONFIG_INVALID,
      `gateway.relay.url is not a URL: ${JSON.stringify(redactUrl(url).slice(0, 100))}`,
      { hint: "e.g. wss://relay.example.com" },
    );
  }
}

export function isLoopbackBind(bind: BindMode, customHost: string | undefined): boolean {
  if (bind === "loopback") return true;
  if (bind === "custom" && customHost !== undefined)
    return ["127.0.0.1", "::1", "localhost"].includes(customHost) || customHost.startsWith("127.");
  return false;
}

export function resolveGatewaySettings(input: {
  flags: GatewayFlags;
  config: LoopgateConfig;
  env: NodeJS.ProcessEnv;
  resolveSecret: SecretResolver;
  /** Whether a missing token may be generated and stored (false in dry runs and tests of the rules). */
  allowGenerate?: boolean;
}): GatewaySettings {
  const { flags, config, env } = input;
  const g = config.gateway ?? {};

  let port = DEFAULT_GATEWAY_PORT;
  let portSource = "default";
  if (flags.port !== undefined) {
    port = parsePort(flags.port, "--port");
    portSource = "--port";
  } else if (env.OPENCLAW_GATEWAY_PORT !== undefined && env.OPENCLAW_GATEWAY_PORT !== "") {
    port = parsePort(env.OPENCLAW_GATEWAY_PORT, "OPENCLAW_GATEWAY_PORT");
    portSource = "env:OPENCLAW_GATEWAY_PORT";
  } else if (g.port !== undefined) {
    port = g.port;
    portSource = "config:gateway.port";
  }

  const bind: BindMode = flags.bind !== undefined ? oneOf(flags.bind, BIND_MODES, "--bind") : (g.bind ?? "loopback");
  const customHost = flags.host ?? g.customBindHost;
  if (bind === "custom" && customHost === undefined) {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, "bind mode custom needs an address", {
      hint: "pass --host <address> or set gateway.customBindHost",
    });
  }

  const auth = g.auth ?? {};
  const explicitMode: AuthMode | undefined =
    flags.auth !== undefined ? oneOf(flags.auth, AUTH_MODES, "--auth") : auth.mode;

  // Token: --token / --token-file > OPENCLAW_GATEWAY_TOKEN > gateway.auth.token. Password likewise.
  const fromFlags = credentialFlags(flags);
  const fromEnv = (name: string): SecretValue | undefined => {
    const value = env[name];
    return value ? { value, source: `env:${name}` } : undefined;
  };
  let token: SecretValue | undefined = fromFlags.token ?? fromEnv("OPENCLAW_GATEWAY_TOKEN");
  if (token === undefined && (explicitMode === undefined || explicitMode === "token"))
    token = resolveSecretInput("gateway.auth.token", auth.token, input.resolveSecret);
  let password: SecretValue | undefined = fromFlags.password ?? fromEnv("OPENCLAW_GATEWAY_PASSWORD");
  if (password === undefined && (explicitMode === undefined || explicitMode === "password")) {
    password = resolveSecretInput("gateway.auth.password", auth.password, input.resolveSecret);
  }

  const mode: AuthMode = explicitMode ?? (password !== undefined && token === undefined ? "password" : "token");
  const loopbackOnly = isLoopbackBind(bind, customHost) || bind === "auto";

  if (mode === "password" && password === undefined) {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, "auth mode password needs a password", {
      hint: "pass --password, set OPENCLAW_GATEWAY_PASSWORD, or set gateway.auth.password",
    });
  }
  if (mode === "none" && !isLoopbackBind(bind, customHost)) {
    throw new LoopgateError(
      ErrorCodes.BIND_REFUSED,
      `auth mode none is allowed on loopback only, not with bind ${bind}`,
      {
        hint: "keep --bind loopback, or configure token/password auth",
      },
    );
  }
  if (
    !loopbackOnly &&
    !((mode === "token" && token) || (mode === "password" && password) || mode === "trusted-proxy")
  ) {
    throw new LoopgateError(
      ErrorCodes.BIND_REFUSED,
      `bind ${bind} exposes the gateway beyond loopback and needs token or password auth`,
      {
        hint: "set --token / OPENCLAW_GATEWAY_TOKEN / gateway.auth.token (or a password), or keep --bind loopback and use ssh -L or the relay",
      },
    );
  }

  let generatedTokenPath: string | undefined;
  if (mode === "token" && token === undefined) {
    const path = statePath(GATEWAY_TOKEN_FILE, env);
    const stored = readIfExists(path)?.trim();
    if (stored) {
      token = { value: stored, source: "state:gateway-token" };
    } else if (input.allowGenerate !== false) {
      const value = randomBytes(32).toString("base64url");
      writeSecretFile(path, value + "\n");
      token = { value, source: "state:gateway-token (generated)" };
    }
    generatedTokenPath = path;
  }

  const limits = g.limits ?? {};
  const relay = g.relay ?? {};
  if (relay.enabled && !relay.url) {
    throw new LoopgateError(
      ErrorCodes.CONFIG_INVALID,
      "gateway.relay.enabled is true but gateway.relay.url is not set",
      { hint: "set gateway.relay.url (and gateway.relay.tlsFingerprint for a self-signed relay)" },
    );
  }
  return {
    port,
    portSource,
    bind,
    customHost,
    auth: {
      mode,
      token,
      password,
      generatedTokenPath,
      allowTailscale: auth.allowTailscale ?? false,
      ...(mode === "trusted-proxy"
        ? { trustedProxy: trustedProxySettings(auth.trustedProxy, g.trustedProxies ?? []) }
        : {}),
      rateLimit: {
        ...DEFAULT_AUTH_RATE_LIMIT,
        ...(auth.rateLimit ?? {}),
        exemptLoopback: auth.rateLimit?.exemptLoopback ?? true,
      },
    },
    limits: {
      maxPayload: limits.maxPayload ?? 25 * 1024 * 1024,
      maxBufferedBytes: limits.maxBufferedBytes ?? 50 * 1024 * 1024,
      tickIntervalMs: limits.tickIntervalMs ?? 30_000,
      maxConnections: limits.maxConnections ?? 10_000,
      preAuthMaxPayload: PRE_AUTH_MAX_PAYLOAD,
    },
    relay: { enabled: relay.enabled ?? false, url: relay.url, tlsFingerprint: relay.tlsFingerprint },
    // The relay's origin may open the WebSocket: the Control UI reached through the relay runs there.
    allowedOrigins: [...(g.controlUi?.allowedOrigins ?? []), ...(relay.url ? [relayOrigin(relay.url)] : [])],
    allowedHosts: g.allowedHosts ?? [],
    trustedProxies: g.trustedProxies ?? [],
  };
}

function trustedProxySettings(
  tp: { userHeader: string; requiredHeaders?: string[]; allowUsers?: string[]; proxies?: string[] } | undefined,
  fallbackProxies: string[],
) {
  if (!tp) {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, "auth mode trusted-proxy needs gateway.auth.trustedProxy", {
      hint: 'e.g. trustedProxy: { userHeader: "x-forwarded-user", requiredHeaders: ["x-forwarded-proto"], allowUsers: ["you@example.com"], proxies: ["127.0.0.1"] }',
    });
  }
  const proxies = tp.proxies ?? fallbackProxies;
  if (proxies.length === 0) {
    throw new LoopgateError(
      ErrorCodes.CONFIG_INVALID,
      "auth mode trusted-proxy needs the proxy's addresses (gateway.auth.trustedProxy.proxies or gateway.trustedProxies)",
      {
        hint: "identity headers are trusted only from those addresses",
      },
    );
  }
  return {
    userHeader: tp.userHeader.toLowerCase(),
    requiredHeaders: (tp.requiredHeaders ?? []).map((h) => h.toLowerCase()),
    allowUsers: tp.allowUsers ?? [],
    proxies,
  };
}
