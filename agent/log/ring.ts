/**
 * The gateway's own recent log lines, kept in memory for `logs.tail`: each
 * line as the logger wrote it (already redacted), with a byte cursor that
 * only grows, like an offset into a log file that is never rotated under the
 * reader. Bounded by lines and bytes; the oldest lines go first.
 */
export const RING_MAX_LINES = 2000;
export const RING_MAX_BYTES = 1024 * 1024;

export interface TailResult {
  file: string;
  cursor: number;
  size: number;
  lines: string[];
  truncated?: boolean;
  reset?: boolean;
}

export class LogRing {
  readonly name: string;
  /** Lines are kept only once enabled (by the gateway), so other processes that log (the relay) hold nothing. */
  #enabled: boolean;
  #lines: { end: number; text: string }[] = [];
  #bytes = 0;
  #end = 0;
  readonly #maxLines: number;
  readonly #maxBytes: number;

  constructor(name = "gateway", opts: { maxLines?: number; maxBytes?: number; enabled?: boolean } = {}) {
    this.name = name;
    this.#enabled = opts.enabled ?? true;
    this.#maxLines = opts.maxLines ?? RING_MAX_LINES;
    this.#maxBytes = opts.maxBytes ?? RING_MAX_BYTES;
  }

  enable(): void {
    this.#enabled = true;
  }

  push(line: string): void {
    if (!this.#enabled) return;
    const size = Buffer.byteLength(line) + 1;
    this.#end += size;
    this.#bytes += size;
    this.#lines.push({ end: this.#end, text: line });
    while (this.#lines.length > this.#maxLines || (this.#bytes > this.#maxBytes && this.#lines.length > 1)) {
      const old = this.#lines.shift()!;
      this.#bytes -= Buffer.byteLength(old.text) + 1;
    }
  }

  /** The byte offset of the oldest line still held. */
  get start(): number {
    return this.#end - this.#bytes;
  }

  /**
   * Lines after `cursor` (or the last `limit` lines without one), at most
   * `limit` lines and `maxBytes` bytes, newest kept when cut.
   */
  tail(opts: { cursor?: number; limit?: number; maxBytes?: number } = {}): TailResult {
    const limit = opts.limit ?? 200;
    const maxBytes = opts.maxBytes ?? 256 * 1024;
    let reset = false;
    let from = this.#lines;
    if (opts.cursor !== undefined) {
      if (opts.cursor > this.#end || opts.cursor < this.start) reset = true;
      else from = this.#lines.filter((l) => l.end > opts.cursor!);
    }
    let picked = from.slice(-limit);
    let truncated = picked.length < from.length;
    let bytes = 0;
    let i = picked.length;
    while (i > 0 && bytes + Buffer.byteLength(picked[i - 1]!.text) + 1 <= maxBytes)
      bytes += Buffer.byteLength(picked[--i]!.text) + 1;
    if (i > 0) {
      picked = picked.slice(i);
      truncated = true;
    }
    return {
      file: this.name,
      cursor: this.#end,
      size: this.#end,
      lines: picked.map((l) => l.text),
      ...(truncated ? { truncated } : {}),
      ...(reset ? { reset } : {}),
    };
  }
}

/** The process-wide ring every logger made by createLogger writes to, once a gateway starts in this process. */
export const gatewayLogRing = new LogRing("loopgate-gateway (in memory)", { enabled: false });
