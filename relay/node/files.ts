/**
 * Atomic file writes with owner-only modes: secrets 0600 in dirs 0700. Used by
 * the relay's certificate store and, through agent/state.ts, by everything the
 * host keeps on disk. Node only.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

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
