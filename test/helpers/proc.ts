/**
 * Real processes for e2e tests: start the loopgate CLI with a private state
 * dir and config, wait for its JSON ready line, collect its logs (so the
 * secrets scan can read them), and kill it (SIGTERM or SIGKILL) at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = join(ROOT, "agent", "bin", "loopgate.mjs");

const tempDirs: string[] = [];
process.on("exit", () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A private temp dir, removed when the test process exits. */
export function tempDir(prefix = "loopgate-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** The environment of a loopgate process with a home of its own. */
export type IsolatedEnv = Record<string, string> & {
  LOOPGATE_STATE_DIR: string;
  LOOPGATE_CONFIG: string;
  HOME: string;
};

/**
 * A private state dir (also HOME) with a config file holding `config`, and none of the
 * OPENCLAW_GATEWAY_* variables of the environment the tests run in.
 */
export function isolatedEnv(config: unknown = {}, prefix?: string): IsolatedEnv {
  const dir = tempDir(prefix);
  const configPath = join(dir, "config.json5");
  writeFileSync(configPath, JSON.stringify(config));
  return {
    LOOPGATE_STATE_DIR: dir,
    LOOPGATE_CONFIG: configPath,
    HOME: dir,
    OPENCLAW_GATEWAY_TOKEN: "",
    OPENCLAW_GATEWAY_PASSWORD: "",
    OPENCLAW_GATEWAY_PORT: "",
    OPENCLAW_GATEWAY_URL: "",
  };
}

export interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  waitForLine(pred: (line: string) => boolean, timeoutMs?: number, stream?: "stdout" | "stderr"): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; input?: string } = {},
): Proc {
  return runProcess(process.execPath, [CLI, ...args], opts);
}

/**
 * Runs any program with line-split output. With `group`, it leads its own
 * process group and kill() signals the whole group (tools that spawn helpers,
 * like wrangler → workerd, leave nothing behind).
 */
export function runProcess(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; input?: string; group?: boolean } = {},
): Proc {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
  const child = spawn(cmd, args, {
    env,
    cwd: opts.cwd ?? ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    detached: opts.group ?? false,
  });
  if (opts.group) {
    const killGroup = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    };
    process.once("exit", killGroup);
    child.once("exit", () => process.off("exit", killGroup));
  }
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  else child.stdin?.end();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { pred: (l: string) => boolean; stream: "stdout" | "stderr"; resolve: (l: string) => void }[] = [];
  const feed = (stream: "stdout" | "stderr", arr: string[]) => {
    let buf = "";
    return (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        arr.push(line);
        for (const w of [...waiters]) {
          if (w.stream === stream && w.pred(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    };
  };
  child.stdout?.on("data", feed("stdout", stdout));
  child.stderr?.on("data", feed("stderr", stderr));
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForLine(pred, timeoutMs = 15_000, stream = "stdout") {
      const existing = (stream === "stdout" ? stdout : stderr).find(pred);
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(
                `timed out waiting for a line on ${stream}; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`,
              ),
            ),
          timeoutMs,
        );
        const w = { pred, stream, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
        waiters.push(w);
        void exited.then((code) => {
          if (waiters.includes(w)) {
            clearTimeout(t);
            reject(
              new Error(
                `process exited (${code}) before the line appeared; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`,
              ),
            );
          }
        });
      });
    },
    async kill(signal = "SIGTERM") {
      if (opts.group) {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // already gone
        }
        // Wait for the whole group (wrangler's workerd outlives wrangler by
        // a moment), so a dying relay does not eat the next test's CPU.
        const until = Date.now() + 5000;
        while (groupAlive(child.pid!)) {
          if (Date.now() > until) {
            try {
              process.kill(-child.pid!, "SIGKILL");
            } catch {
              // gone between the check and the kill
            }
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        return exited;
      } else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A process's resident memory in KiB (0 once it is gone). */
export function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs the CLI to completion and returns its output. */
export async function cli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = runCli(args, opts);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const code = await p.exited;
  clearTimeout(timer);
  // let stream buffers drain
  await new Promise((r) => setImmediate(r));
  return { code, stdout: p.stdout.join("\n"), stderr: p.stderr.join("\n") };
}

export interface GatewayProc extends Proc {
  port: number;
  stateDir: string;
  env: Record<string, string>;
  ready: Record<string, unknown>;
}

/** Starts `loopgate gateway run --port 0 --json` with its own state dir and config. */
export async function startGateway(
  opts: { args?: string[]; config?: unknown; env?: Record<string, string> } = {},
): Promise<GatewayProc> {
  const env = { ...isolatedEnv(opts.config), ...opts.env };
  const stateDir = env.LOOPGATE_STATE_DIR;
  const p = runCli(["gateway", "run", "--port", "0", "--json", ...(opts.args ?? [])], { env });
  const line = await p.waitForLine((l) => l.startsWith("{") && l.includes('"ready"'));
  const ready = JSON.parse(line) as Record<string, unknown> & { port: number };
  return Object.assign(p, { port: ready.port, stateDir, env, ready });
}
