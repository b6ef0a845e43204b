/**
 * The config schema: every key loopgate reads, with its type. Validation is
 * pure (no I/O) so the Node CLI and the Workers relay use the same rules.
 * An unknown key or a wrong type is an error that names the key.
 */
import Type, { type Static, type TSchema } from "typebox";
import Value from "typebox/value";
import { LoopgateError, ErrorCodes } from "../errors.ts";

/** A secret may be inline or a reference resolved at use time. */
export const SecretRefSchema = Type.Object(
  {
    source: Type.Enum(["env", "file"]),
    id: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export const SecretSchema = Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), SecretRefSchema]);
export type SecretRef = Static<typeof SecretRefSchema>;
export type SecretInput = Static<typeof SecretSchema>;

export const BIND_MODES = ["loopback", "lan", "tailnet", "custom", "auto"] as const;
export type BindMode = (typeof BIND_MODES)[number];
export const AUTH_MODES = ["token", "password", "none", "trusted-proxy"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

const PinsSchema = Type.Union([
  Type.String({ maxLength: 4096 }),
  Type.Array(Type.String({ maxLength: 200 }), { maxItems: 16 }),
]);
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Strict = { additionalProperties: false } as const;

export const GatewayConfigSchema = Type.Object(
  {
    port: Type.Optional(Port),
    bind: Type.Optional(Type.Enum([...BIND_MODES])),
    customBindHost: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    mode: Type.Optional(Type.Enum(["local", "remote"])),
    auth: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(Type.Enum([...AUTH_MODES])),
          token: Type.Optional(SecretSchema),
          password: Type.Optional(SecretSchema),
          allowTailscale: Type.Optional(Type.Boolean()),
          rateLimit: Type.Optional(
            Type.Object(
              {
                maxFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
                windowMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000 })),
                lockoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000 })),
                /** Direct loopback clients (no Origin, no forwarding headers) are never locked out (default true, as OpenClaw). */
                exemptLoopback: Type.Optional(Type.Boolean()),
              },
              Strict,
            ),
          ),
          trustedProxy: Type.Optional(
            Type.Object(
              {
                userHeader: Type.String({ minLength: 1, maxLength: 200 }),
                requiredHeaders: Type.Optional(
                  Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 32 }),
                ),
                allowUsers: Type.Optional(
                  Type.Array(Type.String({ minLength: 1, maxLength: 320 }), { maxItems: 1000 }),
                ),
                /** Addresses of the proxy; headers from any other peer are ignored (default: gateway.trustedProxies). */
                proxies: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 })),
              },
              Strict,
            ),
          ),
        },
        Strict,
      ),
    ),
    trustedProxies: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 })),
    /** Names (optionally name:port) clients use to reach this gateway besides loopback names and bound addresses; any other Host header is refused (DNS rebinding). */
    allowedHosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 64 })),
    remote: Type.Optional(
      Type.Object(
        {
          url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
          token: Type.Optional(SecretSchema),
          password: Type.Optional(SecretSchema),
          tlsFingerprint: Type.Optional(PinsSchema),
        },
        Strict,
      ),
    ),
    relay: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
          tlsFingerprint: Type.Optional(PinsSchema),
        },
        Strict,
      ),
    ),
    controlUi: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { maxItems: 32 })),
        },
        Strict,
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxPayload: Type.Optional(Type.Integer({ minimum: 65536, maximum: 64 * 1024 * 1024 })),
          maxBufferedBytes: Type.Optional(Type.Integer({ minimum: 65536, maximum: 256 * 1024 * 1024 })),
          tickIntervalMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
          maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        },
        Strict,
      ),
    ),
  },
  Strict,
);

export const RelayServerConfigSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    port: Type.Optional(Port),
    cert: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    allowHosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 10000 })),
    publicUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  },
  Strict,
);

export const AgentConfigSchema = Type.Object(
  {
    /** An OpenAI-compatible chat-completions endpoint; without it the agent answers with how to configure one. */
    provider: Type.Optional(
      Type.Object(
        {
          baseUrl: Type.String({ minLength: 1, maxLength: 2048 }),
          model: Type.String({ minLength: 1, maxLength: 256 }),
          apiKey: Type.Optional(SecretSchema),
          timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
          maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
        },
        Strict,
      ),
    ),
    systemPrompt: Type.Optional(Type.String({ maxLength: 100_000 })),
    maxRounds: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  },
  Strict,
);

export const ToolsConfigSchema = Type.Object(
  {
    /** Tool name patterns (* and ?) allowed to run; default read_file and list_dir. */
    allow: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 100 })),
    /** Patterns never allowed; deny wins over allow. */
    deny: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 100 })),
    /** The directory read_file/list_dir cannot leave, and run_command's working directory (default: <state>/workspace). */
    workspace: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    maxOutputBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
    /**
     * run_command runs ANY program as the gateway's user: it is not confined to
     * the workspace (only started there) and asks no one. Off unless
     * enabled is true here, whatever tools.allow says.
     */
    runCommand: Type.Optional(Type.Object({ enabled: Type.Optional(Type.Boolean()) }, Strict)),
  },
  Strict,
);

export const ConfigSchema = Type.Object(
  {
    gateway: Type.Optional(GatewayConfigSchema),
    relay: Type.Optional(RelayServerConfigSchema),
    agent: Type.Optional(AgentConfigSchema),
    tools: Type.Optional(ToolsConfigSchema),
  },
  Strict,
);

export type LoopgateConfig = Static<typeof ConfigSchema>;
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

function keyPath(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split("/")
    .filter((p) => p !== "")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? "(root)" : parts.join(".");
}

/**
 * Human messages for schema errors, one per key, most specific first.
 * anyOf noise (each failed branch) is folded into one message.
 */
export function describeSchemaErrors(schema: TSchema, value: unknown): string[] {
  const out = new Map<string, string>();
  for (const e of Value.Errors(schema, value)) {
    const err = e as unknown as {
      keyword: string;
      instancePath: string;
      params: Record<string, unknown>;
      message: string;
    };
    if (err.keyword === "additionalProperties") {
      const extras = (err.params.additionalProperties as string[] | undefined) ?? [];
      for (const k of extras) out.set(keyPath(err.instancePath, k), `unknown key \`${keyPath(err.instancePath, k)}\``);
      continue;
    }
    const key = keyPath(err.instancePath);
    if (out.has(key)) continue;
    if (err.keyword === "enum") {
      const allowed = (err.params.allowedValues as unknown[] | undefined) ?? [];
      out.set(key, `\`${key}\` must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    } else if (err.keyword === "anyOf" || err.keyword === "const") {
      out.set(key, `\`${key}\` has the wrong type or value (${describeValue(lookup(value, err.instancePath))})`);
    } else if (err.keyword === "type") {
      out.set(
        key,
        `\`${key}\` must be ${String(err.params.type)} (got ${describeValue(lookup(value, err.instancePath))})`,
      );
    } else {
      out.set(key, `\`${key}\` ${err.message}`);
    }
  }
  return [...out.values()];
}

function lookup(value: unknown, instancePath: string): unknown {
  let cur: unknown = value;
  for (const p of instancePath.split("/").filter((s) => s !== "")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return "a string";
  return typeof v === "object" ? "an object" : `${typeof v}`;
}

/** Validates a parsed config object; throws CONFIG_INVALID naming every bad key. */
export function validateConfig(value: unknown, source: string): LoopgateConfig {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${source}: the config must be an object`, {
      hint: "start the file with { gateway: { … } }",
    });
  }
  if (!Value.Check(ConfigSchema, value)) {
    const problems = describeSchemaErrors(ConfigSchema, value);
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${source}: ${problems.join("; ")}`, {
      hint: "fix the named key(s); see the README's configuration section for every key and its type",
      details: { source, problems },
    });
  }
  return value as LoopgateConfig;
}

export function isSecretRef(v: unknown): v is SecretRef {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "source" in v && "id" in v;
}
