/** `loopgate link`: link a gateway on this host to a relay, outbound only, in front of any OpenClaw-protocol gateway. */
import type { Command } from "commander";
import { parsePins } from "../../../shared/pin.ts";
import { action } from "../action.ts";
import { parseHeartbeat, parseMaxStreams } from "../relay-serve-options.ts";

export function registerLinkCommands(program: Command): void {
  program
    .command("link")
    .description(
      "link a gateway on this host to a relay (outbound only); runs in front of any OpenClaw-protocol gateway",
    )
    .requiredOption("--relay <url>", "the relay, e.g. wss://relay.example.com:8443")
    .option(
      "--relay-fingerprint <pins>",
      "the relay certificate's pin(s); required unless it has a CA-signed certificate",
    )
    .option("--upstream <url>", "the gateway on this host", "ws://127.0.0.1:18789")
    .option(
      "--heartbeat-ms <ms>",
      "ping the relay this often; 3 silent intervals mean the link is dead (default 10000)",
    )
    .option("--max-streams <n>", "concurrent client streams this host accepts (default 1024)")
    .option(
      "--vouch-header <name>",
      "for an upstream in trusted-proxy mode: after verifying a relayed client's token with the host key, name it (the token id) in this header, which only the link sets (e.g. x-loopgate-user); off by default",
    )
    .option("--json", "log JSON lines")
    .action(
      action(
        async (flags: {
          relay: string;
          relayFingerprint?: string;
          upstream: string;
          heartbeatMs?: string;
          maxStreams?: string;
          vouchHeader?: string;
          json?: boolean;
        }) => {
          const { runLink } = await import("../../link/run.ts");
          const { checkVouchHeader } = await import("../../link/vouch.ts");
          const hb = flags.heartbeatMs !== undefined ? parseHeartbeat(flags.heartbeatMs) : undefined;
          await runLink({
            relayUrl: flags.relay,
            pins: parsePins(flags.relayFingerprint),
            upstream: flags.upstream,
            json: Boolean(flags.json),
            ...(hb ? { heartbeat: hb } : {}),
            ...(flags.maxStreams !== undefined ? { maxStreams: parseMaxStreams(flags.maxStreams) } : {}),
            ...(flags.vouchHeader !== undefined ? { vouchHeader: checkVouchHeader(flags.vouchHeader) } : {}),
          });
        },
      ),
    );
}
