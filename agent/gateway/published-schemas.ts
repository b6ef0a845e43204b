/**
 * The published OpenClaw schemas the gateway checks every client against
 * (RequestFrame, ConnectParams), and the package's text for their errors.
 *
 * The schemas come from the JSON Schema file @openclaw/gateway-protocol
 * ships (protocol.schema.json; its definitions are the package's TypeBox
 * schemas, key for key) and are compiled by TypeBox's schema compiler, the
 * engine the package's own validators run on (the same copy of it while npm
 * installs one; should the package ever get its own, the unit test below
 * fails on any difference in verdict or text). The package's root module is
 * not loaded: it builds every one of its ~900 schemas with TypeBox's type
 * builder when imported, which cost each gateway start ~250 ms and ~20 MiB
 * of its resident memory, for two schemas. test/unit/published-schemas.test.ts holds this
 * module to the package's own validators and texts.
 */
import { readFileSync } from "node:fs";
import { ErrorCodes, GatewayErrorDetailCodes } from "@openclaw/gateway-protocol/gateway-error-details";
import type { TLocalizedValidationError } from "typebox/error";
import { Compile, type XSchema } from "typebox/schema";

export type ValidationError = TLocalizedValidationError;

/** A compiled published schema: a fast check, and its errors when the check fails. */
export interface PublishedValidator {
  check(value: unknown): boolean;
  errors(value: unknown): ValidationError[];
}

/** Where the package keeps protocol.schema.json (shipped in its `files`, beside `dist/`). */
export function publishedSchemaFile(): URL {
  return new URL("../protocol.schema.json", import.meta.resolve("@openclaw/gateway-protocol/version"));
}

/** Reads the named definitions from the package's schema file; the rest of the file is dropped. */
function loadPublishedDefinitions<const N extends string>(names: readonly N[]): Record<N, XSchema> {
  const file = publishedSchemaFile();
  let definitions: Record<string, unknown> | undefined;
  try {
    definitions = (JSON.parse(readFileSync(file, "utf8")) as { definitions?: Record<string, unknown> }).definitions;
  } catch (e) {
    throw new Error(
      `cannot read the OpenClaw protocol schemas (${(e as Error).message}); reinstall loopgate's dependencies (npm install)`,
    );
  }
  const out = {} as Record<N, XSchema>;
  for (const name of names) {
    const schema = definitions?.[name];
    if (schema === null || typeof schema !== "object")
      throw new Error(
        `the installed @openclaw/gateway-protocol has no ${name} schema; reinstall loopgate's dependencies`,
      );
    out[name] = schema as XSchema;
  }
  return out;
}

function compile(schema: XSchema): PublishedValidator {
  const v = Compile(schema);
  return { check: (value) => v.Check(value), errors: (value) => v.Errors(value)[1] };
}

// Read and compiled at start (~50 ms, most of it parsing the 3.5 MB file), not at a client's first
// frame: an install without the schemas fails to start, with the hint, instead of failing its clients.
const published = loadPublishedDefinitions(["RequestFrame", "ConnectParams"]);
export const requestFrameValidator: PublishedValidator = compile(published.RequestFrame);
export const connectParamsValidator: PublishedValidator = compile(published.ConnectParams);

function firstStringParam(value: unknown): string | undefined {
  if (typeof value === "string" && value.trim()) return value;
  if (Array.isArray(value))
    return value.find((entry): entry is string => typeof entry === "string" && entry.trim().length > 0);
  return undefined;
}

/**
 * The package's `formatValidationErrors`: validator errors as the compact
 * text OpenClaw's clients show ("at /client: must have required property
 * 'id'; …"), distinct parts joined with "; ".
 */
export function formatValidationErrors(errors: readonly ValidationError[] | null | undefined): string {
  if (!errors?.length) return "unknown validation error";
  const parts: string[] = [];
  for (const err of errors) {
    const e = err as { keyword?: unknown; instancePath?: unknown; params?: Record<string, unknown>; message?: unknown };
    const keyword = typeof e.keyword === "string" ? e.keyword : "";
    const instancePath = typeof e.instancePath === "string" ? e.instancePath : "";
    if (keyword === "additionalProperties") {
      const extra = firstStringParam(e.params?.additionalProperty) ?? firstStringParam(e.params?.additionalProperties);
      if (extra) {
        parts.push(`${instancePath ? `at ${instancePath}` : "at root"}: unexpected property '${extra}'`);
        continue;
      }
    }
    if (keyword === "required") {
      const missing = firstStringParam(e.params?.missingProperty) ?? firstStringParam(e.params?.requiredProperties);
      if (missing) {
        parts.push(`${instancePath ? `at ${instancePath}: ` : ""}must have required property '${missing}'`);
        continue;
      }
    }
    const failingKeyword = typeof e.params?.failingKeyword === "string" ? e.params.failingKeyword : "";
    const message =
      keyword === "then" || (keyword === "if" && failingKeyword === "then")
        ? "must have required conditional properties"
        : typeof e.message === "string" && e.message.trim()
          ? e.message
          : "validation error";
    parts.push(`${instancePath ? `at ${instancePath}: ` : ""}${message}`);
  }
  const unique = [...new Set(parts.filter((part) => part.trim()))];
  return unique.length > 0 ? unique.join("; ") : "unknown validation error";
}

/** The package's `missingScopeErrorShape`: a FORBIDDEN error whose details name the scope a method needs. */
export function missingScopeErrorShape(params: { missingScope: string; requiredScopes: readonly string[] }): {
  code: string;
  message: string;
  details: { code: string; missingScope: string; requiredScopes: string[] };
} {
  const requiredScopes = params.requiredScopes.length > 0 ? [...params.requiredScopes] : [params.missingScope];
  return {
    code: ErrorCodes.FORBIDDEN,
    message: `missing scope: ${params.missingScope}`,
    details: { code: GatewayErrorDetailCodes.MISSING_SCOPE, missingScope: params.missingScope, requiredScopes },
  };
}
