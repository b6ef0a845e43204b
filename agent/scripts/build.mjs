#!/usr/bin/env node
// Builds the npm package's JavaScript (npm pack / publish run it as `prepack`).
// Node never strips types under node_modules, so an installed loopgate must be
// plain JavaScript: tsc emits dist/ with `.ts` import specifiers rewritten to
// `.js`, and the Control UI's static files are copied beside the gateway code
// that serves them. The checkout itself keeps running from source.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dist = `${root}dist/`;
rmSync(dist, { recursive: true, force: true });
// Run through npm (`npm run build`), which puts the project's tsc on PATH.
execFileSync("tsc", ["-p", `${root}agent/tsconfig.build.json`], { stdio: ["ignore", 2, 2] });
cpSync(`${root}agent/ui`, `${dist}agent/ui`, { recursive: true });
// agent/version.ts reads ../package.json relative to itself; give dist its own.
const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8"));
writeFileSync(
  `${dist}package.json`,
  `${JSON.stringify({ name: pkg.name, version: pkg.version, type: "module", private: true }, null, 2)}\n`,
);
process.stderr.write(`built dist/ for ${pkg.name} ${pkg.version}\n`);
