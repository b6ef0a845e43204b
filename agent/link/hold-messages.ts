/**
 * Holds what a client sends on a stream while the host is still deciding how
 * to open it (an async check before the upstream connection exists), then
 * hands it on in order. Each held message keeps its credit until it is handed
 * on, so the client can never send more than its window meanwhile.
 */
import type { LinkStream } from "../../shared/link/stream.ts";

export interface HeldMessages {
  /**
   * Gives the held messages, in order, to the stream's `onMessage` as set
   * now; if nothing replaced the hold (a GET has no body to read), the
   * handler from before the hold takes them and what follows.
   */
  replay(): void;
  /** Drops them (returning their credit). */
  drop(): void;
}

export function holdMessages(stream: LinkStream): HeldMessages {
  const held: { data: string | Uint8Array; binary: boolean; release: () => void; bytes: number }[] = [];
  const hold = (data: string | Uint8Array, binary: boolean, release: () => void, bytes: number) =>
    void held.push({ data, binary, release, bytes });
  const previous = stream.onMessage;
  stream.onMessage = hold;
  return {
    replay() {
      if (stream.onMessage === hold) stream.onMessage = previous;
      for (const m of held.splice(0)) stream.onMessage(m.data, m.binary, m.release, m.bytes);
    },
    drop() {
      for (const m of held.splice(0)) m.release();
    },
  };
}
