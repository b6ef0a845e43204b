/**
 * The OpenClaw gateway protocol v4, server side: frame parsing and
 * validation against the published schemas (@openclaw/gateway-protocol),
 * frame builders, close codes and error codes.
 */
import {
  requestFrameValidator,
  connectParamsValidator,
  formatValidationErrors,
  missingScopeErrorShape,
} from "./published-schemas.ts";
import {
  PROTOCOL_VERSION,
  MIN_CLIENT_PROTOCOL_VERSION,
  MIN_PROBE_PROTOCOL_VERSION,
} from "@openclaw/gateway-protocol/version";

export { PROTOCOL_VERSION, MIN_CLIENT_PROTOCOL_VERSION, MIN_PROBE_PROTOCOL_VERSION };

/** WebSocket close codes the gateway uses, and what they mean to a client. */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY_VIOLATION: 1008, // auth failure, frame before connect, origin refused
  TOO_BIG: 1009,
  INTERNAL: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013, // connection limit, rate limited
} as const;

/** Error codes in `res.error.code` (OpenClaw's ErrorCodes). */
export const GatewayErrorCodes = {
  INVALID_REQUEST: "INVALID_REQUEST",
  FORBIDDEN: "FORBIDDEN",
  UNAVAILABLE: "UNAVAILABLE",
  NOT_FOUND: "NOT_FOUND",
} as const;

/** Structured connect-error detail codes (`res.error.details.code`). */
export const ConnectErrorDetails = {
  AUTH_REQUIRED: "AUTH_REQUIRED",
  AUTH_UNAUTHORIZED: "AUTH_UNAUTHORIZED",
  AUTH_TOKEN_MISSING: "AUTH_TOKEN_MISSING",
  AUTH_TOKEN_MISMATCH: "AUTH_TOKEN_MISMATCH",
  AUTH_PASSWORD_MISSING: "AUTH_PASSWORD_MISSING",
  AUTH_PASSWORD_MISMATCH: "AUTH_PASSWORD_MISMATCH",
  AUTH_RATE_LIMITED: "AUTH_RATE_LIMITED",
  PROTOCOL_MISMATCH: "PROTOCOL_MISMATCH",
  CONTROL_UI_ORIGIN_NOT_ALLOWED: "CONTROL_UI_ORIGIN_NOT_ALLOWED",
} as const;

export interface ErrorShape {
  code: string;
  message: string;
  details?: unknown;
  retryable?: boolean;
  retryAfterMs?: number;
}

export interface RequestFrame {
  type: "req";
  id: string;
  method: string;
  params?: unknown;
}

export type ParsedFrame = { ok: true; frame: RequestFrame } | { ok: false; error: ErrorShape; id?: string };

/** Maximum JSON nesting we accept before parsing (guards the parser and validators). */
const MAX_DEPTH = 64;

function depthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** Parses and validates one client text frame as a `req`. Never throws. */
export function parseClientFrame(text: string): ParsedFrame {
  if (depthExceeds(text, MAX_DEPTH)) {
    return {
      ok: false,
      error: { code: GatewayErrorCodes.INVALID_REQUEST, message: `frame nests deeper than ${MAX_DEPTH} levels` },
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: { code: GatewayErrorCodes.INVALID_REQUEST, message: "frame is not valid JSON" } };
  }
  if (!requestFrameValidator.check(value)) {
    const id =
      typeof (value as { id?: unknown })?.id === "string" ? ((value as { id: string }).id as string) : undefined;
    const type = (value as { type?: unknown })?.type;
    const message =
      type !== "req"
        ? `expected a req frame ({"type":"req","id":…,"method":…}), got ${typeof type === "string" ? JSON.stringify(type.slice(0, 32)) : "no type"}`
        : `invalid req frame: ${formatValidationErrors(requestFrameValidator.errors(value)).slice(0, 300)}`;
    return {
      ok: false,
      error: { code: GatewayErrorCodes.INVALID_REQUEST, message },
      ...(id !== undefined ? { id: id.slice(0, 128) } : {}),
    };
  }
  return { ok: true, frame: value as RequestFrame };
}

export interface ConnectParams {
  minProtocol: number;
  maxProtocol: number;
  client: { id: string; version: string; platform: string; mode: string; displayName?: string; instanceId?: string };
  role?: string;
  scopes?: string[];
  caps?: string[];
  auth?: { token?: string; password?: string; deviceToken?: string; bootstrapToken?: string };
  userAgent?: string;
  locale?: string;
}

/**
 * Fields newer OpenClaw clients send in `connect` that the published schema
 * we validate with (2026.9.1) does not list yet: `modelCatalog` (which model
 * catalog the client wants pushed as models.snapshot). Checked here, then
 * removed before schema validation.
 */
function splitNewerConnectFields(params: unknown): { rest: unknown; error?: string } {
  if (params === null || typeof params !== "object" || Array.isArray(params) || !("modelCatalog" in params))
    return { rest: params };
  const { modelCatalog, ...rest } = params as Record<string, unknown>;
  if (
    modelCatalog !== undefined &&
    (modelCatalog === null ||
      typeof modelCatalog !== "object" ||
      Array.isArray(modelCatalog) ||
      JSON.stringify(modelCatalog).length > 1024)
  ) {
    return { rest, error: "invalid connect params: modelCatalog must be a small object" };
  }
  return { rest };
}

export function checkConnectParams(raw: unknown): { ok: true; params: ConnectParams } | { ok: false; message: string } {
  const { rest: params, error } = splitNewerConnectFields(raw);
  if (error) return { ok: false, message: error };
  if (!connectParamsValidator.check(params)) {
    return {
      ok: false,
      message: `invalid connect params: ${formatValidationErrors(connectParamsValidator.errors(params)).slice(0, 400)}`,
    };
  }
  return { ok: true, params: params as ConnectParams };
}

/** The protocol version to speak, or undefined when the client's range misses ours. */
export function negotiateProtocol(p: ConnectParams): number | undefined {
  const min = p.client.mode === "probe" ? MIN_PROBE_PROTOCOL_VERSION : MIN_CLIENT_PROTOCOL_VERSION;
  if (p.maxProtocol < min || p.minProtocol > PROTOCOL_VERSION || p.minProtocol > p.maxProtocol) return undefined;
  return Math.min(PROTOCOL_VERSION, p.maxProtocol);
}

export const resOk = (id: string, payload: unknown): string => JSON.stringify({ type: "res", id, ok: true, payload });
export const resErr = (id: string, error: ErrorShape): string => JSON.stringify({ type: "res", id, ok: false, error });
export const eventFrame = (event: string, payload: unknown, seq?: number): string =>
  JSON.stringify(seq === undefined ? { type: "event", event, payload } : { type: "event", event, payload, seq });

export function missingScopeError(missingScope: string, requiredScopes: string[]): ErrorShape {
  return missingScopeErrorShape({ missingScope, requiredScopes });
}
