/**
 * The host's record of the client tokens it minted: id, name, scopes,
 * audience, expiry, revocation. Never the tokens themselves. Revocations are
 * pushed to the relay over the link and checked by the gateway.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { statePath, writeSecretFile } from "../state.ts";

export const TOKENS_FILE = "tokens.json";

export interface TokenRecord {
  id: string;
  name: string | undefined;
  scopes: string[];
  audience: string;
  createdAt: number;
  expiresAt: number;
  revokedAt?: number;
}

export class TokenStore {
  readonly path: string;
  #cache: { mtimeMs: number; records: TokenRecord[] } | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.path = statePath(TOKENS_FILE, env);
  }

  list(): TokenRecord[] {
    if (!existsSync(this.path)) return [];
    const mtimeMs = statSync(this.path).mtimeMs;
    if (this.#cache && this.#cache.mtimeMs === mtimeMs) return this.#cache.records;
    try {
      const parsed = JSON.parse(readFileSync(this.path, "utf8")) as { tokens?: TokenRecord[] };
      const records = Array.isArray(parsed.tokens) ? parsed.tokens : [];
      this.#cache = { mtimeMs, records };
      return records;
    } catch (e) {
      throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `${this.path} is unreadable: ${(e as Error).message}`, {
        hint: "restore it; tokens listed there are still valid until they expire",
      });
    }
  }

  #write(records: TokenRecord[]): void {
    writeSecretFile(this.path, JSON.stringify({ tokens: records }, null, 2) + "\n");
    this.#cache = undefined;
  }

  add(r: TokenRecord): void {
    this.#write([...this.list(), r]);
  }

  /** Revokes by id (or unique id prefix of at least 6 characters). */
  revoke(idOrPrefix: string): TokenRecord {
    const records = this.list();
    const matches = records.filter(
      (r) => r.id === idOrPrefix || (idOrPrefix.length >= 6 && r.id.startsWith(idOrPrefix)),
    );
    if (matches.length !== 1) {
      throw new LoopgateError(
        ErrorCodes.USAGE,
        matches.length === 0 ? `no token with id ${idOrPrefix}` : `${idOrPrefix} matches ${matches.length} tokens`,
        {
          hint: "loopgate token list shows the ids",
        },
      );
    }
    const m = matches[0] as TokenRecord;
    if (m.revokedAt === undefined) {
      m.revokedAt = Date.now();
      this.#write(records);
    }
    return m;
  }

  revokedIds(): string[] {
    const now = Date.now();
    // Expired tokens no longer need listing: their signature check fails anyway.
    return this.list()
      .filter((r) => r.revokedAt !== undefined && r.expiresAt * 1000 > now)
      .map((r) => r.id);
  }

  isRevoked(id: string): boolean {
    return this.list().some((r) => r.id === id && r.revokedAt !== undefined);
  }

  audiences(): string[] {
    return [...new Set(this.list().map((r) => r.audience))];
  }
}

/** Parses a duration like 90s, 30m, 12h, 30d. */
export function parseDuration(s: string): number {
  const m = /^(\d+)\s*([smhd])$/.exec(s.trim());
  if (!m)
    throw new LoopgateError(ErrorCodes.USAGE, `not a duration: ${JSON.stringify(s.slice(0, 20))}`, {
      hint: "use e.g. 90s, 30m, 12h or 30d",
    });
  const n = Number(m[1]);
  const sec = n * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
  if (sec < 60 || sec > 366 * 86400)
    throw new LoopgateError(ErrorCodes.USAGE, "a token lives between 1 minute and 366 days", {
      hint: "e.g. --ttl 30d",
    });
  return sec;
}
