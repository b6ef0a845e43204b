#!/usr/bin/env node
// loopgate's executable. Plain JavaScript that every Node can parse, so that
// an unsupported Node gets a sentence instead of a SyntaxError.
//
// - Installed as a package: runs the JavaScript build in ../../dist (Node never
//   strips types under node_modules, so the package ships no TypeScript).
// - In a checkout: runs the TypeScript source with Node's own type stripping
//   (Node >= 22.18); on an older Node it re-runs itself with the Node 24 that
//   `npm install` put in node_modules (the `node` devDependency).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as nodeModule from "node:module";

const NEED = "22.18";
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
const supported = major > 22 || (major === 22 && minor >= 18);
// `relay serve` runs from its own lean entry: the relay alone, without the
// CLI framework and the gateway's commands (the same rule as
// isLeanRelayServe in agent/cli/relay-serve-options.ts; --help goes to the full CLI).
const args = process.argv.slice(2);
const entry =
  args[0] === "relay" && args[1] === "serve" && !args.some((a) => a === "-h" || a === "--help" || a === "--")
    ? "relay-main"
    : "main";
const source = fileURLToPath(new URL(`../cli/${entry}.ts`, import.meta.url));
const built = fileURLToPath(new URL(`../../dist/agent/cli/${entry}.js`, import.meta.url));
const pinned = fileURLToPath(new URL("../../node_modules/node/bin/node", import.meta.url));
const fromSource = existsSync(source);

// The relay (and a standalone link, one local socket per stream) holds
// thousands of idle sockets. During a burst of connections V8 grows its young
// generation up to 2 x 64 MiB, and an idle process allocates too little to
// shrink it again for minutes (~7 KiB per client at 10,000 clients). 16 MiB
// semi-spaces, V8's long-time default, cost no measurable throughput on the
// relay (bench/). Heap sizes are read only when Node starts: the process
// re-executes itself once with the flag (the same process, same pid); a flag
// given in NODE_OPTIONS or on the command line wins, and a Node without
// process.execve runs as it is.
const holdsIdleSockets = entry === "relay-main" || args[0] === "link";
const nodeFlags = (holdsIdleSockets ? ["--max-semi-space-size=16"] : []).filter((f) => {
  const name = f.split("=")[0];
  return !process.execArgv.some((a) => a.startsWith(name)) && !(process.env.NODE_OPTIONS ?? "").includes(name);
});

if (supported) {
  if (nodeFlags.length > 0 && typeof process.execve === "function") {
    const self = fileURLToPath(import.meta.url);
    try {
      process.execve(
        process.execPath,
        [process.execPath, ...process.execArgv, ...nodeFlags, self, ...args],
        process.env,
      );
    } catch {
      // Not replaceable here (a platform without execve): run as is.
    }
  }
  // Node's on-disk compile cache keeps compiled (and type-stripped) modules:
  // a CLI call starts ~25 % sooner and ~20 MiB smaller, since the stripper is
  // not even loaded on a cache hit. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  // Node writes new entries when the process exits; a gateway, relay or link
  // runs until it is stopped, perhaps by SIGKILL, which would leave its next
  // start cold (and ~20 MiB larger). So new entries are also written two
  // seconds in, and each minute after that for what loads later (a slow
  // start, a module loaded at first use); a write with nothing new is cheap.
  nodeModule.enableCompileCache?.();
  const flushCompileCache = () => nodeModule.flushCompileCache?.();
  setTimeout(flushCompileCache, 2000).unref();
  setInterval(flushCompileCache, 60_000).unref();
  await import(fromSource ? source : built);
} else if (fromSource && existsSync(pinned)) {
  const r = spawnSync(pinned, [...nodeFlags, source, ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
} else {
  process.stderr.write(
    `loopgate needs Node ${NEED} or newer (Node 22 LTS from 22.18, or Node 24 LTS); this is Node ${process.version}.\n` +
      (fromSource
        ? "In a loopgate checkout, run `npm install` first: it brings the pinned Node 24 that loopgate then uses by itself.\n"
        : "Install Node 24 LTS (for example `nvm install 24`, or your system's nodejs package), then run loopgate again.\n"),
  );
  process.exit(1);
}
