/**
 * The real `openclaw` npm package as an interop peer. Installed once with
 * --ignore-scripts into a cache folder outside the repo (LOOPGATE_INTEROP_DIR,
 * default: the temp dir), into a staging folder renamed into place so that
 * parallel test files never see half an install; the install is time-bounded
 * and a failure becomes a loud skip with the reason. Run on the pinned Node 24
 * with a private HOME so it never touches the user's.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tempDir } from "./proc.ts";
import type { AnyJson } from "./ws-client.ts";

export const OPENCLAW_VERSION = process.env.LOOPGATE_OPENCLAW_VERSION ?? "2026.9.6";
const INSTALL_TIMEOUT_MS = Number(process.env.LOOPGATE_OPENCLAW_INSTALL_TIMEOUT_MS ?? 420_000);

export function openclawDir(): string {
  return process.env.LOOPGATE_INTEROP_DIR ?? join(tmpdir(), `loopgate-openclaw-${OPENCLAW_VERSION}`);
}

/**
 * Slow cases that start a real OpenClaw gateway stay opt-in (LOOPGATE_INTEROP=1);
 * the interop suites against loopgate's gateway always run.
 */
export function interopEnabled(): string | undefined {
  return process.env.LOOPGATE_INTEROP === "1"
    ? undefined
    : "cases that start a real OpenClaw gateway are opt-in: set LOOPGATE_INTEROP=1";
}

/**
 * Where a failed install leaves its reason, so the other interop files of the
 * same run skip with it at once instead of each retrying a slow install.
 * It is trusted for ten minutes; `node test/interop/install.ts` clears it.
 */
export function installFailureMarker(): string {
  return `${openclawDir()}.install-failed`;
}

let unavailable: string | undefined | null = null;
/** Undefined when the package is installed (installing it if need be), else why not; logs the reason loudly. */
export function openclawUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable;
  const marker = installFailureMarker();
  const entry = join(openclawDir(), "node_modules", "openclaw", "openclaw.mjs");
  if (!existsSync(entry) && existsSync(marker) && Date.now() - statSync(marker).mtimeMs < 600_000) {
    unavailable = readFileSync(marker, "utf8").trim();
  } else {
    try {
      ensureOpenclaw();
      unavailable = undefined;
    } catch (e) {
      unavailable = `the real openclaw@${OPENCLAW_VERSION} package could not be installed (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`;
      writeFileSync(marker, unavailable);
    }
  }
  if (unavailable) console.warn(`\n*** SKIPPING OpenClaw interop: ${unavailable} ***\n`);
  return unavailable;
}

/** Returns the path of openclaw.mjs, installing the package into the cache on first use. */
export function ensureOpenclaw(): string {
  const dir = openclawDir();
  const entry = join(dir, "node_modules", "openclaw", "openclaw.mjs");
  if (existsSync(entry)) return entry;
  const staging = `${dir}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, "package.json"), JSON.stringify({ name: "openclaw-interop", private: true }));
  try {
    execFileSync(
      "npm",
      ["install", `openclaw@${OPENCLAW_VERSION}`, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
      { cwd: staging, stdio: ["ignore", "inherit", "inherit"], timeout: INSTALL_TIMEOUT_MS, killSignal: "SIGKILL" },
    );
    if (!existsSync(join(staging, "node_modules", "openclaw", "openclaw.mjs")))
      throw new Error("npm install finished without openclaw.mjs");
    if (!existsSync(entry)) {
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    }
  } catch (e) {
    if (existsSync(entry)) return entry; // another process won the race
    throw e;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return entry;
}

/**
 * The environment an OpenClaw process runs with: a private HOME and state
 * dir, no colour, and Node's compile cache kept beside the install (a CLI
 * call starts noticeably faster the second time).
 */
export function openclawEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    OPENCLAW_STATE_DIR: join(home, ".openclaw"),
    NO_COLOR: "1",
    NODE_COMPILE_CACHE: join(openclawDir(), ".compile-cache"),
  };
}

/** Runs the openclaw CLI to completion. */
export function openclaw(
  args: string[],
  opts: { home?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = ensureOpenclaw();
  const home = opts.home ?? tempDir("loopgate-ochome-");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], {
      env: { ...openclawEnv(home), ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    const t = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Extracts the last JSON document from CLI output that may carry log lines before it. */
export function lastJson(text: string): AnyJson {
  const start = text.indexOf("{");
  for (let i = start; i >= 0 && i < text.length; i = text.indexOf("{", i + 1)) {
    try {
      return JSON.parse(text.slice(i));
    } catch {
      /* keep looking */
    }
  }
  throw new Error(`no JSON in output: ${text.slice(0, 500)}`);
}

export { execFileSync };

/**
 * The owner approves every pending device pairing on the host, talking to the
 * OpenClaw gateway directly (`direct`: its --url and credential flags, loopback,
 * not through the relay). Returns how many requests there were.
 */
export async function approvePendingDevices(direct: readonly string[]): Promise<number> {
  const list = await openclaw(["devices", "list", ...direct, "--json"], { timeoutMs: 60_000 });
  assert.equal(list.code, 0, list.stderr + list.stdout);
  const pending = (lastJson(list.stdout).pending ?? []) as { requestId: string }[];
  for (const p of pending) {
    const ok = await openclaw(["devices", "approve", p.requestId, ...direct, "--json"], { timeoutMs: 60_000 });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
  }
  return pending.length;
}

/** Starts a real OpenClaw gateway on 127.0.0.1 with a private HOME; resolves once it answers. No token: auth comes from `config` alone (e.g. trusted-proxy mode, which refuses a shared token). */
export async function startOpenclawGateway(
  port: number,
  token: string | undefined,
  config?: unknown,
): Promise<{ stop(): Promise<void>; log: () => string }> {
  const entry = ensureOpenclaw();
  const home = tempDir("loopgate-ocgw-");
  if (config !== undefined) {
    mkdirSync(join(home, ".openclaw"), { recursive: true });
    writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(config));
  }
  const child = spawn(
    process.execPath,
    [
      entry,
      "gateway",
      "--port",
      String(port),
      ...(token !== undefined ? ["--token", token] : []),
      "--bind",
      "loopback",
      "--allow-unconfigured",
    ],
    {
      env: { PATH: process.env.PATH ?? "", HOME: home, OPENCLAW_STATE_DIR: join(home, ".openclaw"), NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  child.stdout.on("data", (d) => (log += String(d)));
  child.stderr.on("data", (d) => (log += String(d)));
  const { connect } = await import("node:net");
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`openclaw gateway did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}
