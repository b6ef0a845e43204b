/**
 * V8's collection trigger for processes that move bytes (the relay, the
 * link). Every buffer they receive (TLS reads, ws's reassembly) is an
 * ArrayBuffer outside the JavaScript heap that dies young; by default V8
 * counts those bytes against a fixed external-memory limit and runs a full
 * mark-compact every few tens of MiB of them, with no young-generation
 * collection in between (these processes allocate few JavaScript objects).
 * Under 1-stream throughput the relay ran about 30 full collections in 4 s,
 * a third of its CPU; while one host flooded, they were the other hosts'
 * longest waits.
 *
 * --external-memory-accounted-in-global-limit makes V8 weigh external bytes
 * in its global heap limit, which grows with the live heap: measured, 3-5
 * times fewer full collections under the same load. The price is garbage
 * that waits longer: after a flood the relay kept ~85 MiB of dead buffers
 * (and ~80 MiB more resident memory) with nothing to trigger a collection
 * once traffic stopped. So an idle collector runs one full collection when
 * the process has gone quiet (event loop under 5 % busy over 10 s) with more
 * than 32 MiB of buffers alive: an idle relay gives its memory back, a busy
 * one is left to V8.
 *
 * Both are set at run time (Node does not accept these flags in
 * NODE_OPTIONS), and only on Node 24 and later, whose V8 has the first.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { performance, type EventLoopUtilization } from "node:perf_hooks";

/** How often the idle collector looks, and what it calls quiet and worth collecting. */
export const IDLE_COLLECT = { intervalMs: 10_000, maxBusy: 0.05, minArrayBufferBytes: 32 * 1024 * 1024 };

let done = false;

export function tuneHeapForByteTraffic(): void {
  if (done) return;
  done = true;
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) return;
  setFlagsFromString("--external-memory-accounted-in-global-limit");
  startIdleCollector();
}

type Gc = (options?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => void;

/** V8's gc(), made available for this module only (a new context; the global scope is left alone). */
function gcFunction(): Gc | null {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as Gc) : null;
  } catch {
    return null;
  }
}

/** Collects once when the process is quiet and holds many buffers; returns a stop function. */
export function startIdleCollector(o: typeof IDLE_COLLECT = IDLE_COLLECT, gc: Gc | null = gcFunction()): () => void {
  if (!gc) return () => {};
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy < o.maxBusy && process.memoryUsage().arrayBuffers > o.minArrayBufferBytes)
      gc({ type: "major", execution: "async" });
  }, o.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
