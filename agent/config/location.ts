/**
 * Where the config file is, without reading or validating it (so a command
 * that can run without a config, like `relay serve`, loads the schema only
 * when there is a file to check).
 * Path: --config, else LOOPGATE_CONFIG, else ~/.loopgate/config.json5.
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface ConfigLocation {
  path: string;
  /** "--config", "env:LOOPGATE_CONFIG" or "default". */
  source: string;
  /** A named file must exist; the default one may be absent (defaults apply). */
  required: boolean;
}

export function defaultConfigPath(): string {
  return join(homedir(), ".loopgate", "config.json5");
}

export function configLocation(opts: { flag?: string; env?: NodeJS.ProcessEnv } = {}): ConfigLocation {
  const env = opts.env ?? process.env;
  if (opts.flag) return { path: resolve(opts.flag), source: "--config", required: true };
  if (env.LOOPGATE_CONFIG && env.LOOPGATE_CONFIG.trim() !== "")
    return { path: resolve(env.LOOPGATE_CONFIG), source: "env:LOOPGATE_CONFIG", required: true };
  return { path: defaultConfigPath(), source: "default", required: false };
}
