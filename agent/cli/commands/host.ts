/** `loopgate host id`: this host's identity, the id relays allow and tokens name. */
import type { Command } from "commander";
import { printJson } from "../output.ts";
import { action } from "../action.ts";

export function registerHostCommands(program: Command): void {
  const host = program.command("host").description("this host's identity");
  host
    .command("id")
    .description("print this host's id (the JWK thumbprint of its Ed25519 key; created on first use)")
    .option("--json", "print JSON")
    .action(
      action(async (flags: { json?: boolean }) => {
        const { loadOrCreateHostIdentity, hostKeyPath } = await import("../../identity.ts");
        const id = await loadOrCreateHostIdentity();
        if (flags.json) printJson({ ok: true, hostId: id.hostId, created: id.created, keyPath: hostKeyPath() });
        else process.stdout.write(id.hostId + "\n");
      }),
    );
}
