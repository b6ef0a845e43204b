/**
 * Relay and host-identity commands:
 *   loopgate relay serve | relay fingerprint
 *   loopgate host id
 *   loopgate token create | list | revoke
 *   loopgate link
 */
import type { Command } from "commander";
import { join } from "node:path";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import { formatPin, parsePins } from "../../../shared/pin.ts";
import { fail, printJson } from "../output.ts";
import { stateDir } from "../../state.ts";
import { RELAY_SERVE_OPTIONS, parseHeartbeat, parseMaxStreams, type RelayServeFlags } from "../relay-serve-options.ts";

const run =
  <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
  async (...args: A) => {
    const flags = args.find((a) => a && typeof a === "object" && !Array.isArray(a) && "json" in (a as object)) as { json?: boolean } | undefined;
    try {
      await fn(...args);
    } catch (e) {
      fail(e, Boolean(flags?.json));
    }
  };

async function configOf(cmd: Command) {
  // Loaded on use: --help and commands without config stay quick.
  const { loadConfig } = await import("../../config/load.ts");
  const flag = (cmd.optsWithGlobals() as { config?: string }).config;
  return loadConfig(flag !== undefined ? { flag } : {});
}

function relayStateDir(): string {
  return join(stateDir(), "relay");
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, ...v.split(",").map((s) => s.trim()).filter((s) => s !== "")];
}


/** The OpenClaw gateway's own token for a printed OpenClaw config: a file, else OPENCLAW_GATEWAY_TOKEN. */
async function readGatewayToken(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return process.env.OPENCLAW_GATEWAY_TOKEN?.trim() || undefined;
  const { readFileSync, existsSync } = await import("node:fs");
  if (!existsSync(file)) throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `--gateway-token-file: no file at ${file}`);
  return readFileSync(file, "utf8").trim() || undefined;
}

export function registerRelayCommands(program: Command): void {
  const relay = program.command("relay").description("run a relay, or show its certificate pin");
  const serve = relay.command("serve").description("serve wss:// and https:// for linked hosts (self-signed certificate on first start unless --cert/--key)");
  // One table of options for this command and for the lean relay entry (agent/cli/relay-main.ts).
  for (const o of RELAY_SERVE_OPTIONS) {
    const spec = `--${o.name}${o.value ? ` <${o.value}>` : ""}`;
    if (o.multiple) serve.option(spec, o.description, collect, [] as string[]);
    else serve.option(spec, o.description);
  }
  serve.action(
    run(async (flags: RelayServeFlags, cmd: Command) => {
      const { serveRelay } = await import("../relay-serve.ts");
      await serveRelay(flags, (cmd.optsWithGlobals() as { config?: string }).config);
    }),
  );
  relay
    .command("fingerprint")
    .description("print the relay certificate's pin (SHA-256)")
    .option("--cert <file>", "a PEM certificate (default: the relay's generated one)")
    .option("--json", "print JSON")
    .action(
      run(async (flags: { cert?: string; json?: boolean }) => {
        const { certPinFromPem, CERT_FILE } = await import("../../tls/cert.ts");
        const { readFileSync, existsSync } = await import("node:fs");
        const path = flags.cert ?? join(relayStateDir(), CERT_FILE);
        if (!existsSync(path)) throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `no certificate at ${path}`, { hint: "run loopgate relay serve once to generate it, or pass --cert" });
        const pin = certPinFromPem(readFileSync(path, "utf8"));
        if (flags.json) printJson({ ok: true, pin: formatPin(pin), hex: pin, certificate: path });
        else process.stdout.write(formatPin(pin) + "\n");
      }),
    );

  const host = program.command("host").description("this host's identity");
  host
    .command("id")
    .description("print this host's id (the JWK thumbprint of its Ed25519 key; created on first use)")
    .option("--json", "print JSON")
    .action(
      run(async (flags: { json?: boolean }) => {
        const { loadOrCreateHostIdentity, hostKeyPath } = await import("../../identity.ts");
        const id = await loadOrCreateHostIdentity();
        if (flags.json) printJson({ ok: true, hostId: id.hostId, created: id.created, keyPath: hostKeyPath() });
        else process.stdout.write(id.hostId + "\n");
      }),
    );

  const token = program.command("token").description("client tokens for reaching this host through a relay");
  token
    .command("create")
    .description("mint a client token and print a ready-to-paste client config")
    .option("--name <name>", "a label (shown in token list)")
    .option("--ttl <duration>", "lifetime, e.g. 12h or 30d (default 30d)", "30d")
    .option("--scopes <list>", "comma-separated scopes (default operator.read,operator.write)", "operator.read,operator.write")
    .option("--relay <url>", "the relay URL (default gateway.relay.url)")
    .option("--relay-fingerprint <pin>", "the relay's pin (default gateway.relay.tlsFingerprint, or what `loopgate link` last used)")
    .option("--for <client>", "openclaw | loopgate: the client to print a config for (default: what this host's link fronts)")
    .option("--gateway-token-file <file>", "with --for openclaw: a file holding the OpenClaw gateway's token (default OPENCLAW_GATEWAY_TOKEN)")
    .option("--qr", "also print a QR code of the browser sign-in link, for a phone to scan (it carries the token)")
    .option("--json", "print JSON")
    .action(
      run(async (flags: { name?: string; ttl: string; scopes: string; relay?: string; relayFingerprint?: string; for?: string; gatewayTokenFile?: string; qr?: boolean; json?: boolean }, cmd: Command) => {
        const cfg = (await configOf(cmd)).config;
        const { loadLinkRecord } = await import("../../link/link-record.ts");
        // The in-process link fronts our gateway; a standalone `loopgate link` left a record of what it fronts.
        const linkRecord = cfg.gateway?.relay?.enabled ? undefined : loadLinkRecord();
        const kind = flags.for ?? (linkRecord ? "openclaw" : "loopgate");
        if (kind !== "openclaw" && kind !== "loopgate") throw new LoopgateError(ErrorCodes.USAGE, `--for must be openclaw or loopgate (got ${kind})`);
        const relayUrl = flags.relay ?? cfg.gateway?.relay?.url ?? linkRecord?.relayUrl;
        if (!relayUrl) throw new LoopgateError(ErrorCodes.USAGE, "no relay URL: pass --relay wss://relay.example.com or set gateway.relay.url");
        const pins = parsePins(flags.relayFingerprint ?? cfg.gateway?.relay?.tlsFingerprint ?? (linkRecord?.relayUrl === relayUrl ? linkRecord.pins : undefined));
        const { loadOrCreateHostIdentity } = await import("../../identity.ts");
        const { TokenStore, parseDuration } = await import("../../tokens-store.ts");
        const { createClientToken } = await import("../../tokens-admin.ts");
        const t = await createClientToken({
          identity: await loadOrCreateHostIdentity(),
          store: new TokenStore(),
          relayUrl,
          relayFingerprint: pins,
          ttlSec: parseDuration(flags.ttl),
          scopes: flags.scopes.split(","),
          name: flags.name,
        });
        const { buildClientConfigs } = await import("../client-config.ts");
        // A link that vouches for its clients (trusted-proxy upstream) needs no OpenClaw gateway token on the client.
        const vouchHeader = kind === "openclaw" && linkRecord?.relayUrl === relayUrl ? linkRecord.vouchHeader : undefined;
        const gatewayToken = kind === "openclaw" && !vouchHeader ? await readGatewayToken(flags.gatewayTokenFile) : undefined;
        const out = buildClientConfigs({ kind, hostId: t.hostId, relayUrl, pins, token: t.token, ...(gatewayToken ? { gatewayToken } : {}), ...(vouchHeader ? { vouchHeader } : {}) });
        const expires = new Date(t.exp * 1000).toISOString();
        if (flags.json) {
          printJson({
            ok: true, id: t.id, hostId: t.hostId, for: kind, expiresAt: expires, token: t.token, url: out.url,
            pin: pins[0] !== undefined ? formatPin(pins[0]) : null, clientConfig: out.clientConfig, browserUrl: out.browserUrl, origin: out.origin ?? null,
            ...(out.openclawConfig ? { openclawConfig: out.openclawConfig, openclawHostConfig: out.openclawHostConfig } : {}),
            ...(vouchHeader ? { vouchHeader } : {}),
          });
          return;
        }
        const where = kind === "openclaw" ? "the OpenClaw client's ~/.openclaw/openclaw.json" : "the client's ~/.loopgate/config.json5";
        process.stdout.write(
          `token ${t.id}${t.name ? ` (${t.name})` : ""}, expires ${expires}, scopes ${t.scopes.join(" ")}\n` +
            `relay pin: ${pins[0] !== undefined ? formatPin(pins[0]) : "none (pass --relay-fingerprint unless the relay has a CA-issued certificate)"}\n` +
            `Paste into ${where} (keep it secret):\n${JSON.stringify(out.clientConfig, null, 2)}\n` +
            (out.openclawHostConfig
              ? `${gatewayToken || vouchHeader ? "" : "Add gateway.remote.token: the OpenClaw gateway's own token (or pass --gateway-token-file).\n"}` +
                `On this host, add to the OpenClaw gateway's config:\n${JSON.stringify(out.openclawHostConfig, null, 2)}\n` +
                (vouchHeader
                  ? `The link vouches for relayed clients in ${vouchHeader}: the OpenClaw gateway must have no gateway.auth.token (trusted-proxy mode refuses one); give your own local CLI gateway.auth.password instead.\n`
                  : "")
              : "") +
            `Browser: ${out.browserUrl.replace(t.token, "<token>")} (the token leaves the address bar at once)\n`,
        );
        if (flags.qr) {
          const { terminalQr } = await import("../qr.ts");
          process.stdout.write(`Scan with the phone's camera to open the Control UI signed in (whoever scans this code has the token; clear the screen after):\n${terminalQr(out.browserUrl)}\n`);
        }
      }),
    );
  token
    .command("list")
    .description("list minted tokens (never the tokens themselves)")
    .option("--json", "print JSON")
    .action(
      run(async (flags: { json?: boolean }) => {
        const { TokenStore } = await import("../../tokens-store.ts");
        const { listClientTokens } = await import("../../tokens-admin.ts");
        const list = listClientTokens(new TokenStore());
        if (flags.json) {
          printJson({ ok: true, tokens: list });
          return;
        }
        if (list.length === 0) process.stdout.write("no tokens (loopgate token create mints one)\n");
        for (const t of list) {
          process.stdout.write(`${t.id}  ${t.state.padEnd(7)}  ${new Date(t.expiresAt * 1000).toISOString()}  ${t.scopes.join(",")}  ${t.name ?? ""}\n`);
        }
      }),
    );
  token
    .command("revoke")
    .description("revoke a token; a running link pushes it to the relay, which closes its streams")
    .argument("<id>", "token id (or a unique prefix of 6+ characters)")
    .option("--json", "print JSON")
    .action(
      run(async (idArg: string, flags: { json?: boolean }) => {
        const { TokenStore } = await import("../../tokens-store.ts");
        const r = new TokenStore().revoke(idArg);
        if (flags.json) printJson({ ok: true, id: r.id, revokedAt: new Date(r.revokedAt ?? Date.now()).toISOString() });
        else process.stdout.write(`revoked ${r.id}; a running gateway/link tells the relay within seconds\n`);
      }),
    );

  program
    .command("link")
    .description("link a gateway on this host to a relay (outbound only); runs in front of any OpenClaw-protocol gateway")
    .requiredOption("--relay <url>", "the relay, e.g. wss://relay.example.com:8443")
    .option("--relay-fingerprint <pins>", "the relay certificate's pin(s); required unless it has a CA-signed certificate")
    .option("--upstream <url>", "the gateway on this host", "ws://127.0.0.1:18789")
    .option("--heartbeat-ms <ms>", "ping the relay this often; 3 silent intervals mean the link is dead (default 10000)")
    .option("--max-streams <n>", "concurrent client streams this host accepts (default 1024)")
    .option("--vouch-header <name>", "for an upstream in trusted-proxy mode: after verifying a relayed client's token with the host key, name it (the token id) in this header, which only the link sets (e.g. x-loopgate-user); off by default")
    .option("--json", "log JSON lines")
    .action(
      run(async (flags: { relay: string; relayFingerprint?: string; upstream: string; heartbeatMs?: string; maxStreams?: string; vouchHeader?: string; json?: boolean }) => {
        const { runLink } = await import("../../link/run.ts");
        const { checkVouchHeader } = await import("../../link/vouch.ts");
        const hb = flags.heartbeatMs !== undefined ? parseHeartbeat(flags.heartbeatMs) : undefined;
        await runLink({ relayUrl: flags.relay, pins: parsePins(flags.relayFingerprint), upstream: flags.upstream, json: Boolean(flags.json), ...(hb ? { heartbeat: hb } : {}), ...(flags.maxStreams !== undefined ? { maxStreams: parseMaxStreams(flags.maxStreams) } : {}), ...(flags.vouchHeader !== undefined ? { vouchHeader: checkVouchHeader(flags.vouchHeader) } : {}) });
      }),
    );
}
