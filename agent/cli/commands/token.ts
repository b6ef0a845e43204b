/** `loopgate token create | list | revoke`: client tokens for reaching this host through a relay. */
import type { Command } from "commander";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import { formatPin, parsePins } from "../../../shared/pin.ts";
import { printJson } from "../output.ts";
import { action, loadCommandConfig } from "../action.ts";

/** The OpenClaw gateway's own token for a printed OpenClaw config: a file, else OPENCLAW_GATEWAY_TOKEN. */
async function readGatewayToken(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return process.env.OPENCLAW_GATEWAY_TOKEN?.trim() || undefined;
  const { readFileSync, existsSync } = await import("node:fs");
  if (!existsSync(file))
    throw new LoopgateError(ErrorCodes.CONFIG_UNREADABLE, `--gateway-token-file: no file at ${file}`);
  return readFileSync(file, "utf8").trim() || undefined;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command("token").description("client tokens for reaching this host through a relay");
  token
    .command("create")
    .description("mint a client token and print a ready-to-paste client config")
    .option("--name <name>", "a label (shown in token list)")
    .option("--ttl <duration>", "lifetime, e.g. 12h or 30d (default 30d)", "30d")
    .option(
      "--scopes <list>",
      "comma-separated scopes (default operator.read,operator.write)",
      "operator.read,operator.write",
    )
    .option("--relay <url>", "the relay URL (default gateway.relay.url)")
    .option(
      "--relay-fingerprint <pin>",
      "the relay's pin (default gateway.relay.tlsFingerprint, or what `loopgate link` last used)",
    )
    .option(
      "--for <client>",
      "openclaw | loopgate: the client to print a config for (default: what this host's link fronts)",
    )
    .option(
      "--gateway-token-file <file>",
      "with --for openclaw: a file holding the OpenClaw gateway's token (default OPENCLAW_GATEWAY_TOKEN)",
    )
    .option(
      "--exchange",
      "also print a single-use exchange URL (?code=) that works once within 60 s, instead of a link carrying the token; a running gateway link or `loopgate link` hands the code to the relay",
    )
    .option("--exchange-ttl <seconds>", "with --exchange: how long the code works, 1 to 60 seconds (default 60)")
    .option(
      "--qr",
      "also print a QR code of the browser sign-in link, for a phone to scan (it carries the token; with --exchange, the exchange URL instead)",
    )
    .option("--json", "print JSON")
    .action(
      action(
        async (
          flags: {
            name?: string;
            ttl: string;
            scopes: string;
            relay?: string;
            relayFingerprint?: string;
            for?: string;
            gatewayTokenFile?: string;
            qr?: boolean;
            exchange?: boolean;
            exchangeTtl?: string;
            json?: boolean;
          },
          cmd: Command,
        ) => {
          const cfg = (await loadCommandConfig(cmd)).config;
          const { loadLinkRecord } = await import("../../link/link-record.ts");
          // The in-process link fronts our gateway; a standalone `loopgate link` left a record of what it fronts.
          const linkRecord = cfg.gateway?.relay?.enabled ? undefined : loadLinkRecord();
          const kind = flags.for ?? (linkRecord ? "openclaw" : "loopgate");
          if (kind !== "openclaw" && kind !== "loopgate")
            throw new LoopgateError(ErrorCodes.USAGE, `--for must be openclaw or loopgate (got ${kind})`);
          const relayUrl = flags.relay ?? cfg.gateway?.relay?.url ?? linkRecord?.relayUrl;
          if (!relayUrl)
            throw new LoopgateError(
              ErrorCodes.USAGE,
              "no relay URL: pass --relay wss://relay.example.com or set gateway.relay.url",
            );
          const pins = parsePins(
            flags.relayFingerprint ??
              cfg.gateway?.relay?.tlsFingerprint ??
              (linkRecord?.relayUrl === relayUrl ? linkRecord.pins : undefined),
          );
          const { loadOrCreateHostIdentity } = await import("../../identity.ts");
          const { TokenStore, parseDuration } = await import("../../tokens/store.ts");
          const { createClientToken, createExchangeCode } = await import("../../tokens/admin.ts");
          const { ExchangeCodeStore, parseExchangeTtl } = await import("../../tokens/exchange-codes.ts");
          if (flags.exchangeTtl !== undefined && !flags.exchange)
            throw new LoopgateError(ErrorCodes.USAGE, "--exchange-ttl goes with --exchange");
          const exchangeTtl = flags.exchange ? parseExchangeTtl(flags.exchangeTtl) : undefined;
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
          const vouchHeader =
            kind === "openclaw" && linkRecord?.relayUrl === relayUrl ? linkRecord.vouchHeader : undefined;
          const gatewayToken =
            kind === "openclaw" && !vouchHeader ? await readGatewayToken(flags.gatewayTokenFile) : undefined;
          const out = buildClientConfigs({
            kind,
            hostId: t.hostId,
            relayUrl,
            pins,
            token: t.token,
            ...(gatewayToken ? { gatewayToken } : {}),
            ...(vouchHeader ? { vouchHeader } : {}),
          });
          const expires = new Date(t.exp * 1000).toISOString();
          const exchange =
            exchangeTtl !== undefined
              ? await createExchangeCode(new ExchangeCodeStore(), t.token, t.links, exchangeTtl)
              : undefined;
          if (flags.json) {
            printJson({
              ok: true,
              id: t.id,
              hostId: t.hostId,
              for: kind,
              expiresAt: expires,
              token: t.token,
              url: out.url,
              pin: pins[0] !== undefined ? formatPin(pins[0]) : null,
              clientConfig: out.clientConfig,
              browserUrl: out.browserUrl,
              origin: out.origin ?? null,
              ...(out.openclawConfig
                ? { openclawConfig: out.openclawConfig, openclawHostConfig: out.openclawHostConfig }
                : {}),
              ...(vouchHeader ? { vouchHeader } : {}),
              ...(exchange
                ? {
                    exchangeUrl: exchange.url,
                    exchangeWsUrl: exchange.wsUrl,
                    exchangeExpiresAt: new Date(exchange.exp).toISOString(),
                  }
                : {}),
            });
            return;
          }
          const where =
            kind === "openclaw"
              ? "the OpenClaw client's ~/.openclaw/openclaw.json"
              : "the client's ~/.loopgate/config.json5";
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
              `Browser: ${out.browserUrl.replace(t.token, "<token>")} (the token leaves the address bar at once)\n` +
              (exchange
                ? `Exchange URL, works once within ${exchangeTtl} s (a running gateway link or \`loopgate link\` hands it to the relay):\n` +
                  `  browser: ${exchange.url}\n` +
                  `  terminal: ${exchange.wsUrl}  (e.g. openclaw tui --url '…'; the same code: the first use spends it)\n`
                : ""),
          );
          if (flags.qr) {
            const { terminalQr } = await import("../qr.ts");
            process.stdout.write(
              exchange
                ? `Scan with the phone's camera within ${exchangeTtl} s to open the Control UI signed in (the code works once):\n${terminalQr(exchange.url)}\n`
                : `Scan with the phone's camera to open the Control UI signed in (whoever scans this code has the token; clear the screen after):\n${terminalQr(out.browserUrl)}\n`,
            );
          }
        },
      ),
    );
  token
    .command("list")
    .description("list minted tokens (never the tokens themselves)")
    .option("--json", "print JSON")
    .action(
      action(async (flags: { json?: boolean }) => {
        const { TokenStore } = await import("../../tokens/store.ts");
        const { listClientTokens } = await import("../../tokens/admin.ts");
        const list = listClientTokens(new TokenStore());
        if (flags.json) {
          printJson({ ok: true, tokens: list });
          return;
        }
        if (list.length === 0) process.stdout.write("no tokens (loopgate token create mints one)\n");
        for (const t of list) {
          process.stdout.write(
            `${t.id}  ${t.state.padEnd(7)}  ${new Date(t.expiresAt * 1000).toISOString()}  ${t.scopes.join(",")}  ${t.name ?? ""}\n`,
          );
        }
      }),
    );
  token
    .command("revoke")
    .description("revoke a token; a running link pushes it to the relay, which closes its streams")
    .argument("<id>", "token id (or a unique prefix of 6+ characters)")
    .option("--json", "print JSON")
    .action(
      action(async (idArg: string, flags: { json?: boolean }) => {
        const { TokenStore } = await import("../../tokens/store.ts");
        const r = new TokenStore().revoke(idArg);
        if (flags.json) printJson({ ok: true, id: r.id, revokedAt: new Date(r.revokedAt ?? Date.now()).toISOString() });
        else process.stdout.write(`revoked ${r.id}; a running gateway/link tells the relay within seconds\n`);
      }),
    );
}
