/**
 * Where loopgate keeps things on disk, and how secrets are written there.
 * State dir: LOOPGATE_STATE_DIR, else ~/.loopgate. Secrets are 0600, dirs 0700.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

// The atomic owner-only writers live with the relay's certificate store, which cannot import agent/.
export { ensureDir, writePublicFile, writeSecretFile } from "../relay/node/files.ts";

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.LOOPGATE_STATE_DIR;
  if (override && override.trim() !== "") return override;
  return join(homedir(), ".loopgate");
}

export function statePath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), name);
}

export function readIfExists(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return readFileSync(path, "utf8");
}
