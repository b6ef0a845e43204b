/**
 * What every command shares: its action runs under one error path (a throw is
 * printed the CLI's way, JSON when the command's --json asks for it, with a
 * stable exit code), and the global --config flag reaches it the same way.
 */
import { Command } from "commander";
import { fail } from "./output.ts";

/** Wraps a commander action. Commander passes (...arguments, flags, command); the flags say whether to fail as JSON. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const at = args.findLastIndex((a) => a instanceof Command);
      const flags = at > 0 ? (args[at - 1] as { json?: unknown }) : undefined;
      fail(e, Boolean(flags?.json));
    }
  };
}

/** The global --config flag, as the command saw it. */
export function configFlag(cmd: Command): string | undefined {
  return (cmd.optsWithGlobals() as { config?: string }).config;
}

/** Loads the config the command was pointed at (loaded on use: --help and commands without config stay quick). */
export async function loadCommandConfig(cmd: Command) {
  const { loadConfig } = await import("../config/load.ts");
  const flag = configFlag(cmd);
  return loadConfig(flag !== undefined ? { flag } : {});
}

/** A repeatable, comma-separated option's parser. */
export function collect(v: string, prev: string[]): string[] {
  return [
    ...prev,
    ...v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  ];
}
