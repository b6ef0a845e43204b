/**
 * config.get: the effective config as loaded (file plus defaults the agent
 * applies), every secret redacted, in the shape OpenClaw's clients read
 * (`config`, `resolved`, `valid`, `issues`). Never the raw file text.
 */
import { createHash } from "node:crypto";
import { redactSecrets } from "../../log/redact-config.ts";
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";

export function configSnapshot(config: unknown): Record<string, unknown> {
  const redacted = redactSecrets(config ?? {});
  // A hash of the redacted form only: it changes with the config, and reveals no secret.
  const hash = `sha256:${createHash("sha256").update(JSON.stringify(redacted)).digest("base64url")}`;
  return {
    exists: config !== undefined,
    raw: null,
    parsed: redacted,
    sourceConfig: redacted,
    resolved: redacted,
    runtimeConfig: redacted,
    config: redacted,
    valid: true,
    hash,
    issues: [],
    warnings: [],
    legacyIssues: [],
  };
}

export function registerConfigMethods(registry: MethodRegistry, effectiveConfig: () => unknown): void {
  registry.register({ name: "config.get", scope: Scopes.READ, handler: () => configSnapshot(effectiveConfig()) });
}
