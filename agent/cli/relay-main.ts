/**
 * The lean entry for `loopgate relay serve` (the executable dispatches here):
 * the relay and nothing else, without the CLI framework or the gateway's
 * command modules, so a relay on a small VPS idles small. Options come from
 * the same table as the full CLI's `relay serve` (relay-serve-options.ts);
 * `--help` is left to the full CLI, which prints it.
 */
import { fail } from "./output.ts";
import { parseRelayServeArgs } from "./relay-serve-options.ts";
import { serveRelay } from "./relay-serve.ts";

const argv = process.argv.slice(2);
const json = argv.includes("--json");
try {
  const { flags, config } = parseRelayServeArgs(argv.slice(2));
  await serveRelay(flags, config);
} catch (e) {
  fail(e, json);
}
