/**
 * A long-running command writes Node's compile cache soon after it starts,
 * not only when it exits: a gateway stopped by SIGKILL still leaves its next
 * start warm (a checkout's start then skips Node's type stripper).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { startGateway, tempDir } from "../helpers/proc.ts";

function filesUnder(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    n += statSync(p).isDirectory() ? filesUnder(p) : 1;
  }
  return n;
}

const skip = process.env.NODE_DISABLE_COMPILE_CACHE
  ? "NODE_DISABLE_COMPILE_CACHE is set here: Node's compile cache is off"
  : false;

test("a gateway killed with SIGKILL after start-up has written its compile cache", { skip }, async () => {
  const cache = tempDir("loopgate-compile-cache-");
  const gw = await startGateway({ env: { NODE_COMPILE_CACHE: cache } });
  try {
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await gw.kill("SIGKILL");
  }
  const files = filesUnder(cache);
  assert.ok(files > 50, `the cache holds ${files} files`);
});
