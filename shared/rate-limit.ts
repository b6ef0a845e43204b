/**
 * Failure rate limiting per peer (auth failures at the gateway and the relay).
 * A peer that fails `maxFailures` times within `windowMs` is locked out for
 * `lockoutMs`. Memory is bounded: at most `maxPeers` entries, oldest evicted.
 */
import { setBounded } from "./bounded-map.ts";
export interface RateLimitOptions {
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  maxPeers?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

export const DEFAULT_AUTH_RATE_LIMIT: RateLimitOptions = { maxFailures: 10, windowMs: 60_000, lockoutMs: 60_000 };

export class FailureLimiter {
  readonly #opts: Required<RateLimitOptions>;
  readonly #peers = new Map<string, Entry>();

  constructor(opts: RateLimitOptions = DEFAULT_AUTH_RATE_LIMIT) {
    this.#opts = { maxPeers: 10_000, now: () => Date.now(), ...opts };
  }

  /** Milliseconds the peer must still wait, or 0 when it may try. */
  retryAfterMs(peer: string): number {
    const e = this.#peers.get(peer);
    if (!e) return 0;
    const now = this.#opts.now();
    return e.lockedUntil > now ? e.lockedUntil - now : 0;
  }

  /** Records a failure; returns true when the peer is now locked out. */
  fail(peer: string): boolean {
    const now = this.#opts.now();
    let e = this.#peers.get(peer);
    if (!e || now - e.windowStart > this.#opts.windowMs) {
      e = { failures: 0, windowStart: now, lockedUntil: e?.lockedUntil ?? 0 };
    }
    e.failures += 1;
    if (e.failures >= this.#opts.maxFailures) {
      e.lockedUntil = now + this.#opts.lockoutMs;
      e.failures = 0;
      e.windowStart = now;
    }
    // Moved to the newest end: a peer still failing is the last to be forgotten.
    this.#peers.delete(peer);
    setBounded(this.#peers, peer, e, this.#opts.maxPeers);
    return e.lockedUntil > now;
  }

  succeed(peer: string): void {
    const e = this.#peers.get(peer);
    if (e && e.lockedUntil <= this.#opts.now()) this.#peers.delete(peer);
  }

  get size(): number {
    return this.#peers.size;
  }
}
