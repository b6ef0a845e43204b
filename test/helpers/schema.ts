/** Validates objects against definitions of the published OpenClaw protocol JSON schema. */
import { readFileSync } from "node:fs";
import Value from "typebox/value";
import { publishedSchemaFile } from "../../agent/gateway/published-schemas.ts";

const schema = JSON.parse(readFileSync(publishedSchemaFile(), "utf8")) as { definitions: Record<string, unknown> };

export function validateDefinition(name: string, value: unknown): string[] {
  const def = schema.definitions[name];
  if (!def) throw new Error(`no definition ${name}`);
  const s = { ...(def as object), definitions: schema.definitions } as never;
  return Value.Check(s, value)
    ? []
    : [...Value.Errors(s, value)].map(
        (e) => `${(e as { instancePath: string }).instancePath} ${(e as { message: string }).message}`,
      );
}

export const validateHelloOk = (v: unknown): string[] => validateDefinition("HelloOk", v);

/** The scope OpenClaw documents for each method (`methods` in the published schema); "dynamic" where it depends on params. */
export function documentedScopes(): Record<string, string> {
  const methods = (schema as unknown as { methods: Record<string, { scope: string }> }).methods;
  return Object.fromEntries(Object.entries(methods).map(([m, v]) => [m, v.scope]));
}

/** Every schema error of `value` against definition `name`, prefixed with a label; empty when it validates. */
export function schemaErrors(label: string, name: string, value: unknown): string[] {
  return validateDefinition(name, value).map((e) => `${label} (${name}): ${e}`);
}
