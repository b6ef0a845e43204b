/**
 * The host's pending exchange codes: `loopgate token create --exchange` mints
 * a short random code beside the token and records sha256(code), its expiry
 * and the token here (state dir, mode 0600, next to the token store; never the
 * code itself). The running link (gateway in-process or `loopgate link`)
 * watches this file and pushes the pending entries to the relay, which trades
 * a code for its token once (relay/core/exchange-codes.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { hashExchangeCode, type ExchangeCodeEntry } from "../../relay/core/exchange-codes.ts";
import { statePath, writeSecretFile } from "../state.ts";

export const EXCHANGE_FILE = "exchange-codes.json";
/** How long a code works: one use within this. */
export const EXCHANGE_TTL_SEC = 60;

export type PendingExchangeCode = Pick<ExchangeCodeEntry, "hash" | "token" | "exp">;

/** 18 random bytes (144 bits) as base64url: 24 characters. */
export function newExchangeCode(): string {
  const b = new Uint8Array(18);
  crypto.getRandomValues(b);
  return Buffer.from(b).toString("base64url");
}

/** A code's lifetime from `--exchange-ttl`: whole seconds, 1 to 60 (a code may be shorter-lived, never longer). */
export function parseExchangeTtl(s: string | undefined): number {
  if (s === undefined) return EXCHANGE_TTL_SEC;
  const m = /^(\d+)s?$/.exec(s.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > EXCHANGE_TTL_SEC)
    throw new LoopgateError(ErrorCodes.USAGE, `--exchange-ttl must be 1 to ${EXCHANGE_TTL_SEC} seconds`, {
      hint: "e.g. --exchange-ttl 30s",
    });
  return n;
}

export class ExchangeCodeStore {
  readonly path: string;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.path = statePath(EXCHANGE_FILE, env);
  }

  /** The codes not yet expired (the relay spends them; the host cannot tell a used one from a pending one). */
  pending(now = Date.now()): PendingExchangeCode[] {
    if (!existsSync(this.path)) return [];
    let parsed: { codes?: unknown };
    try {
      parsed = JSON.parse(readFileSync(this.path, "utf8")) as { codes?: unknown };
    } catch (e) {
      throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `${this.path} is unreadable: ${(e as Error).message}`, {
        hint: "delete it; pending exchange codes are then lost (mint new ones with token create --exchange)",
      });
    }
    const list = Array.isArray(parsed.codes) ? (parsed.codes as Partial<PendingExchangeCode>[]) : [];
    return list.filter(
      (c): c is PendingExchangeCode =>
        typeof c?.hash === "string" && typeof c.token === "string" && typeof c.exp === "number" && c.exp > now,
    );
  }

  /** Mints a code for `token`, records its hash (dropping expired entries), and returns the code itself. */
  async add(token: string, ttlSec = EXCHANGE_TTL_SEC, now = Date.now()): Promise<{ code: string; exp: number }> {
    const code = newExchangeCode();
    const exp = now + ttlSec * 1000;
    const codes = [...this.pending(now), { hash: await hashExchangeCode(code), token, exp }];
    writeSecretFile(this.path, `${JSON.stringify({ codes }, null, 2)}\n`);
    return { code, exp };
  }
}
