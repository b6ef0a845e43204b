/**
 * Finds, reads and validates the JSON5 config, and resolves secret references
 * against the real environment and file system.
 * Path: --config, else LOOPGATE_CONFIG, else ~/.loopgate/config.json5.
 */
import { readFileSync, existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import JSON5 from "json5";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { validateConfig, type LoopgateConfig, type SecretRef } from "../../shared/config/schema.ts";
import { configLocation, defaultConfigPath } from "./location.ts";

export interface LoadedConfig {
  config: LoopgateConfig;
  /** Absolute path read, or undefined when no file exists (defaults). */
  path: string | undefined;
  /** "--config", "env:LOOPGATE_CONFIG", "default", or "none" (default path absent). */
  source: string;
}

const MAX_CONFIG_BYTES = 1024 * 1024;

export { defaultConfigPath };

export function loadConfig(opts: { flag?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const { path, source, required } = configLocation(opts);
  if (!existsSync(path)) {
    if (required) {
      throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `config file not found: ${path} (from ${source})`, {
        hint: "create it, or point --config / LOOPGATE_CONFIG at an existing file",
      });
    }
    return { config: {}, path: undefined, source: "none" };
  }
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) throw new Error("larger than 1 MiB");
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `cannot read config ${path}: ${(e as Error).message}`, {
      hint: "check the path and its permissions",
    });
  }
  return { config: parseConfigText(text, path), path, source };
}

export function parseConfigText(text: string, where: string): LoopgateConfig {
  let parsed: unknown;
  try {
    parsed = text.trim() === "" ? {} : JSON5.parse(text);
  } catch (e) {
    const err = e as Error & { lineNumber?: number; columnNumber?: number };
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${where}: not valid JSON5: ${err.message}`, {
      hint: "fix the syntax at the position shown (JSON5 allows comments, trailing commas and unquoted keys)",
    });
  }
  return validateConfig(parsed, where);
}

/** Resolves { source: "env" | "file", id } against this process. Undefined when it does not resolve. */
export function makeSecretResolver(env: NodeJS.ProcessEnv = process.env) {
  return (ref: SecretRef): string | undefined => {
    if (ref.source === "env") {
      const v = env[ref.id];
      return v !== undefined && v !== "" ? v : undefined;
    }
    try {
      const p = ref.id.startsWith("~/") ? join(homedir(), ref.id.slice(2)) : ref.id;
      const st = statSync(p);
      if (!st.isFile() || st.size > 64 * 1024) return undefined;
      const v = readFileSync(p, "utf8").trim();
      return v !== "" ? v : undefined;
    } catch {
      return undefined;
    }
  };
}
