/**
 * The real `openclaw` npm package as an interop peer (opt-in: LOOPGATE_INTEROP=1).
 * Installed once with --ignore-scripts into a cache folder outside the repo;
 * run on the pinned Node 24 with a private HOME so it never touches the user's.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tempDir } from "./proc.ts";

export const OPENCLAW_VERSION = process.env.LOOPGATE_OPENCLAW_VERSION ?? "2026.9.6";

export function interopEnabled(): string | undefined {
  return process.env.LOOPGATE_INTEROP === "1" ? undefined : "interop with the real openclaw package is opt-in: set LOOPGATE_INTEROP=1 (it installs ~330 packages once)";
}

/** Returns the path of openclaw.mjs, installing the package into the cache on first use. */
export function ensureOpenclaw(): string {
  const dir = process.env.LOOPGATE_INTEROP_DIR ?? join(tmpdir(), `loopgate-openclaw-${OPENCLAW_VERSION}`);
  const entry = join(dir, "node_modules", "openclaw", "openclaw.mjs");
  if (existsSync(entry)) return entry;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "openclaw-interop", private: true }));
  execFileSync("npm", ["install", `openclaw@${OPENCLAW_VERSION}`, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit", timeout: 600_000 });
  return entry;
}

/** Runs the openclaw CLI to completion. */
export function openclaw(args: string[], opts: { home?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = ensureOpenclaw();
  const home = opts.home ?? tempDir("loopgate-ochome-");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: home, OPENCLAW_STATE_DIR: join(home, ".openclaw"), NO_COLOR: "1", ...opts.env },
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
export function lastJson(text: string): any {
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

/** Starts a real OpenClaw gateway on 127.0.0.1 with a private HOME; resolves once it answers. */
export async function startOpenclawGateway(port: number, token: string, config?: unknown): Promise<{ stop(): Promise<void>; log: () => string }> {
  const entry = ensureOpenclaw();
  const home = tempDir("loopgate-ocgw-");
  if (config !== undefined) {
    mkdirSync(join(home, ".openclaw"), { recursive: true });
    writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(config));
  }
  const child = spawn(process.execPath, [entry, "gateway", "--port", String(port), "--token", token, "--bind", "loopback", "--allow-unconfigured"], {
    env: { PATH: process.env.PATH ?? "", HOME: home, OPENCLAW_STATE_DIR: join(home, ".openclaw"), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
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
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`openclaw gateway did not start: ${log.slice(-2000)}`);
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
