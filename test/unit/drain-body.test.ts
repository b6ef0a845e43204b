import { test } from "node:test";
import assert from "node:assert/strict";
import { drainUnreadBody } from "../../relay/core/drain-body.ts";

/** A POST whose body is `chunks` chunks of `size` bytes, counting what was pulled and whether it was cancelled. */
function post(chunks: number, size: number, headers: Record<string, string> = {}) {
  const seen = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (seen.pulled === chunks) return c.close();
      seen.pulled++;
      c.enqueue(new Uint8Array(size));
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  const req = new Request("https://relay.test/h/x/api", {
    method: "POST",
    body,
    headers,
    duplex: "half",
  } as RequestInit);
  return { req, seen };
}

test("a body the answer did not read is read to its end", async () => {
  const { req, seen } = post(5, 1000);
  await drainUnreadBody(req, 8 * 1024);
  assert.equal(seen.pulled, 5);
  assert.equal(seen.cancelled, false);
});

test("a body declared larger than the limit is not read at all", async () => {
  const { req, seen } = post(5, 1000, { "content-length": String(9 * 1024) });
  await drainUnreadBody(req, 8 * 1024);
  assert.ok(seen.pulled <= 1, `read ${seen.pulled} chunks`);
  assert.equal(seen.cancelled, true);
});

test("an undeclared body is read no further than the limit", async () => {
  const { req, seen } = post(100, 1000);
  await drainUnreadBody(req, 8 * 1024);
  assert.ok(seen.pulled <= 10, `read ${seen.pulled} chunks`);
  assert.equal(seen.cancelled, true);
});

test("a body the answer already read is left alone", async () => {
  const { req, seen } = post(2, 10);
  await req.arrayBuffer();
  const pulled = seen.pulled;
  await drainUnreadBody(req, 8 * 1024);
  assert.equal(seen.pulled, pulled);
});
