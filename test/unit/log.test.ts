import { test } from "node:test";
import assert from "node:assert/strict";
import { createLineLogger, type LogEntry } from "../../shared/log.ts";

test("the line logger writes one JSON line per entry at or above its level, with base and child fields", () => {
  const out: LogEntry[] = [];
  const log = createLineLogger({ level: "info", base: { svc: "relay" }, write: (e) => out.push(e) });
  log.debug("hidden");
  log.info("up", { port: 1 });
  log.child({ hostId: "h" }).warn("slow", { ms: 5 });
  assert.equal(out.length, 2);
  const [a, b] = out.map((e) => JSON.parse(e.line) as Record<string, unknown>);
  assert.equal(a!.level, "info");
  assert.equal(a!.msg, "up");
  assert.equal(a!.svc, "relay");
  assert.equal(a!.port, 1);
  assert.ok(typeof a!.ts === "string" && !Number.isNaN(Date.parse(a!.ts)));
  assert.deepEqual(
    { level: b!.level, msg: b!.msg, svc: b!.svc, hostId: b!.hostId, ms: b!.ms },
    {
      level: "warn",
      msg: "slow",
      svc: "relay",
      hostId: "h",
      ms: 5,
    },
  );
});

test("scrub sees the message and the fields before anything is written", () => {
  const lines: string[] = [];
  const log = createLineLogger({
    scrub: (v) => (typeof v === "string" ? v.replaceAll("s3cret", "[x]") : { ...(v as object), token: "[x]" }),
    write: (e) => lines.push(e.line),
  });
  log.error("leaked s3cret", { token: "s3cret" });
  assert.equal(lines.length, 1);
  assert.ok(!lines[0]!.includes("s3cret"));
});
