/**
 * `loopgate relay serve` runs the relay alone: the executable dispatches it
 * to the lean entry, which loads neither the CLI framework (commander) nor
 * the config schema (typebox, ~650 modules) when there is no config file,
 * nor any gateway module. The modules are read from a loader hook in the
 * relay process itself. Its options parse the same through either entry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runCli, tempDir, ROOT } from "../helpers/proc.ts";
import { parseRelayServeArgs } from "../../agent/cli/relay-serve-options.ts";
import { LoopgateError } from "../../shared/errors.ts";

/** A loader hook that writes every module URL the process loaded to `out` when it exits. */
function moduleRecorder(out: string): string {
  const hook = join(tempDir("loopgate-hook-"), "record.mjs");
  writeFileSync(
    hook,
    `import { registerHooks } from "node:module";\nimport { writeFileSync } from "node:fs";\nconst seen = new Set();\n` +
      `registerHooks({ load(url, ctx, next) { seen.add(url); return next(url, ctx); } });\n` +
      `process.on("exit", () => writeFileSync(${JSON.stringify(out)}, [...seen].join("\\n")));\n`,
  );
  return hook;
}

async function modulesOf(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const dir = tempDir("loopgate-lean-");
  const out = join(dir, "modules.txt");
  const p = runCli(["relay", "serve", "--port", "0", "--json", ...args], {
    env: {
      LOOPGATE_STATE_DIR: dir,
      HOME: dir,
      LOOPGATE_CONFIG: "",
      NODE_OPTIONS: `--import ${pathToFileURL(moduleRecorder(out)).href}`,
      ...env,
    },
  });
  await p.waitForLine((l) => l.includes('"ready"'), 20_000);
  // Stopped the moment it says ready, it still shuts down cleanly (signals are handled before the announcement).
  assert.equal(await p.kill("SIGTERM"), 0, p.stderr.join("\n"));
  assert.ok(existsSync(out), "the recorder wrote the module list");
  const root = pathToFileURL(ROOT).href;
  // Our own files relative to the checkout; packages keep their URL (node_modules may be a link elsewhere).
  return readFileSync(out, "utf8")
    .split("\n")
    .map((u) => (u.startsWith(root) && !u.includes("/node_modules/") ? u.slice(root.length) : u));
}

test("relay serve loads the relay alone: no commander, no gateway, no config schema without a config file", async () => {
  const mods = await modulesOf([]);
  assert.ok(mods.includes("agent/cli/relay-main.ts"), "the lean entry ran");
  assert.ok(mods.includes("relay/node/server.ts"));
  for (const m of mods) {
    assert.ok(!m.includes("node_modules/commander/"), `loaded ${m}`);
    assert.ok(!m.includes("node_modules/typebox/"), `loaded ${m}`);
    assert.ok(
      !m.startsWith("agent/gateway/") && !m.startsWith("agent/link/") && m !== "agent/cli/main.ts",
      `loaded ${m}`,
    );
  }
  // With a config file, it is validated at the boundary (and the schema is loaded for that).
  const dir = tempDir("loopgate-lean-cfg-");
  const cfg = join(dir, "config.json5");
  writeFileSync(cfg, "{ relay: { host: '127.0.0.1' } }");
  const withConfig = await modulesOf(["--config", cfg]);
  assert.ok(withConfig.some((m) => m.includes("node_modules/typebox/")));
});

test("relay serve's options parse from the shared table", () => {
  const { flags, config } = parseRelayServeArgs([
    "--port",
    "0",
    "--allow-host",
    "a,b",
    "--allow-host",
    "c",
    "--metrics-per-host",
    "--metrics-token-file",
    "f",
    "--config",
    "x.json5",
    "--max-streams-per-addr=5",
  ]);
  assert.deepEqual(flags, {
    port: "0",
    allowHost: ["a,b", "c"],
    metricsPerHost: true,
    metricsTokenFile: "f",
    maxStreamsPerAddr: "5",
  });
  assert.equal(config, "x.json5");
  assert.throws(
    () => parseRelayServeArgs(["--bogus"]),
    (e: unknown) => e instanceof LoopgateError && e.code === "USAGE",
  );
  assert.throws(
    () => parseRelayServeArgs(["stray"]),
    (e: unknown) => e instanceof LoopgateError && e.code === "USAGE",
  );
});
