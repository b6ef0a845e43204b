/** `loopgate relay serve | fingerprint`: run a relay, or print its certificate's pin. */
import type { Command } from "commander";
import { join } from "node:path";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import { formatPin } from "../../../shared/pin.ts";
import { printJson } from "../output.ts";
import { action, collect, configFlag } from "../action.ts";
import { stateDir } from "../../state.ts";
import { RELAY_SERVE_OPTIONS, type RelayServeFlags } from "../relay-serve-options.ts";

export function registerRelayCommands(program: Command): void {
  const relay = program.command("relay").description("run a relay, or show its certificate pin");
  const serve = relay
    .command("serve")
    .description(
      "serve wss:// and https:// for linked hosts (self-signed certificate on first start unless --cert/--key)",
    );
  // One table of options for this command and for the lean relay entry (agent/cli/relay-main.ts).
  for (const o of RELAY_SERVE_OPTIONS) {
    const spec = `--${o.name}${o.value ? ` <${o.value}>` : ""}`;
    if (o.multiple) serve.option(spec, o.description, collect, [] as string[]);
    else serve.option(spec, o.description);
  }
  serve.action(
    action(async (flags: RelayServeFlags, cmd: Command) => {
      const { serveRelay } = await import("../relay-serve.ts");
      await serveRelay(flags, configFlag(cmd));
    }),
  );
  relay
    .command("fingerprint")
    .description("print the relay certificate's pin (SHA-256)")
    .option("--cert <file>", "a PEM certificate (default: the relay's generated one)")
    .option("--json", "print JSON")
    .action(
      action(async (flags: { cert?: string; json?: boolean }) => {
        const { certPinFromPem, CERT_FILE } = await import("../../../relay/node/certificate.ts");
        const { readFileSync, existsSync } = await import("node:fs");
        const path = flags.cert ?? join(stateDir(), "relay", CERT_FILE);
        if (!existsSync(path))
          throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `no certificate at ${path}`, {
            hint: "run loopgate relay serve once to generate it, or pass --cert",
          });
        const pin = certPinFromPem(readFileSync(path, "utf8"));
        if (flags.json) printJson({ ok: true, pin: formatPin(pin), hex: pin, certificate: path });
        else process.stdout.write(formatPin(pin) + "\n");
      }),
    );
}
