#!/usr/bin/env node
// loopgate's executable. The CLI is TypeScript run by Node's own type
// stripping (Node >= 22.18). On an older Node, re-run with the Node 24 that
// `npm install` put in node_modules (the `node` devDependency).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { enableCompileCache } from "node:module";

const [major, minor] = process.versions.node.split(".").map(Number);
const stripsTypes = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
const main = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

if (stripsTypes) {
  // Node's on-disk compile cache keeps the type-stripped, compiled modules:
  // a CLI call starts ~25 % sooner and ~20 MiB smaller, since the stripper is
  // not even loaded on a cache hit. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  enableCompileCache?.();
  await import(main);
} else {
  const pinned = fileURLToPath(new URL("../../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`loopgate needs Node 22.18+ (this is ${process.version}); run \`npm install\` in the loopgate checkout to get the pinned Node 24.\n`);
    process.exit(1);
  }
  const r = spawnSync(pinned, [main, ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
