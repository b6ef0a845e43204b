/** `loopgate gateway …`: run the gateway (and, via the client commands, talk to one). */
import type { Command } from "commander";
import type { GatewayFlags } from "../../gateway/settings.ts";
import { createLogger } from "../../log/logger.ts";
import { action, configFlag } from "../action.ts";
import type { GatewayHandle } from "../../gateway/server.ts";
import type { GatewaySettings } from "../../gateway/settings.ts";
import type { Logger } from "../../log/logger.ts";

/**
 * Relay features of the gateway: the token-admin methods (loopgate.tokens.*),
 * accept host-minted client tokens (they are how relayed clients
 * authenticate, checked here as well as at the relay), and, with
 * gateway.relay.enabled, run the link connector in-process: relayed
 * WebSockets come straight into the gateway on their link streams (HTTP
 * goes through the loopback forwarder).
 */
async function enableRelayFeatures(gw: GatewayHandle, settings: GatewaySettings, log: Logger): Promise<void> {
  // Client-token admin for operator.admin clients (the Control UI's token panel), with or without a relay yet.
  (await import("../../gateway/methods/tokens.ts")).registerTokenMethods(gw.registry, {
    relay: () => settings.relay,
    closeRevoked: (ids) => void gw.closeRevokedTokens(ids),
  });
  const { loadHostIdentity, loadOrCreateHostIdentity } = await import("../../identity.ts");
  const identity = settings.relay.enabled ? await loadOrCreateHostIdentity() : await loadHostIdentity();
  if (!identity) return;
  const { TokenStore } = await import("../../tokens/store.ts");
  const { verifyClientToken, relayAudience } = await import("../../../shared/tokens.ts");
  const store = new TokenStore();
  // Linked to a relay: only tokens for that relay (a token meant for another relay is not ours to honour).
  const linkedAudience = settings.relay.enabled && settings.relay.url ? relayAudience(settings.relay.url) : undefined;
  gw.auth.setClientTokenVerifier(async (token) => {
    const audiences = linkedAudience ? [linkedAudience] : store.audiences();
    if (audiences.length === 0) return undefined;
    const c = await verifyClientToken(token, identity.publicJwk, {
      hostId: identity.hostId,
      audience: audiences,
      isRevoked: (id) => store.isRevoked(id),
    });
    return { scopes: c.scopes, id: c.id, ...(c.name ? { name: c.name } : {}) };
  });
  // A revoked token's direct connections close too, not only its relayed streams.
  const { watchRevocations } = await import("../../gateway/revocation-watch.ts");
  gw.onShutdown(watchRevocations(store, (ids) => gw.closeRevokedTokens(ids), log));
  if (!settings.relay.enabled || !settings.relay.url) return;
  const { parsePins } = await import("../../../shared/pin.ts");
  const { startLink } = await import("../../link/run.ts");
  const connector = await startLink({
    relayUrl: settings.relay.url,
    pins: parsePins(settings.relay.tlsFingerprint),
    upstream: `ws://127.0.0.1:${gw.port}`,
    gateway: gw,
    // A relayed client's stream queues what the gateway sends it, as a socket buffers: the gateway's
    // slow-reader policy (policy.maxBufferedBytes) decides, not a lower link default.
    limits: { maxQueuedBytes: settings.limits.maxBufferedBytes + settings.limits.maxPayload },
    log,
  });
  gw.statusSections.set("relay", () => ({ enabled: true, ...connector.status() }));
  gw.onShutdown(() => connector.stop());
}

export function registerGatewayCommands(program: Command): Command {
  const gateway = program.command("gateway").description("run the gateway, or query one");
  gateway
    .command("run")
    .description("run the gateway (HTTP + WebSocket on one port, loopback by default)")
    .option("--port <port>", "port (default: $OPENCLAW_GATEWAY_PORT, gateway.port, 18789; 0 picks a free one)")
    .option("--bind <mode>", "loopback | lan | tailnet | custom | auto (default loopback)")
    .option("--host <address>", "the address for --bind custom")
    .option("--auth <mode>", "token | password | none (none: loopback only)")
    .option(
      "--token-file <path>",
      "read the gateway token from a file (mode 0600; - for stdin). Recommended, as is $OPENCLAW_GATEWAY_TOKEN",
    )
    .option(
      "--token <token>",
      "gateway token; visible to other users in ps, prefer --token-file or $OPENCLAW_GATEWAY_TOKEN (default: $OPENCLAW_GATEWAY_TOKEN, gateway.auth.token, or a generated one)",
    )
    .option(
      "--password-file <path>",
      "read the gateway password from a file (mode 0600; - for stdin). Recommended, as is $OPENCLAW_GATEWAY_PASSWORD",
    )
    .option(
      "--password <password>",
      "gateway password; visible to other users in ps, prefer --password-file or $OPENCLAW_GATEWAY_PASSWORD (default: $OPENCLAW_GATEWAY_PASSWORD, gateway.auth.password)",
    )
    .option("--json", "log JSON lines and print a JSON ready line on stdout")
    .action(action(async (opts: GatewayFlags & { json?: boolean }, cmd: Command) => runGateway(opts, configFlag(cmd))));
  return gateway;
}

async function runGateway(flags: GatewayFlags & { json?: boolean }, configFlag: string | undefined): Promise<void> {
  // Loaded here, not at the top: the relay, link and client commands never need the gateway.
  const { resolveGatewaySettings } = await import("../../gateway/settings.ts");
  const { startGateway } = await import("../../gateway/server.ts");
  const { loadConfig, makeSecretResolver } = await import("../../config/load.ts");
  const log = createLogger(flags.json ? { json: true } : {});
  const loaded = loadConfig(configFlag !== undefined ? { flag: configFlag } : {});
  const settings = resolveGatewaySettings({
    flags,
    config: loaded.config,
    env: process.env,
    resolveSecret: makeSecretResolver(),
  });
  const gw = await startGateway({ settings, log });
  const { enableAgent } = await import("../../runtime/enable.ts");
  enableAgent(gw, loaded.config, log, makeSecretResolver());
  await enableRelayFeatures(gw, settings, log);
  const urls = gw.listen.addresses.map(
    (a) => `http://${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}/`,
  );
  log.info("gateway listening", {
    addresses: gw.listen.addresses.map((a) => `${a.address}:${a.port}`),
    bind: settings.bind,
    authMode: settings.auth.mode,
    config: loaded.path ?? "(none: defaults)",
  });
  if (settings.auth.token?.source.startsWith("state:")) {
    log.info("gateway token stored for local clients", {
      path: settings.auth.generatedTokenPath,
      generated: settings.auth.token.source.includes("generated"),
    });
  }
  const ready = {
    ok: true,
    event: "ready",
    port: gw.port,
    addresses: gw.listen.addresses,
    urls,
    auth: settings.auth.mode,
    tokenPath: settings.auth.generatedTokenPath ?? null,
  };
  if (flags.json) process.stdout.write(JSON.stringify(ready) + "\n");
  else
    process.stdout.write(
      `loopgate gateway ready on ${urls.join(" ")}\n  Control UI: open ${urls[0] ?? ""} (npx loopgate dashboard prints a link that signs you in)\n  CLI: npx loopgate health\n`,
    );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.exit(130);
    }
    stopping = true;
    log.info("shutting down", { signal });
    void gw.close("gateway shutting down").then(() => process.exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}
