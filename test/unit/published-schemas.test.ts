/**
 * The gateway checks frames against the published OpenClaw schemas without
 * loading @openclaw/gateway-protocol's root module: its checks and error
 * texts must stay those of the package's own validators, and the running
 * gateway must not load the root (nor TypeBox's type builder) after all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import * as pkg from "@openclaw/gateway-protocol";
import {
  requestFrameValidator,
  connectParamsValidator,
  formatValidationErrors,
  missingScopeErrorShape,
} from "../../agent/gateway/published-schemas.ts";
import { startGateway } from "../helpers/proc.ts";
import { connectedClient, connectParams } from "../helpers/ws-client.ts";

const RUNS = Number(process.env.LOOPGATE_FUZZ_RUNS ?? 1000);

type PkgValidator = ((v: unknown) => boolean) & { errors: unknown };

/** Our verdict and text for `value`, and the package's. */
function both(
  ours: typeof requestFrameValidator,
  theirs: PkgValidator,
  value: unknown,
): { ours: [boolean, string]; theirs: [boolean, string] } {
  const ok = ours.check(value);
  const pkgOk = theirs(value);
  return {
    ours: [ok, ok ? "" : formatValidationErrors(ours.errors(value))],
    theirs: [pkgOk, pkgOk ? "" : pkg.formatValidationErrors(theirs.errors as never)],
  };
}

/** A valid connect's params with one to three random changes, at the top or in `client`/`auth`. */
const connectLike = fc
  .array(
    fc.record({
      where: fc.constantFrom("top", "client", "auth"),
      key: fc.constantFrom(
        "minProtocol",
        "maxProtocol",
        "client",
        "id",
        "version",
        "platform",
        "mode",
        "role",
        "scopes",
        "token",
        "caps",
        "locale",
        "extra",
      ),
      value: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 40 })),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .map((changes) => {
    const p = structuredClone(connectParams({ token: "t" })) as Record<string, Record<string, unknown>>;
    for (const c of changes) {
      const target = c.where === "top" ? (p as Record<string, unknown>) : p[c.where];
      if (target === null || typeof target !== "object") continue;
      if (c.value === undefined) delete target[c.key];
      else target[c.key] = c.value;
    }
    return p;
  });

test("connect params: the same verdict and error text as the package's validator", () => {
  const valid = connectParams({ token: "t" });
  assert.deepEqual(both(connectParamsValidator, pkg.validateConnectParams as PkgValidator, valid).ours, [true, ""]);
  fc.assert(
    fc.property(fc.oneof(connectLike, fc.anything({ maxDepth: 3 })), (value) => {
      const r = both(connectParamsValidator, pkg.validateConnectParams as PkgValidator, value);
      assert.deepEqual(r.ours, r.theirs);
    }),
    { numRuns: RUNS },
  );
});

test("request frames: the same verdict and error text as the package's validator", () => {
  const reqLike = fc.record(
    {
      type: fc.oneof(fc.constant("req"), fc.string({ maxLength: 8 })),
      id: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
      method: fc.oneof(fc.constant("health"), fc.string({ maxLength: 10 }), fc.constant(null)),
      params: fc.jsonValue({ maxDepth: 2 }),
      traceparent: fc.string({ maxLength: 200 }),
      extra: fc.string({ maxLength: 4 }),
    },
    { requiredKeys: [] },
  );
  let invalid = 0;
  fc.assert(
    fc.property(fc.oneof(reqLike, fc.anything({ maxDepth: 2 })), (value) => {
      const r = both(requestFrameValidator, pkg.validateRequestFrame as PkgValidator, value);
      if (!r.theirs[0]) invalid++;
      assert.deepEqual(r.ours, r.theirs);
    }),
    { numRuns: RUNS },
  );
  assert.ok(invalid > RUNS / 10, `the fuzz reached refusals (${invalid} of ${RUNS})`);
  assert.equal(requestFrameValidator.check({ type: "req", id: "1", method: "health" }), true);
});

test("a missing scope is the package's FORBIDDEN error, details and all", () => {
  for (const [missingScope, requiredScopes] of [
    ["operator.write", ["operator.write"]],
    ["operator.admin", []],
    ["operator.read", ["operator.read", "operator.write"]],
  ] as const)
    assert.deepEqual(
      missingScopeErrorShape({ missingScope, requiredScopes }),
      pkg.missingScopeErrorShape({ missingScope, requiredScopes: [...requiredScopes] }),
    );
});

test("the running gateway does not load the protocol package's root or TypeBox's type builder", async () => {
  // A module hook in the gateway's own process writes down every module it resolves.
  const dir = mkdtempSync(join(tmpdir(), "loopgate-mods-"));
  const list = join(dir, "resolved.txt");
  const hook = join(dir, "hook.mjs");
  writeFileSync(
    hook,
    `import { registerHooks } from "node:module";
     import { appendFileSync } from "node:fs";
     registerHooks({ resolve: (spec, ctx, next) => { const r = next(spec, ctx); appendFileSync(${JSON.stringify(list)}, r.url + "\\n"); return r; } });`,
  );
  const gw = await startGateway({
    args: ["--token", "footprint-token-0123456789"],
    env: { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}` },
  });
  try {
    // A client that connects and calls a method: every frame checked on the way.
    const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: "footprint-token-0123456789" });
    const res = await c.request("health", {});
    assert.equal(res.ok, true);
    const bad = await c.request("", {});
    assert.equal(bad.ok, false);
    c.close();
  } finally {
    await gw.kill();
  }
  const resolved = readFileSync(list, "utf8").split("\n").filter(Boolean);
  assert.ok(
    resolved.some((u) => u.includes("/agent/gateway/published-schemas.ts")),
    "the hook saw the gateway's own modules",
  );
  assert.deepEqual(
    resolved.filter((u) => /@openclaw\/gateway-protocol\/dist\/(index|schema|worktrees)/.test(u)),
    [],
    "the package's root or its schema builder was loaded",
  );
  assert.deepEqual(
    resolved.filter((u) => /\/typebox\/build\/(type|typebox|value|compile)\//.test(u)),
    [],
    "TypeBox's type builder or value module was loaded",
  );
});
