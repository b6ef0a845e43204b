/**
 * Fair reading across hosts on the Node relay. `ws` emits every message of a
 * TCP read synchronously and libuv reads a busy socket many times per loop
 * turn, so one flooding host (its link and its clients) could keep the event
 * loop on its own messages while another host's wait. Instead each socket
 * gets an inbox and each host a budget that its link and all its clients
 * share: past the budget, messages wait for the next macrotask (a
 * setImmediate, behind everyone else's I/O, which renews the budget), so at
 * most one budget's work is done between yields; a socket whose inbox is
 * past a high-water mark stops reading, so a flood waits in TCP, not in the
 * relay's heap. Light traffic is handled at once, with no extra hop.
 *
 * A host alone on the relay (no other host handled anything lately) gets a
 * larger share per turn: the smaller one only costs it throughput (queueing,
 * pausing and yielding every 64 KiB) when nobody else is there to be fair
 * to, while the larger one still bounds what a turn can hold when another
 * host's first message arrives.
 */

export interface TurnLimits {
  /** Message bytes one host may have handled per turn before yielding. */
  turnBytes: number;
  /** Messages one host may have handled per turn before yielding. */
  turnMessages: number;
  /** Queued bytes in one inbox above which its socket is paused (resumed at half). */
  highWaterBytes: number;
  /** The same two shares while no other host is busy (see Contention). */
  soloTurnBytes: number;
  soloTurnMessages: number;
}

/**
 * 64 KiB a turn per host, and a socket stops reading once 64 KiB wait in
 * its inbox. The high-water mark matters most: reading (TLS, WebSocket
 * parsing) happens before the budget is spent, so a socket left reading
 * while its inbox grows turned one host's flood into 300-400 ms stalls for
 * another host on a 2-core machine; at 128 KiB they were 40-50 ms. At 64 KiB
 * (both), another host's p99 was 41 ms where it was 46 and its p50 5.8 where
 * it was 7.1 (medians of 6; the p99 ranges overlap), while the flooding host
 * moved ~20% less; 32 KiB measured no better. Most of what is left is CPU:
 * on 2 cores shared with both links, both upstreams and the flooder, the
 * relay waits for a CPU ~0.5 s of every second of the flood.
 * Alone, 1 MiB and 512 messages: echoing over 8 streams through one host,
 * the relay spent ~17 ms of CPU per MiB instead of ~22 (40 -> 49 MiB/s,
 * medians of 3 on a 2-core machine, +-15% noise); another host's p99 under
 * a flood did not change (the flooding host is contended then).
 */
export const DEFAULT_TURN_LIMITS: TurnLimits = {
  turnBytes: 64 * 1024,
  turnMessages: 64,
  highWaterBytes: 64 * 1024,
  soloTurnBytes: 1024 * 1024,
  soloTurnMessages: 512,
};

/** How long after another host's last message a host still counts as sharing the relay. */
export const CONTENDED_MS = 500;

/**
 * Which hosts were busy lately, relay-wide: one host is contended while
 * another has handled a message within `windowMs`. Only the last two
 * distinct spenders are kept (O(1) per message); with more hosts that is an
 * approximation that errs towards contended.
 */
export class Contention {
  readonly #windowMs: number;
  readonly #now: () => number;
  #lastBy: object | undefined;
  #lastAt = Number.NEGATIVE_INFINITY;
  /** When someone other than #lastBy last spent. */
  #otherAt = Number.NEGATIVE_INFINITY;

  constructor(windowMs = CONTENDED_MS, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  note(host: object): void {
    const now = this.#now();
    if (host !== this.#lastBy) {
      this.#otherAt = this.#lastAt;
      this.#lastBy = host;
    }
    this.#lastAt = now;
  }

  contended(host: object): boolean {
    return this.#now() - (host === this.#lastBy ? this.#otherAt : this.#lastAt) <= this.#windowMs;
  }
}

interface Drainable {
  /** Handles up to `max` queued messages while the budget lasts; true while some are left. */
  drain(max: number): boolean;
}

/** One host's share of a turn, spent by its link's inbox and its clients' inboxes. */
export class TurnBudget {
  readonly limits: TurnLimits;
  readonly #contention: Contention | undefined;
  #bytes = 0;
  #messages = 0;
  #scheduled = false;
  /** Inboxes with messages left over, served round-robin next turn. */
  readonly #waiting = new Set<Drainable>();

  /** Without `contention`, every turn is a contended one (the smaller share). */
  constructor(limits: TurnLimits = DEFAULT_TURN_LIMITS, contention?: Contention) {
    this.limits = limits;
    this.#contention = contention;
  }

  get available(): boolean {
    if (this.#bytes < this.limits.turnBytes && this.#messages < this.limits.turnMessages) return true;
    if (this.#bytes >= this.limits.soloTurnBytes || this.#messages >= this.limits.soloTurnMessages) return false;
    return this.#contention !== undefined && !this.#contention.contended(this);
  }

  spend(bytes: number): void {
    // It renews on the next turn after something had to wait (no timer while traffic stays light):
    // at most one budget's work between two yields.
    this.#bytes += bytes;
    this.#messages++;
    this.#contention?.note(this);
  }

  wait(inbox: Drainable): void {
    this.#waiting.add(inbox);
    this.#schedule();
  }

  forget(inbox: Drainable): void {
    this.#waiting.delete(inbox);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#turn);
  }

  #turn = (): void => {
    this.#scheduled = false;
    this.#bytes = 0;
    this.#messages = 0;
    // Round-robin, one message each per pass, so one busy socket cannot take its host's whole turn.
    while (this.#waiting.size > 0 && this.available) {
      for (const inbox of [...this.#waiting]) {
        if (!this.available) break;
        this.#waiting.delete(inbox);
        // Back of the line: the next pass (or turn) starts with whoever was not served yet.
        if (inbox.drain(1)) this.#waiting.add(inbox);
      }
    }
    if (this.#waiting.size > 0) this.#schedule();
  };
}

export interface PausableSocket {
  pause(): void;
  resume(): void;
}

/** One socket's messages, handled within its host's budget. */
export class Inbox<T> implements Drainable {
  readonly #deliver: (item: T) => void;
  readonly #sizeOf: (item: T) => number;
  readonly #sock: PausableSocket;
  readonly #budget: TurnBudget;
  #queue: T[] = [];
  #head = 0;
  #queuedBytes = 0;
  #paused = false;
  #closed = false;

  constructor(budget: TurnBudget, sock: PausableSocket, sizeOf: (item: T) => number, deliver: (item: T) => void) {
    this.#budget = budget;
    this.#sock = sock;
    this.#sizeOf = sizeOf;
    this.#deliver = deliver;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  push(item: T): void {
    if (this.#closed) return;
    const n = this.#sizeOf(item);
    if (this.#head === this.#queue.length && this.#budget.available) {
      this.#budget.spend(n);
      this.#deliver(item);
      return;
    }
    this.#queue.push(item);
    this.#queuedBytes += n;
    if (!this.#paused && this.#queuedBytes > this.#budget.limits.highWaterBytes) {
      this.#paused = true;
      this.#sock.pause();
    }
    this.#budget.wait(this);
  }

  drain(max: number): boolean {
    for (let i = 0; i < max && !this.#closed && this.#head < this.#queue.length && this.#budget.available; i++) {
      const item = this.#queue[this.#head] as T;
      this.#queue[this.#head++] = undefined as T;
      const n = this.#sizeOf(item);
      this.#queuedBytes -= n;
      this.#budget.spend(n);
      this.#deliver(item);
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#paused && !this.#closed && this.#queuedBytes <= this.#budget.limits.highWaterBytes / 2) {
      this.#paused = false;
      this.#sock.resume();
    }
    return !this.#closed && this.#head < this.#queue.length;
  }

  /** The socket closed: what it sent before closing is still handled (at once), then nothing more. */
  close(): void {
    if (this.#closed) return;
    const rest = this.#queue.slice(this.#head);
    this.#dispose();
    for (const item of rest) this.#deliver(item);
  }

  #dispose(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#budget.forget(this);
  }
}

/**
 * Two reasons to stop reading one socket (no stream credit; a full inbox):
 * it reads again only when neither holds. A class, not closures: every idle
 * client has one.
 */
export class PauseGate {
  readonly #sock: PausableSocket;
  #credit = false;
  #inbox = false;

  constructor(sock: PausableSocket) {
    this.#sock = sock;
  }

  pauseCredit(): void {
    this.#credit = true;
    this.#sock.pause();
  }

  resumeCredit(): void {
    this.#credit = false;
    if (!this.#inbox) this.#sock.resume();
  }

  /** The inbox's side of the gate (made when a client first needs an inbox). */
  inboxSide(): PausableSocket {
    return {
      pause: () => {
        this.#inbox = true;
        this.#sock.pause();
      },
      resume: () => {
        this.#inbox = false;
        if (!this.#credit) this.#sock.resume();
      },
    };
  }
}
