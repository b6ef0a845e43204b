/**
 * Exchange codes at the relay: short-lived, single-use stand-ins for a client
 * token, so a link, a QR code or a command line (`openclaw tui --url
 * 'wss://…?code=…'`) never carries the long-lived token itself. The host
 * mints a code beside a token (`loopgate token create --exchange`) and its
 * link pushes `{hash, token, exp}` as a CONTROL message; the relay keeps only
 * the hash of the code, hands the token out once, and forgets it at expiry.
 * A code that was used stays known (as used) until it expires, so a later
 * push of the same pending list cannot bring it back.
 *
 * Runtime-agnostic (Web Crypto only): the hub owns one table per host, and the
 * Workers relay persists the table's snapshot in the host's Durable Object.
 */
import { encode as base64url } from "jose/base64url";

/** The query parameter that carries a code (beside `?token=`). */
export const EXCHANGE_CODE_PARAM = "code";
/** The longest life the relay gives a pushed code, whatever the host asks. */
export const MAX_EXCHANGE_TTL_MS = 10 * 60_000;
/** Codes a host may have pending at once (a Workers storage value holds them all, under its 128 KiB). */
export const MAX_EXCHANGE_CODES = 100;

/** A pending code: sha256 of the code (base64url), the token it stands for (empty once used), expiry in ms since the epoch. */
export interface ExchangeCodeEntry {
  hash: string;
  token: string;
  exp: number;
  used?: true;
}

const HASH = /^[A-Za-z0-9_-]{43}$/;
/** What a presented code may look like before it is hashed (16 bytes of base64url at least). */
const CODE = /^[A-Za-z0-9_-]{22,128}$/;

/** sha256 of a code, base64url: what the host stores and pushes, and what the relay looks up. */
export async function hashExchangeCode(code: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code))));
}

/** Is this a code worth hashing (the shape the host mints)? */
export function isExchangeCodeShape(code: string): boolean {
  return CODE.test(code);
}

export class ExchangeCodeTable {
  readonly #codes = new Map<string, ExchangeCodeEntry>();
  readonly #now: () => number;
  readonly #maxTokenBytes: number;

  constructor(opts: { now?: () => number; maxTokenBytes?: number; initial?: readonly unknown[] } = {}) {
    this.#now = opts.now ?? (() => Date.now());
    this.#maxTokenBytes = opts.maxTokenBytes ?? 4096;
    if (opts.initial) this.merge(opts.initial);
  }

  get size(): number {
    this.#prune();
    return this.#codes.size;
  }

  #prune(): void {
    const now = this.#now();
    for (const [h, e] of this.#codes) if (e.exp <= now) this.#codes.delete(h);
  }

  /**
   * Takes a host's push (its whole pending list, or a stored snapshot): new
   * codes are added; a code already known keeps its state (a used one stays
   * used). Malformed, expired or too-long-lived entries are skipped. Returns
   * true when the table changed.
   */
  merge(list: readonly unknown[]): boolean {
    this.#prune();
    const now = this.#now();
    let changed = false;
    for (const raw of list) {
      if (this.#codes.size >= MAX_EXCHANGE_CODES) break;
      const e = raw as Partial<ExchangeCodeEntry> | null;
      if (!e || typeof e !== "object") continue;
      if (typeof e.hash !== "string" || !HASH.test(e.hash) || this.#codes.has(e.hash)) continue;
      const used = e.used === true;
      if (typeof e.token !== "string" || e.token.length > this.#maxTokenBytes || (!used && e.token.length === 0))
        continue;
      if (typeof e.exp !== "number" || !Number.isFinite(e.exp) || e.exp <= now) continue;
      const exp = Math.min(e.exp, now + MAX_EXCHANGE_TTL_MS);
      this.#codes.set(
        e.hash,
        used ? { hash: e.hash, token: "", exp, used: true } : { hash: e.hash, token: e.token, exp },
      );
      changed = true;
    }
    return changed;
  }

  /** The token a code (by its hash) stands for, the first time only: the code is spent by this call. */
  redeem(hash: string): string | undefined {
    this.#prune();
    const e = this.#codes.get(hash);
    if (!e || e.used) return undefined;
    // Spent: only the hash stays, until expiry, so the same code pushed again stays spent.
    this.#codes.set(hash, { hash, token: "", exp: e.exp, used: true });
    return e.token;
  }

  /** What a relay that can be evicted persists (used codes included, expired ones not). */
  snapshot(): ExchangeCodeEntry[] {
    this.#prune();
    return [...this.#codes.values()].map((e) => ({ ...e }));
  }
}
