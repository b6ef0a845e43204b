/** Validates objects against definitions of the published OpenClaw protocol JSON schema. */
import { readFileSync } from "node:fs";
import Value from "typebox/value";

const schema = JSON.parse(
  readFileSync(new URL("../../node_modules/@openclaw/gateway-protocol/protocol.schema.json", import.meta.url), "utf8"),
) as { definitions: Record<string, unknown> };

export function validateDefinition(name: string, value: unknown): string[] {
  const def = schema.definitions[name];
  if (!def) throw new Error(`no definition ${name}`);
  const s = { ...(def as object), definitions: schema.definitions } as never;
  return Value.Check(s, value) ? [] : [...Value.Errors(s, value)].map((e) => `${(e as { instancePath: string }).instancePath} ${(e as { message: string }).message}`);
}

export const validateHelloOk = (v: unknown): string[] => validateDefinition("HelloOk", v);
