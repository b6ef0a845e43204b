/** logs.tail's source: the gateway's recent log lines with a byte cursor that only grows. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LogRing } from "../../agent/log/ring.ts";
import { createLogger } from "../../agent/log/logger.ts";
import { gatewayLogRing } from "../../agent/log/ring.ts";

test("tail without a cursor gives the last lines; with the returned cursor, only what came after", () => {
  const ring = new LogRing("t");
  for (let i = 0; i < 10; i++) ring.push(`line ${i}`);
  const t = ring.tail({ limit: 3 });
  assert.deepEqual(t.lines, ["line 7", "line 8", "line 9"]);
  assert.equal(t.truncated, true);
  ring.push("line 10");
  const next = ring.tail({ cursor: t.cursor });
  assert.deepEqual(next.lines, ["line 10"]);
  assert.equal(next.cursor, t.cursor + "line 10\n".length);
  assert.deepEqual(ring.tail({ cursor: next.cursor }).lines, []);
});

test("old lines fall off by count and bytes; a cursor older than the ring says reset", () => {
  const ring = new LogRing("t", { maxLines: 5, maxBytes: 1000 });
  for (let i = 0; i < 20; i++) ring.push(`l${i}`);
  const all = ring.tail({ limit: 100 });
  assert.deepEqual(all.lines, ["l15", "l16", "l17", "l18", "l19"]);
  const stale = ring.tail({ cursor: 1 });
  assert.equal(stale.reset, true);
  assert.deepEqual(stale.lines, all.lines);
  const big = new LogRing("t", { maxLines: 100, maxBytes: 50 });
  for (let i = 0; i < 10; i++) big.push("x".repeat(20));
  assert.ok(big.tail({ limit: 100 }).lines.length <= 2);
  const cut = ring.tail({ limit: 100, maxBytes: 8 });
  assert.deepEqual(cut.lines, ["l18", "l19"], "maxBytes keeps the newest lines that fit");
});

test("a process keeps no log lines until a gateway enables the ring; then the logger feeds it, redacted", () => {
  const log = createLogger({ json: true, write: () => {} });
  log.info("before any gateway");
  assert.deepEqual(gatewayLogRing.tail().lines, [], "the relay and CLI hold nothing");
  gatewayLogRing.enable();
  log.info("ring check", { token: "ring-secret-token-value" });
  const lines = gatewayLogRing.tail({ limit: 5 }).lines;
  const line = lines.find((l) => l.includes("ring check"));
  assert.ok(line, "the line is in the ring");
  assert.ok(!line.includes("ring-secret-token-value"));
});
