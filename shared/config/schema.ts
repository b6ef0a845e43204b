/**
 * The config schema: every key loopgate reads, with its type. Validation is
 * pure (no I/O) so the Node CLI and the Workers relay use the same rules.
 * An unknown key or a wrong type is an error that names the key.
 *
 * The schema is plain JSON Schema, checked by TypeBox's JSON Schema engine
 * (`typebox/schema`), and its TypeScript types come from TypeBox's `Static`,
 * which reads a JSON Schema literal as well as a built one. TypeBox's type
 * builder and `typebox/value` are some 660 module files that every CLI
 * command paid 0.25-0.35 s to load before it did anything; the engine alone
 * loads in about 0.09 s.
 */
import type { Static } from "typebox";
import { Check, Errors, type XSchema } from "typebox/schema";
import { LoopgateError, ErrorCodes } from "../errors.ts";

const str = <const O extends object>(o: O) => ({ type: "string", ...o }) as const;
const int = <const O extends object>(o: O) => ({ type: "integer", ...o }) as const;
const bool = { type: "boolean" } as const;
const strings = (maxLength: number, maxItems: number) =>
  ({ type: "array", items: { type: "string", minLength: 1, maxLength }, maxItems }) as const;
/** An object of these keys and no others; `required` names the keys it must have (the rest are optional). */
function strictObject<const P extends object>(
  properties: P,
): { readonly type: "object"; readonly properties: P; readonly additionalProperties: false };
function strictObject<const P extends object, const R extends readonly (keyof P & string)[]>(
  properties: P,
  required: R,
): { readonly type: "object"; readonly properties: P; readonly required: R; readonly additionalProperties: false };
function strictObject(properties: object, required?: readonly string[]) {
  return required
    ? { type: "object", properties, required, additionalProperties: false }
    : { type: "object", properties, additionalProperties: false };
}

/** A secret may be inline or a reference resolved at use time. */
export const SecretRefSchema = strictObject(
  {
    source: { enum: ["env", "file"] },
    id: str({ minLength: 1, maxLength: 4096 }),
  },
  ["source", "id"],
);
export const SecretSchema = { anyOf: [str({ minLength: 1, maxLength: 4096 }), SecretRefSchema] } as const;
export type SecretRef = Static<typeof SecretRefSchema>;
export type SecretInput = Static<typeof SecretSchema>;

export const BIND_MODES = ["loopback", "lan", "tailnet", "custom", "auto"] as const;
export type BindMode = (typeof BIND_MODES)[number];
export const AUTH_MODES = ["token", "password", "none", "trusted-proxy"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

const PinsSchema = {
  anyOf: [str({ maxLength: 4096 }), { type: "array", items: str({ maxLength: 200 }), maxItems: 16 }],
} as const;
const Port = int({ minimum: 0, maximum: 65535 });

export const GatewayConfigSchema = strictObject({
  port: Port,
  bind: { enum: BIND_MODES },
  customBindHost: str({ minLength: 1, maxLength: 255 }),
  mode: { enum: ["local", "remote"] },
  auth: strictObject({
    mode: { enum: AUTH_MODES },
    token: SecretSchema,
    password: SecretSchema,
    allowTailscale: bool,
    rateLimit: strictObject({
      maxFailures: int({ minimum: 1, maximum: 10000 }),
      windowMs: int({ minimum: 1000, maximum: 86_400_000 }),
      lockoutMs: int({ minimum: 1000, maximum: 86_400_000 }),
      /** Direct loopback clients (no Origin, no forwarding headers) are never locked out (default true, as OpenClaw). */
      exemptLoopback: bool,
    }),
    trustedProxy: strictObject(
      {
        userHeader: str({ minLength: 1, maxLength: 200 }),
        requiredHeaders: strings(200, 32),
        allowUsers: strings(320, 1000),
        /** Addresses of the proxy; headers from any other peer are ignored (default: gateway.trustedProxies). */
        proxies: strings(64, 64),
      },
      ["userHeader"],
    ),
  }),
  trustedProxies: strings(64, 64),
  /** Names (optionally name:port) clients use to reach this gateway besides loopback names and bound addresses; any other Host header is refused (DNS rebinding). */
  allowedHosts: strings(255, 64),
  remote: strictObject({
    url: str({ minLength: 1, maxLength: 2048 }),
    token: SecretSchema,
    password: SecretSchema,
    tlsFingerprint: PinsSchema,
  }),
  relay: strictObject({
    enabled: bool,
    url: str({ minLength: 1, maxLength: 2048 }),
    tlsFingerprint: PinsSchema,
  }),
  controlUi: strictObject({
    enabled: bool,
    allowedOrigins: strings(2048, 32),
  }),
  limits: strictObject({
    maxPayload: int({ minimum: 65536, maximum: 64 * 1024 * 1024 }),
    maxBufferedBytes: int({ minimum: 65536, maximum: 256 * 1024 * 1024 }),
    tickIntervalMs: int({ minimum: 1000, maximum: 600_000 }),
    maxConnections: int({ minimum: 1, maximum: 1_000_000 }),
  }),
});

export const RelayServerConfigSchema = strictObject({
  host: str({ minLength: 1, maxLength: 255 }),
  port: Port,
  cert: str({ minLength: 1, maxLength: 4096 }),
  key: str({ minLength: 1, maxLength: 4096 }),
  allowHosts: strings(128, 10000),
  publicUrl: str({ minLength: 1, maxLength: 2048 }),
});

export const AgentConfigSchema = strictObject({
  /** An OpenAI-compatible chat-completions endpoint; without it the agent answers with how to configure one. */
  provider: strictObject(
    {
      baseUrl: str({ minLength: 1, maxLength: 2048 }),
      model: str({ minLength: 1, maxLength: 256 }),
      apiKey: SecretSchema,
      timeoutMs: int({ minimum: 1000, maximum: 600_000 }),
      maxRetries: int({ minimum: 0, maximum: 10 }),
    },
    ["baseUrl", "model"],
  ),
  systemPrompt: str({ maxLength: 100_000 }),
  maxRounds: int({ minimum: 1, maximum: 64 }),
});

export const ToolsConfigSchema = strictObject({
  /** Tool name patterns (* and ?) allowed to run; default read_file and list_dir. */
  allow: strings(128, 100),
  /** Patterns never allowed; deny wins over allow. */
  deny: strings(128, 100),
  /** The directory read_file/list_dir cannot leave, and run_command's working directory (default: <state>/workspace). */
  workspace: str({ minLength: 1, maxLength: 4096 }),
  maxOutputBytes: int({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
  timeoutMs: int({ minimum: 100, maximum: 600_000 }),
  /**
   * run_command runs ANY program as the gateway's user: it is not confined to
   * the workspace (only started there) and asks no one. Off unless
   * enabled is true here, whatever tools.allow says.
   */
  runCommand: strictObject({ enabled: bool }),
});

export const ConfigSchema = strictObject({
  gateway: GatewayConfigSchema,
  relay: RelayServerConfigSchema,
  agent: AgentConfigSchema,
  tools: ToolsConfigSchema,
});

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
export function describeSchemaErrors(schema: XSchema, value: unknown): string[] {
  const out = new Map<string, string>();
  for (const e of Errors(schema, value)[1]) {
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
  if (!Check(ConfigSchema, value)) {
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
