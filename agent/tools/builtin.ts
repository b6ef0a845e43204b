/**
 * The built-in tools (read_file, list_dir, run_command, fetch_local_url) and
 * the policy that decides whether each may run: `tools.allow` / `tools.deny`
 * name patterns (deny wins; by default only the read-only tools are
 * allowed), a workspace root that read_file/list_dir cannot escape (symlinks
 * included), and output-size and time limits.
 *
 * run_command is different in kind: it runs any program the gateway's user
 * can run, with the workspace only as its working directory, so it is NOT
 * confined to the workspace (a program can read and write anything that user
 * can), and no approval prompt is wired in. It therefore needs its own
 * opt-in, `tools.runCommand.enabled: true`, on top of `tools.allow`: a
 * pattern like `*` alone never turns it on. A refused
 * call is a clear result for the model, never a silent skip; every call is
 * recorded in the session by the runtime.
 */
import { spawn } from "node:child_process";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { undici } from "../lazy-undici.ts";
import { isLoopbackHost } from "../../shared/url-safety.ts";
import type { ToolSchema } from "../runtime/provider-types.ts";
import type { ToolResult, ToolRunner } from "./types.ts";

export interface ToolPolicy {
  allow: string[];
  deny: string[];
  workspace: string;
  maxOutputBytes: number;
  timeoutMs: number;
  /** tools.runCommand.enabled: run_command may run at all (default false; also needs tools.allow). */
  runCommandEnabled?: boolean;
  /** Asked before each run_command when set (the gateway sets none today): commands need the opt-in and `tools.allow`, and run unasked. */
  approve?: (call: { tool: string; args: Record<string, unknown>; sessionKey: string }) => Promise<boolean>;
}

export const DEFAULT_ALLOW = ["read_file", "list_dir"];

function globToRegExp(p: string): RegExp {
  return new RegExp(
    `^${p
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
}

export const RUN_COMMAND_OPT_IN = "tools.runCommand.enabled";

/** deny wins over allow; a tool no pattern allows is refused; run_command also needs its own opt-in. */
export function isToolAllowed(name: string, policy: Pick<ToolPolicy, "allow" | "deny" | "runCommandEnabled">): boolean {
  if (name === "run_command" && policy.runCommandEnabled !== true) return false;
  if (policy.deny.some((p) => globToRegExp(p).test(name))) return false;
  return policy.allow.some((p) => globToRegExp(p).test(name));
}

const SCHEMAS: ToolSchema[] = [
  {
    type: "function",
    function: {
      name: "read_file",
      description: "Read a text file in the workspace.",
      parameters: {
        type: "object",
        properties: { path: { type: "string" } },
        required: ["path"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "list_dir",
      description: "List a directory in the workspace.",
      parameters: { type: "object", properties: { path: { type: "string" } }, additionalProperties: false },
    },
  },
  {
    type: "function",
    function: {
      name: "run_command",
      description: "Run a program (no shell) with the workspace as its working directory. It is not sandboxed.",
      parameters: {
        type: "object",
        properties: { command: { type: "string" }, args: { type: "array", items: { type: "string" } } },
        required: ["command"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "fetch_local_url",
      description: "HTTP GET a URL on this machine's loopback.",
      parameters: {
        type: "object",
        properties: { url: { type: "string" } },
        required: ["url"],
        additionalProperties: false,
      },
    },
  },
];

class ToolRefusal extends Error {}

function truncate(text: string, max: number): { output: string; truncated: boolean } {
  const b = Buffer.from(text);
  if (b.length <= max) return { output: text, truncated: false };
  return { output: `${b.subarray(0, max).toString("utf8")}\n[… output truncated at ${max} bytes]`, truncated: true };
}

export class BuiltinTools implements ToolRunner {
  readonly #p: ToolPolicy;

  constructor(policy: ToolPolicy) {
    this.#p = policy;
  }

  /** Only the tools the policy allows are offered to the model. */
  schemas(): ToolSchema[] {
    return SCHEMAS.filter((s) => isToolAllowed(s.function.name, this.#p));
  }

  async execute(name: string, argsJson: string, ctx: { signal: AbortSignal; sessionKey: string }): Promise<ToolResult> {
    const t0 = performance.now();
    const done = (ok: boolean, text: string): ToolResult => ({
      ok,
      ...truncate(text, this.#p.maxOutputBytes),
      durationMs: Math.round(performance.now() - t0),
    });
    if (!SCHEMAS.some((s) => s.function.name === name)) return done(false, `unknown tool: ${name.slice(0, 64)}`);
    if (!isToolAllowed(name, { ...this.#p, runCommandEnabled: true })) {
      return done(
        false,
        `tool ${name} is not allowed by policy (tools.allow / tools.deny)${name === "run_command" ? `; it also needs ${RUN_COMMAND_OPT_IN}: true` : ""}`,
      );
    }
    if (!isToolAllowed(name, this.#p)) {
      return done(
        false,
        `run_command is disabled: it runs any program with the gateway's rights and is not confined to the workspace; the owner can enable it with ${RUN_COMMAND_OPT_IN}: true (and tools.allow)`,
      );
    }
    let args: Record<string, unknown>;
    try {
      const v = JSON.parse(argsJson) as unknown;
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
      args = v as Record<string, unknown>;
    } catch {
      return done(false, `invalid arguments for ${name}: expected a JSON object`);
    }
    try {
      switch (name) {
        case "read_file":
          return done(true, await readFile(await this.#inside(args.path), "utf8"));
        case "list_dir": {
          const dir = await this.#inside(args.path ?? ".");
          const items = await readdir(dir, { withFileTypes: true });
          return done(
            true,
            items
              .map((d) => (d.isDirectory() ? `${d.name}/` : d.name))
              .sort()
              .join("\n"),
          );
        }
        case "run_command":
          return await this.#run(args, ctx, done);
        case "fetch_local_url":
          return await this.#fetch(args, ctx, done);
      }
    } catch (e) {
      return done(
        false,
        e instanceof ToolRefusal ? e.message : `${name} failed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return done(false, "unreachable");
  }

  /** Resolves a path inside the workspace, following symlinks; anything outside is refused. */
  async #inside(p: unknown): Promise<string> {
    if (typeof p !== "string" || p.length === 0 || p.length > 4096 || p.includes("\0"))
      throw new ToolRefusal("path must be a non-empty string");
    const root = await realpath(this.#p.workspace);
    const target = resolve(root, p);
    let real: string;
    try {
      real = await realpath(target);
    } catch {
      throw new ToolRefusal(`no such file or directory in the workspace: ${p.slice(0, 200)}`);
    }
    const rel = relative(root, real);
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))
      throw new ToolRefusal(`path ${p.slice(0, 200)} is outside the workspace`);
    return real;
  }

  async #run(
    args: Record<string, unknown>,
    ctx: { signal: AbortSignal; sessionKey: string },
    done: (ok: boolean, t: string) => ToolResult,
  ): Promise<ToolResult> {
    const command = args.command;
    const argv = args.args ?? [];
    if (
      typeof command !== "string" ||
      command === "" ||
      !Array.isArray(argv) ||
      !argv.every((a) => typeof a === "string")
    )
      return done(false, "run_command needs {command: string, args?: string[]}");
    if (this.#p.approve && !(await this.#p.approve({ tool: "run_command", args, sessionKey: ctx.sessionKey })))
      return done(false, "run_command was not approved");
    const root = await realpath(this.#p.workspace);
    await stat(root);
    return new Promise((resolveRun) => {
      const child = spawn(command, argv as string[], {
        cwd: root,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, LANG: "C.UTF-8" },
      });
      let out = "";
      const max = this.#p.maxOutputBytes;
      const take = (d: Buffer) => {
        if (out.length <= max) out += d.toString("utf8");
      };
      child.stdout.on("data", take);
      child.stderr.on("data", take);
      let timedOut = false;
      const killGroup = () => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, this.#p.timeoutMs);
      const onAbort = () => killGroup();
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      child.on("error", (e) => {
        clearTimeout(timer);
        resolveRun(done(false, `cannot run ${command.slice(0, 100)}: ${e.message}`));
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        ctx.signal.removeEventListener("abort", onAbort);
        if (timedOut) resolveRun(done(false, `${out}\n[killed after ${this.#p.timeoutMs} ms]`));
        else resolveRun(done(code === 0, code === 0 ? out : `${out}\n[exit ${code ?? signal}]`));
      });
    });
  }

  async #fetch(
    args: Record<string, unknown>,
    ctx: { signal: AbortSignal },
    done: (ok: boolean, t: string) => ToolResult,
  ): Promise<ToolResult> {
    let url: URL;
    try {
      url = new URL(String(args.url));
    } catch {
      return done(false, "fetch_local_url needs an absolute http(s) URL");
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!/^https?:$/.test(url.protocol) || !(host === "localhost" || isLoopbackHost(host)))
      return done(false, `fetch_local_url only reaches this machine's loopback (got ${url.host.slice(0, 100)})`);
    // undici's request follows no redirect: a 3xx comes back as it is, never to another address.
    const res = await (await undici()).request(url, {
      method: "GET",
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(this.#p.timeoutMs)]),
    });
    // Read about what the tool can return (up to the chunk that crosses it): an endless answer costs no more.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > this.#p.maxOutputBytes) break; // leaving the loop destroys the body and its connection
    }
    return done(res.statusCode < 400, `HTTP ${res.statusCode}\n${Buffer.concat(chunks).toString("utf8")}`);
  }
}
