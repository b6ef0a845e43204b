/**
 * OpenClaw's terminal UI (`openclaw tui`) driven in tmux: a private tmux
 * server per TUI (its own socket name, so nothing else's sessions are
 * touched), a fixed-size pane, keys sent with send-keys and the screen read
 * back with capture-pane, polled against deadlines.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { ensureOpenclaw, openclawEnv } from "./openclaw.ts";

let seq = 0;

/** Undefined when tmux runs here, else why not (the suite skips loudly with it). */
export function tmuxUnavailable(): string | undefined {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "tmux is not installed (apt-get install tmux; .ci/run installs it)";
  }
}

function tmux(socket: string, args: string[], env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "tmux",
      ["-L", socket, "-f", "/dev/null", ...args],
      { encoding: "utf8", timeout: 10_000, ...(env ? { env } : {}) },
      (err, stdout, stderr) =>
        err ? reject(new Error(`tmux ${args[0]} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

export interface Tui {
  /** The visible screen, one string. */
  screen(): Promise<string>;
  /** Polls the screen until it matches; throws with the last screen on the deadline. */
  waitFor(what: RegExp | string | ((screen: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Types text literally, then Enter. */
  submit(text: string): Promise<void>;
  /** Sends tmux key names (Escape, C-p, Enter, …). */
  keys(...names: string[]): Promise<void>;
  close(): Promise<void>;
}

export async function startTui(
  args: string[],
  opts: { home: string; width?: number; height?: number; env?: Record<string, string> },
): Promise<Tui> {
  const entry = ensureOpenclaw();
  // Random as well as per process: runs in PID namespaces of their own share pids (and /tmp, where tmux keeps its sockets).
  const socket = `loopgate-tui-${process.pid}-${randomBytes(4).toString("hex")}-${++seq}`;
  const env: Record<string, string> = {
    ...openclawEnv(opts.home),
    TERM: "xterm-256color",
    LANG: "C.UTF-8",
    ...opts.env,
  };
  delete env.NO_COLOR;
  // tmux runs the argv directly (no shell), so nothing here needs quoting.
  await tmux(
    socket,
    [
      "new-session",
      "-d",
      "-s",
      "tui",
      "-x",
      String(opts.width ?? 120),
      "-y",
      String(opts.height ?? 40),
      process.execPath,
      entry,
      "tui",
      ...args,
    ],
    env,
  );
  // The tmux server is a daemon, not our child: if this process ends before close(), take it down too.
  const killOnExit = () => {
    try {
      execFileSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore", timeout: 5000 });
    } catch {
      // already gone
    }
  };
  process.once("exit", killOnExit);
  await tmux(socket, ["set-option", "-t", "tui", "remain-on-exit", "on"]).catch(() => undefined);
  const screen = () =>
    tmux(socket, ["capture-pane", "-p", "-t", "tui"]).catch((e: Error) => `(no screen: ${e.message})`);
  return {
    screen,
    async waitFor(what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      for (;;) {
        last = await screen();
        if (typeof what === "string" ? last.includes(what) : typeof what === "function" ? what(last) : what.test(last))
          return last;
        if (Date.now() > deadline)
          throw new Error(
            `the TUI never showed ${typeof what === "function" ? "what the test waited for" : String(what)} within ${timeoutMs} ms; screen:\n${last
              .split("\n")
              .filter((l) => l.trim() !== "")
              .join("\n")}`,
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async submit(text) {
      await tmux(socket, ["send-keys", "-t", "tui", "-l", text]);
      await tmux(socket, ["send-keys", "-t", "tui", "Enter"]);
    },
    async keys(...names) {
      await tmux(socket, ["send-keys", "-t", "tui", ...names]);
    },
    async close() {
      process.off("exit", killOnExit);
      await tmux(socket, ["kill-server"]).catch(() => undefined);
    },
  };
}
