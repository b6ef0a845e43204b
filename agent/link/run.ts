/** `loopgate link`: the connector alone, in front of any OpenClaw-protocol gateway. */
import { watch } from "node:fs";
import { dirname, basename } from "node:path";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { parseGatewayUrl, isLoopbackHost } from "../../shared/url-safety.ts";
import { createLogger } from "../log/logger.ts";
import { loadOrCreateHostIdentity } from "../identity.ts";
import { TokenStore } from "../tokens/store.ts";
import { EXCHANGE_FILE, ExchangeCodeStore } from "../tokens/exchange-codes.ts";
import { LinkConnector, type ConnectorOptions } from "./connector.ts";
import { saveLinkRecord } from "./link-record.ts";
import { Voucher } from "./vouch.ts";

export function checkRelayUrl(url: string): void {
  const t = parseGatewayUrl(url);
  if (!t.secure)
    throw new LoopgateError(ErrorCodes.URL_UNSAFE, "the relay URL must be wss:// (or https://)", {
      hint: "the link carries every client's traffic; it is always TLS",
    });
}

/** Starts a connector and keeps the relay's revocation list current as tokens are revoked. */
export async function startLink(o: {
  relayUrl: string;
  pins: string[];
  upstream: string;
  log: ReturnType<typeof createLogger>;
  heartbeat?: { intervalMs: number; timeoutMs: number };
  maxStreams?: number;
  gateway?: ConnectorOptions["gateway"];
  limits?: ConnectorOptions["limits"];
  vouchHeader?: string;
}): Promise<LinkConnector> {
  checkRelayUrl(o.relayUrl);
  const up = parseGatewayUrl(o.upstream);
  if (!isLoopbackHost(up.host))
    throw new LoopgateError(
      ErrorCodes.URL_UNSAFE,
      `--upstream must be a gateway on this host's loopback (got ${up.host})`,
      { hint: "e.g. ws://127.0.0.1:18789" },
    );
  const identity = await loadOrCreateHostIdentity();
  const store = new TokenStore();
  const codes = new ExchangeCodeStore();
  const vouch =
    o.vouchHeader !== undefined
      ? new Voucher({
          header: o.vouchHeader,
          hostId: identity.hostId,
          hostKey: identity.publicJwk,
          relayUrl: o.relayUrl,
          isRevoked: (id) => store.isRevoked(id),
        })
      : undefined;
  const connector = new LinkConnector({
    relayUrl: o.relayUrl,
    pins: o.pins,
    upstream: o.upstream,
    identity,
    log: o.log,
    revokedIds: () => store.revokedIds(),
    exchangeCodes: () => codes.pending(),
    ...(vouch ? { vouch } : {}),
    ...(o.gateway ? { gateway: o.gateway } : {}),
    ...(o.heartbeat ? { heartbeat: o.heartbeat } : {}),
    ...(o.maxStreams || o.limits
      ? { limits: { ...o.limits, ...(o.maxStreams ? { maxStreams: o.maxStreams } : {}) } }
      : {}),
  });
  connector.start();
  // `token revoke` writes the store, `token create --exchange` the codes; push them to the relay at once.
  try {
    const w = watch(dirname(store.path), (_e, name) => {
      if (name === basename(store.path)) connector.pushRevocations();
      if (name === EXCHANGE_FILE) connector.pushExchangeCodes();
    });
    w.unref();
  } catch {
    o.log.warn("cannot watch the state dir; revocations and exchange codes reach the relay on the next reconnect");
  }
  return connector;
}

export async function runLink(o: {
  relayUrl: string;
  pins: string[];
  upstream: string;
  json: boolean;
  heartbeat?: { intervalMs: number; timeoutMs: number };
  maxStreams?: number;
  vouchHeader?: string;
}): Promise<void> {
  const log = createLogger(o.json ? { json: true } : {});
  const connector = await startLink({ ...o, log });
  // `token create` prints configs for what this link fronts (see link-record.ts).
  saveLinkRecord({
    relayUrl: o.relayUrl,
    pins: o.pins,
    upstream: o.upstream,
    ...(o.vouchHeader !== undefined ? { vouchHeader: o.vouchHeader.trim().toLowerCase() } : {}),
  });
  // The connector's timers are unref'd (it also runs inside the gateway); alone, this process
  // must not exit while it waits to reconnect with no socket open.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const stop = () => {
    clearInterval(keepAlive);
    void connector.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
