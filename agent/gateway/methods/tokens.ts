/**
 * Client-token administration over the gateway protocol, for the Control
 * UI's token panel (operator.admin only; read-only and read+write tokens are
 * refused by scope):
 *   loopgate.tokens.list    {}                          → relay, hostId, tokens (never the tokens themselves)
 *   loopgate.tokens.create  {name?, access, ttl}        → the token once, its links, a QR code (SVG) of the sign-in link
 *   loopgate.tokens.revoke  {id}                        → the record, revoked; this token's connections close (4401)
 * Minting and listing are the CLI's (`loopgate token …`), shared through
 * agent/tokens/admin.ts. The relay hears of a revocation from the link,
 * which watches the same store.
 */
import { renderSVG } from "uqr";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import { loadHostIdentity, loadOrCreateHostIdentity } from "../../identity.ts";
import {
  browserSignInUrl,
  createExchangeCode,
  createClientToken,
  listClientTokens,
  MAX_TOKEN_NAME,
  tokenState,
} from "../../tokens/admin.ts";
import { parseDuration, TokenStore } from "../../tokens/store.ts";
import { ExchangeCodeStore } from "../../tokens/exchange-codes.ts";
import { MethodError, type MethodRegistry } from "../methods.ts";
import { GatewayErrorCodes } from "../protocol.ts";
import { Scopes } from "../scopes.ts";

export interface TokenMethodDeps {
  /** The relay as configured now (gateway.relay). */
  relay: () => { enabled: boolean; url: string | undefined; tlsFingerprint: string | string[] | undefined };
  /** Closes the gateway's connections that authenticated with these token ids. */
  closeRevoked: (ids: string[]) => void;
  env?: NodeJS.ProcessEnv;
}

/** Stable detail codes in `error.details.code`. */
export const TokenMethodErrors = {
  RELAY_NOT_CONFIGURED: "RELAY_NOT_CONFIGURED",
  TOKEN_NOT_FOUND: "TOKEN_NOT_FOUND",
} as const;

/** What a token minted here may do: read, or read and write (never admin). `ttl` takes what the CLI takes (1m … 366d). */
const SCOPE_SETS: Record<string, string[]> = {
  read: [Scopes.READ],
  "read-write": [Scopes.READ, Scopes.WRITE],
};

type Obj = Record<string, unknown>;

function bad(message: string, details?: Obj): MethodError {
  return new MethodError({ code: GatewayErrorCodes.INVALID_REQUEST, message, ...(details ? { details } : {}) });
}

function obj(params: unknown): Obj {
  if (params === undefined || params === null) return {};
  if (typeof params !== "object" || Array.isArray(params)) throw bad("params must be an object");
  return params as Obj;
}

function fromLoopgate(e: unknown): never {
  if (e instanceof LoopgateError) throw bad(e.message, { code: e.code, ...(e.hint ? { hint: e.hint } : {}) });
  throw e;
}

const SETUP_HINT =
  'set gateway.relay.url (and gateway.relay.tlsFingerprint for a self-signed relay) and gateway.relay.enabled: true in the config, then restart the gateway; "Remote access through the relay" in the README shows the steps';

export function registerTokenMethods(registry: MethodRegistry, deps: TokenMethodDeps): void {
  const env = deps.env ?? process.env;
  const store = new TokenStore(env);

  registry.register({
    name: "loopgate.tokens.list",
    scope: Scopes.ADMIN,
    handler: async (params) => {
      obj(params);
      const relay = deps.relay();
      const identity = await loadHostIdentity(env);
      const tokens = listClientTokens(store).map((t) => ({
        id: t.id,
        name: t.name ?? null,
        scopes: t.scopes,
        createdAt: t.createdAt,
        expiresAt: t.expiresAt * 1000,
        revokedAt: t.revokedAt ?? null,
        state: t.state,
      }));
      return {
        relay: relay.url
          ? { configured: true, enabled: relay.enabled, url: relay.url }
          : { configured: false, enabled: false, url: null, hint: SETUP_HINT },
        hostId: identity?.hostId ?? null,
        tokens,
      };
    },
  });

  registry.register({
    name: "loopgate.tokens.create",
    scope: Scopes.ADMIN,
    handler: async (params) => {
      const p = obj(params);
      const relay = deps.relay();
      if (!relay.url)
        throw new MethodError({
          code: GatewayErrorCodes.UNAVAILABLE,
          message: "no relay is configured, so a client token has nowhere to be used",
          details: { code: TokenMethodErrors.RELAY_NOT_CONFIGURED, hint: SETUP_HINT },
        });
      const access = p.access ?? "read-write";
      const scopes = typeof access === "string" ? SCOPE_SETS[access] : undefined;
      if (!scopes) throw bad(`access must be one of ${Object.keys(SCOPE_SETS).join(", ")}`);
      const ttl = p.ttl ?? "30d";
      if (typeof ttl !== "string" || ttl.length > 16) throw bad("ttl must be a duration such as 12h or 30d");
      const name = p.name ?? undefined;
      if (name !== undefined && (typeof name !== "string" || name.length > MAX_TOKEN_NAME))
        throw bad(`name must be a string of at most ${MAX_TOKEN_NAME} characters`);
      try {
        const t = await createClientToken({
          identity: await loadOrCreateHostIdentity(env),
          store,
          relayUrl: relay.url,
          relayFingerprint: relay.tlsFingerprint,
          ttlSec: parseDuration(ttl),
          scopes,
          name,
        });
        const signIn = browserSignInUrl(t.links, t.token);
        // With the in-process link running, the QR carries a single-use code (60 s) the link pushes to the
        // relay, so a photo of the screen or a phone's history holds no long-lived token.
        const exchange = relay.enabled
          ? await createExchangeCode(new ExchangeCodeStore(env), t.token, t.links)
          : undefined;
        const scanned = exchange?.url ?? signIn;
        return {
          id: t.id,
          name: t.name ?? null,
          scopes: t.scopes,
          expiresAt: t.exp * 1000,
          token: t.token,
          url: t.links.wsUrl,
          link: signIn,
          clientConfig: t.clientConfig,
          ...(exchange ? { exchange: { url: exchange.url, wsUrl: exchange.wsUrl, expiresAt: exchange.exp } } : {}),
          // ECC level L keeps a long token link small enough to scan from a screen.
          qrSvg: renderSVG(scanned, { ecc: "L", border: 2, pixelSize: 4 }),
          relayEnabled: relay.enabled,
        };
      } catch (e) {
        fromLoopgate(e);
      }
    },
  });

  registry.register({
    name: "loopgate.tokens.revoke",
    scope: Scopes.ADMIN,
    handler: (params) => {
      const p = obj(params);
      const id = p.id;
      if (typeof id !== "string" || !/^[A-Za-z0-9_-]{6,64}$/.test(id)) throw bad("id must be a token id");
      let r;
      try {
        r = store.revoke(id);
      } catch (e) {
        if (e instanceof LoopgateError && e.code === ErrorCodes.USAGE)
          throw new MethodError({
            code: GatewayErrorCodes.NOT_FOUND,
            message: e.message,
            details: { code: TokenMethodErrors.TOKEN_NOT_FOUND },
          });
        fromLoopgate(e);
      }
      deps.closeRevoked([r.id]);
      return { id: r.id, revokedAt: r.revokedAt ?? Date.now(), state: tokenState(r) };
    },
  });
}
