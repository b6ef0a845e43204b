/**
 * Typed errors with stable codes. Every error a user can see carries a code
 * that scripts can match on and a message that says what to do next.
 * Codes are part of the public contract: add, never rename.
 */
export const ErrorCodes = {
  // configuration
  CONFIG_INVALID: "CONFIG_INVALID",
  CONFIG_UNREADABLE: "CONFIG_UNREADABLE",
  SECRET_UNRESOLVED: "SECRET_UNRESOLVED",
  // gateway start-up
  BIND_REFUSED: "BIND_REFUSED",
  BIND_FAILED: "BIND_FAILED",
  // client side
  USAGE: "USAGE",
  CREDENTIALS_MISSING: "CREDENTIALS_MISSING",
  URL_INVALID: "URL_INVALID",
  URL_UNSAFE: "URL_UNSAFE",
  PIN_INVALID: "PIN_INVALID",
  PIN_MISMATCH: "PIN_MISMATCH",
  TLS_FAILED: "TLS_FAILED",
  UNREACHABLE: "UNREACHABLE",
  TIMEOUT: "TIMEOUT",
  AUTH_REFUSED: "AUTH_REFUSED",
  PROTOCOL_MISMATCH: "PROTOCOL_MISMATCH",
  PROTOCOL_ERROR: "PROTOCOL_ERROR",
  REQUEST_FAILED: "REQUEST_FAILED",
  CONNECTION_CLOSED: "CONNECTION_CLOSED",
  // identity, tokens, relay
  TOKEN_INVALID: "TOKEN_INVALID",
  HOST_NOT_ALLOWED: "HOST_NOT_ALLOWED",
  LINK_PROTOCOL: "LINK_PROTOCOL",
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  INTERNAL: "INTERNAL",
  // agent
  SESSION_INVALID: "SESSION_INVALID",
  SESSION_BUSY: "SESSION_BUSY",
  PROVIDER_UNCONFIGURED: "PROVIDER_UNCONFIGURED",
  PROVIDER_FAILED: "PROVIDER_FAILED",
  TOOL_DENIED: "TOOL_DENIED",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class LoopgateError extends Error {
  readonly code: ErrorCode;
  /** What the user should do next; shown after the message. */
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "LoopgateError";
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  /** One line for humans: "CODE: message (hint)". */
  oneLine(): string {
    return `${this.code}: ${this.message}${this.hint ? ` — ${this.hint}` : ""}`;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function isLoopgateError(e: unknown): e is LoopgateError {
  return e instanceof LoopgateError;
}

/** Wraps anything thrown into a LoopgateError without losing a typed one. */
export function toLoopgateError(e: unknown, fallback: ErrorCode = ErrorCodes.INTERNAL): LoopgateError {
  if (e instanceof LoopgateError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new LoopgateError(fallback, message, { cause: e });
}
