/**
 * Property-based fuzzing of the gateway's frame parser and connect-params
 * check (bounded runs): any input is either a valid req or a refusal with
 * INVALID_REQUEST, never a throw, and deep nesting is refused before parsing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseClientFrame, checkConnectParams } from "../../agent/gateway/protocol.ts";

const RUNS = Number(process.env.LOOPGATE_FUZZ_RUNS ?? 2000);

test("fuzz: arbitrary strings never throw; refusals are INVALID_REQUEST with a bounded message", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 400 }),
        fc.json({ maxDepth: 6 }),
        fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
      ),
      (text) => {
        const r = parseClientFrame(text);
        if (!r.ok) {
          assert.equal(r.error.code, "INVALID_REQUEST");
          assert.ok(r.error.message.length <= 600);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test("fuzz: req-shaped objects with wrong types are refused and keep a bounded id", () => {
  fc.assert(
    fc.property(
      fc.record(
        {
          type: fc.oneof(fc.constant("req"), fc.string()),
          id: fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.constant(null)),
          method: fc.anything(),
          params: fc.anything(),
        },
        { requiredKeys: [] },
      ),
      (obj) => {
        let text: string;
        try {
          text = JSON.stringify(obj);
        } catch {
          return;
        }
        const r = parseClientFrame(text);
        if (!r.ok && r.id !== undefined) assert.ok(r.id.length <= 128);
      },
    ),
    { numRuns: RUNS },
  );
});

test("deep nesting is refused before JSON.parse, whatever the nesting is made of", () => {
  fc.assert(
    fc.property(fc.integer({ min: 65, max: 5000 }), fc.constantFrom("[", '{"a":'), (depth, open) => {
      const r = parseClientFrame(open.repeat(depth));
      assert.equal(r.ok, false);
      assert.match((r as { error: { message: string } }).error.message, /nests deeper/);
    }),
    { numRuns: 200 },
  );
});

test("fuzz: connect params of any shape are accepted only when well-formed", () => {
  fc.assert(
    fc.property(fc.anything(), (p) => {
      const r = checkConnectParams(p);
      if (r.ok) {
        assert.equal(typeof r.params.minProtocol, "number");
        assert.equal(typeof r.params.client.id, "string");
      } else assert.equal(typeof r.message, "string");
    }),
    { numRuns: RUNS },
  );
});

test("connect from a newer OpenClaw client: modelCatalog (not in the published 2026.9.1 schema) is accepted when small, refused otherwise", () => {
  const base = {
    minProtocol: 4,
    maxProtocol: 4,
    client: { id: "openclaw-control-ui", version: "2026.9.6", platform: "linux", mode: "webchat" },
    caps: ["model-catalog-snapshot"],
  };
  assert.equal(checkConnectParams({ ...base, modelCatalog: { agentId: "main" } }).ok, true);
  const bad = checkConnectParams({ ...base, modelCatalog: "all" });
  assert.equal(bad.ok, false);
  assert.match((bad as { message: string }).message, /modelCatalog must be a small object/);
  assert.equal(checkConnectParams({ ...base, modelCatalog: { x: "y".repeat(2000) } }).ok, false);
  assert.equal(checkConnectParams({ ...base, somethingElse: 1 }).ok, false, "other unknown fields are still refused");
});
