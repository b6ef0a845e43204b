/**
 * Revocation for direct gateway connections: `loopgate token revoke` writes
 * the token store; this watches it and hands every revoked id to the gateway,
 * which closes the connections that authenticated with one (the relay closes
 * its own streams when the link pushes the same list).
 */
import { watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../log/logger.ts";

export interface RevocationSource {
  readonly path: string;
  list(): { id: string; revokedAt?: number }[];
}

/** Calls `onRevoked` with every revoked id (expired or not) whenever the store changes; returns a stop function. */
export function watchRevocations(store: RevocationSource, onRevoked: (ids: string[]) => void, log: Logger): () => void {
  const sweep = () => {
    try {
      onRevoked(
        store
          .list()
          .filter((r) => r.revokedAt !== undefined)
          .map((r) => r.id),
      );
    } catch (e) {
      log.warn(
        "cannot read the token store after a change; revoked tokens' open connections stay open until it is readable",
        { err: e instanceof Error ? e.message : String(e) },
      );
    }
  };
  try {
    const w = watch(dirname(store.path), (_event, name) => {
      if (name === basename(store.path)) sweep();
    });
    w.unref();
    return () => w.close();
  } catch {
    log.warn(
      "cannot watch the token store: revoking a token refuses its new connections, but open direct connections stay until they reconnect",
    );
    return () => {};
  }
}
