/** run_command is not confined to the workspace, so it needs its own opt-in (tools.runCommand.enabled). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTools } from "../../agent/tools/builtin.ts";
import { validateConfig } from "../../shared/config/schema.ts";

const ctx = { signal: new AbortController().signal, sessionKey: "t" };

function tools(extra: { runCommandEnabled?: boolean; allow?: string[]; deny?: string[] }) {
  const workspace = mkdtempSync(join(tmpdir(), "loopgate-tools-"));
  const t = new BuiltinTools({
    allow: extra.allow ?? ["*"],
    deny: extra.deny ?? [],
    workspace,
    maxOutputBytes: 4096,
    timeoutMs: 5000,
    ...(extra.runCommandEnabled !== undefined ? { runCommandEnabled: extra.runCommandEnabled } : {}),
  });
  return { t, done: () => rmSync(workspace, { recursive: true, force: true }) };
}

test("without the opt-in, run_command is neither offered nor run, even with tools.allow ['*']", async () => {
  const { t, done } = tools({});
  try {
    const names = t.schemas().map((s) => s.function.name);
    assert.ok(!names.includes("run_command"), names.join(","));
    assert.ok(names.includes("read_file"));
    const r = await t.execute(
      "run_command",
      JSON.stringify({ command: process.execPath, args: ["-e", "console.log('ran')"] }),
      ctx,
    );
    assert.equal(r.ok, false);
    assert.doesNotMatch(r.output, /ran/);
    assert.match(r.output, /tools\.runCommand\.enabled/);
    assert.match(r.output, /not confined to the workspace/);
  } finally {
    done();
  }
});

test("with tools.runCommand.enabled it runs when tools.allow allows it; deny still wins", async () => {
  const on = tools({ runCommandEnabled: true });
  try {
    assert.ok(on.t.schemas().some((s) => s.function.name === "run_command"));
    const r = await on.t.execute(
      "run_command",
      JSON.stringify({ command: process.execPath, args: ["-e", "console.log('ran')"] }),
      ctx,
    );
    assert.equal(r.ok, true, r.output);
    assert.match(r.output, /ran/);
  } finally {
    on.done();
  }
  const denied = tools({ runCommandEnabled: true, deny: ["run_command"] });
  try {
    assert.equal((await denied.t.execute("run_command", JSON.stringify({ command: "true" }), ctx)).ok, false);
  } finally {
    denied.done();
  }
  const notAllowed = tools({ runCommandEnabled: true, allow: ["read_file"] });
  try {
    assert.equal((await notAllowed.t.execute("run_command", JSON.stringify({ command: "true" }), ctx)).ok, false);
  } finally {
    notAllowed.done();
  }
});

test("the config key exists and is a boolean", () => {
  assert.doesNotThrow(() => validateConfig({ tools: { runCommand: { enabled: true } } }, "test"));
  assert.throws(
    () => validateConfig({ tools: { runCommand: { enabled: "yes" } } }, "test"),
    /tools\.runCommand\.enabled/,
  );
});
