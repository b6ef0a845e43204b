// The relay's idle collector: one full collection when the process is quiet and holds many buffers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startIdleCollector } from "../../relay/node/heap-tuning.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("idle collector: collects when quiet with buffers over the floor, never while busy or under it", async () => {
  const calls: unknown[] = [];
  const gc = (o?: unknown) => void calls.push(o);
  const held = new ArrayBuffer(1024 * 1024);
  // Quiet (anything under 100 % busy) and over a 0-byte floor: it collects, a major collection, asynchronously.
  let stop = startIdleCollector({ intervalMs: 20, maxBusy: 1.01, minArrayBufferBytes: 0 }, gc);
  await wait(120);
  stop();
  assert.ok(calls.length >= 2, `collected ${calls.length} times`);
  assert.deepEqual(calls[0], { type: "major", execution: "async" });
  // Never quiet enough (0 % busy is the bar): no collection.
  calls.length = 0;
  stop = startIdleCollector({ intervalMs: 20, maxBusy: 0, minArrayBufferBytes: 0 }, gc);
  await wait(120);
  stop();
  assert.equal(calls.length, 0);
  // Quiet but holding less than the floor: no collection.
  stop = startIdleCollector({ intervalMs: 20, maxBusy: 1.01, minArrayBufferBytes: 1024 ** 4 }, gc);
  await wait(120);
  stop();
  assert.equal(calls.length, 0);
  assert.equal(held.byteLength, 1024 * 1024);
});

test("idle collector: without V8's gc() it does nothing (and stops cleanly)", () => {
  const stop = startIdleCollector({ intervalMs: 20, maxBusy: 1.01, minArrayBufferBytes: 0 }, null);
  stop();
});
