/**
 * Link liveness: ping every `intervalMs`; if nothing at all was received for
 * `timeoutMs`, the link is dead (a peer or a proxy that silently drops
 * packets is noticed in bounded time).
 */
/**
 * The host's keepalive on the link is a text message, not a link frame, so a
 * relay on Workers answers it with a WebSocket auto-response without waking
 * the Durable Object (idle hosts cost nothing). The Node relay answers it too.
 */
export const LINK_PING_TEXT = "loopgate.ping";
export const LINK_PONG_TEXT = "loopgate.pong";

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  ping: () => void;
  lastReceivedAt: () => number;
  onDead: (silentForMs: number) => void;
  now?: () => number;
}

export class Heartbeat {
  readonly #o: HeartbeatOptions;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(o: HeartbeatOptions) {
    this.#o = o;
  }

  start(): void {
    this.stop();
    this.#timer = setInterval(() => this.tick(), this.#o.intervalMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** One check: declare death or ping. Exposed for tests and for runtimes that drive time themselves (alarms). */
  tick(): void {
    const now = (this.#o.now ?? Date.now)();
    const silent = now - this.#o.lastReceivedAt();
    if (silent > this.#o.timeoutMs) {
      this.stop();
      this.#o.onDead(silent);
      return;
    }
    this.#o.ping();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
