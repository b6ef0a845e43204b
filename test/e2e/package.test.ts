/**
 * loopgate as an installed package: `npm pack`, `npm install -g` of the
 * tarball into a clean prefix, and the installed executable running the
 * gateway, the CLI and the relay on the pinned Node 24 with production
 * dependencies only. On an unsupported Node the executable says which Node it
 * needs instead of failing with a SyntaxError.
 */
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runProcess, tempDir } from "../helpers/proc.ts";

function npm(args: string[], cwd: string): string {
  return execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    timeout: 240_000,
  });
}

/** A Node older than 22.18 on PATH (this machine's system Node), if there is one. */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = join(dir, "node");
    if (!existsSync(p)) continue;
    const r = spawnSync(p, ["-p", "process.versions.node"], { encoding: "utf8" });
    const [maj = 0, min = 0] = r.stdout.trim().split(".").map(Number);
    if (r.status === 0 && (maj < 22 || (maj === 22 && min < 18))) return p;
  }
  return undefined;
}

describe("the packed package, installed with npm install -g", () => {
  let bin: string;
  let files: string[];
  before(async () => {
    const out = tempDir("loopgate-pack-");
    const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", out], ROOT)) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed[0]!.files.map((f) => f.path);
    const prefix = tempDir("loopgate-prefix-");
    // Production dependencies only; the npm cache that `npm ci` filled serves them.
    npm(["install", "-g", "--prefix", prefix, "--prefer-offline", join(out, packed[0]!.filename)], out);
    bin = join(prefix, "lib", "node_modules", "loopgate", "agent", "bin", "loopgate.mjs");
    assert.ok(existsSync(bin), "the installed package has its executable");
    assert.ok(existsSync(join(prefix, "bin", "loopgate")), "npm linked the loopgate binary");
  });

  test("ships JavaScript only, no TypeScript source, tests, keys or certificates", () => {
    assert.ok(files.includes("dist/agent/cli/main.js"));
    assert.ok(files.includes("dist/agent/ui/index.html"), "the Control UI's files ship beside the gateway code");
    const bad = files.filter(
      (f) => /\.(ts|pem|key)$/.test(f) || f.startsWith("test/") || f.startsWith("node_modules/"),
    );
    assert.deepEqual(bad, []);
    assert.ok(!existsSync(join(ROOT, "dist")), "postpack removed the build from the checkout");
  });

  test("gateway run and health from the installed package on the pinned Node", async () => {
    const home = tempDir("loopgate-pkg-home-");
    const env = {
      HOME: home,
      LOOPGATE_STATE_DIR: home,
      LOOPGATE_CONFIG: "",
      OPENCLAW_GATEWAY_TOKEN: "pkg-test-token",
      OPENCLAW_GATEWAY_PORT: "",
      OPENCLAW_GATEWAY_URL: "",
    };
    const gw = runProcess(process.execPath, [bin, "gateway", "run", "--port", "0", "--json"], { env, cwd: home });
    try {
      const ready = JSON.parse(await gw.waitForLine((l) => l.includes('"ready"'), 30_000)) as { port: number };
      const h = spawnSync(
        process.execPath,
        [bin, "health", "--url", `ws://127.0.0.1:${ready.port}`, "--token", "pkg-test-token", "--json"],
        { env, cwd: home, encoding: "utf8", timeout: 30_000 },
      );
      assert.equal(h.status, 0, h.stderr);
      assert.equal(JSON.parse(h.stdout).ok, true);
    } finally {
      await gw.kill();
    }
  });

  test("relay serve from the installed package prints its pin", async () => {
    const home = tempDir("loopgate-pkg-relay-");
    const relay = runProcess(process.execPath, [bin, "relay", "serve", "--port", "0", "--json"], {
      env: { HOME: home, LOOPGATE_STATE_DIR: home, LOOPGATE_CONFIG: "" },
      cwd: home,
    });
    try {
      const ready = JSON.parse(await relay.waitForLine((l) => l.includes('"ready"'), 30_000)) as {
        pin: string;
        port: number;
      };
      assert.match(ready.pin, /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assert.ok(ready.port > 0);
    } finally {
      await relay.kill();
    }
  });

  test("an unsupported Node gets a sentence naming the Node it needs", {
    skip: oldNode() ? false : "no Node older than 22.18 on PATH to try",
  }, () => {
    const r = spawnSync(oldNode()!, [bin, "--help"], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /loopgate needs Node 22\.18 or newer .*this is Node v\d+/);
    assert.match(r.stderr, /Install Node 24/);
    assert.doesNotMatch(r.stderr, /SyntaxError/);
  });

  test("the checkout's executable still runs from source (no dist/ needed)", () => {
    assert.ok(!readdirSync(ROOT).includes("dist"));
    const r = spawnSync(process.execPath, [join(ROOT, "agent", "bin", "loopgate.mjs"), "--version"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
  });
});
