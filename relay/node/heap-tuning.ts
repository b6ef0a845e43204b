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
 * times fewer full collections under the same load, with a few MiB more of
 * short-lived buffers between them. Set at run time (Node does not accept
 * the flag in NODE_OPTIONS) and only on Node 24 and later, whose V8 has it.
 */
import { setFlagsFromString } from "node:v8";

let done = false;

export function tuneHeapForByteTraffic(): void {
  if (done) return;
  done = true;
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= 24) setFlagsFromString("--external-memory-accounted-in-global-limit");
}
