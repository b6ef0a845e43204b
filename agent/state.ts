/**
 * Where loopgate keeps things on disk, and how secrets are written there.
 * State dir: LOOPGATE_STATE_DIR, else ~/.loopgate. Secrets are 0600, dirs 0700.
 */
import { mkdirSync, writeFileSync, renameSync, readFileSync, chmodSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.LOOPGATE_STATE_DIR;
  if (override && override.trim() !== "") return override;
  return join(homedir(), ".loopgate");
}

export function statePath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), name);
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Atomically writes a file readable by the owner only (write to temp, fsync-free rename). */
export function writeSecretFile(path: string, data: string | Uint8Array): void {
  ensureDir(dirname(path));
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Writes a non-secret file atomically (mode 0644). */
export function writePublicFile(path: string, data: string | Uint8Array): void {
  ensureDir(dirname(path));
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, path);
}

export function readIfExists(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return readFileSync(path, "utf8");
}
