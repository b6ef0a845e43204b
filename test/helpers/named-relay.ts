/**
 * A relay reached by a host name (default `localhost`), as browsers must reach
 * it: each host's own origin is one label below that name. The name is the
 * relay's configured public URL (token audience), so tokens and links use it
 * too; the port is picked first so the configuration can name it.
 */
import { onFreePort, startRelay, type RelayKind, type RelayProc } from "./relay.ts";

export async function startNamedRelay(
  kind: RelayKind,
  allowHosts: string[],
  opts: { name?: string; listen?: string } = {},
): Promise<{ relay: RelayProc; byName: { url: string; pin: string } }> {
  const name = opts.name ?? "localhost";
  return onFreePort(async (port) => {
    const publicUrl = `wss://${name}:${port}`;
    const args =
      kind === "node"
        ? ["--public-url", publicUrl, ...(opts.listen ? ["--host", opts.listen] : [])]
        : ["--var", `RELAY_AUDIENCES:https://${name}:${port}`];
    const relay = await startRelay(kind, { allowHosts, port, args });
    return { relay, byName: { url: publicUrl, pin: relay.pin } };
  });
}
