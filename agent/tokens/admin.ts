/**
 * Client-token administration, shared by the `loopgate token create|list|
 * revoke` CLI and the gateway's `loopgate.tokens.*` methods (the Control UI's
 * token panel): mint a token with the host key and record it, list the
 * records with their state, revoke one. Where a client reaches this host
 * through the relay is decided in one place, `clientLinks`.
 */
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { formatPin, parsePins } from "../../shared/pin.ts";
import { mintClientToken, relayAudience } from "../../shared/tokens.ts";
import { hostOrigin } from "../../shared/host-label.ts";
import type { HostIdentity } from "../identity.ts";
import { ALL_OPERATOR_SCOPES } from "../gateway/scopes.ts";
import type { TokenRecord, TokenStore } from "./store.ts";
import type { ExchangeCodeStore } from "./exchange-codes.ts";
import { EXCHANGE_CODE_PARAM } from "../../relay/core/exchange-codes.ts";

export const MAX_TOKEN_NAME = 64;

export interface ClientLinks {
  /** The WebSocket URL clients put in gateway.remote.url. */
  wsUrl: string;
  /** Opens the Control UI through the relay; with `?token=` the relay trades the token for a cookie. */
  browserUrl: string;
  /** The host's own browser origin on the relay, when the relay has a host name. */
  origin: string | undefined;
}

/** Where a client reaches `hostId` through the relay at `relayUrl` (ws(s)/http(s), any path). */
export function clientLinks(relayUrl: string, hostId: string): ClientLinks {
  let u: URL;
  try {
    u = new URL(relayUrl);
  } catch {
    throw new LoopgateError(ErrorCodes.URL_INVALID, "the relay URL is not a URL", {
      hint: "e.g. wss://relay.example.com:8443",
    });
  }
  const secure = u.protocol === "wss:" || u.protocol === "https:";
  if (!secure && u.protocol !== "ws:" && u.protocol !== "http:")
    throw new LoopgateError(ErrorCodes.URL_INVALID, `the relay URL must be wss:// or https:// (got ${u.protocol})`);
  // Browsers get the host's own origin on a relay with a name (no other host's page shares it);
  // a relay reached by address has only the path form.
  const origin = secure ? hostOrigin(hostId, relayUrl) : undefined;
  return {
    wsUrl: `${secure ? "wss" : "ws"}://${u.host}/h/${hostId}`,
    browserUrl: origin !== undefined ? `${origin}/` : `${secure ? "https" : "http"}://${u.host}/h/${hostId}/`,
    origin,
  };
}

/** The browser link that signs a device in once: the relay takes the token from the query and drops it from the address bar. */
export function browserSignInUrl(links: ClientLinks, token: string): string {
  return `${links.browserUrl}?token=${encodeURIComponent(token)}`;
}

/** Where a single-use exchange code is spent: the browser sign-in link, and a WebSocket URL for terminal clients. */
export interface ExchangeLinks {
  /** The browser link: the relay trades the code for its cookie and drops it from the address bar. */
  url: string;
  /** For `openclaw tui --url` and other WebSocket clients: the host's own origin when the relay has a name. */
  wsUrl: string;
}

/** The URLs that carry an exchange code instead of the token (the code is base64url: no escaping needed). */
export function exchangeLinks(links: ClientLinks, code: string): ExchangeLinks {
  const q = `?${EXCHANGE_CODE_PARAM}=${encodeURIComponent(code)}`;
  const ws = links.origin !== undefined ? `${links.origin.replace(/^https:/, "wss:")}/` : links.wsUrl;
  return { url: `${links.browserUrl}${q}`, wsUrl: `${ws}${q}` };
}

/** Mints a code for a freshly minted token and records its hash for the link to push; says where to spend it. */
export async function createExchangeCode(
  store: ExchangeCodeStore,
  token: string,
  links: ClientLinks,
  ttlSec?: number,
): Promise<ExchangeLinks & { exp: number }> {
  const { code, exp } = await store.add(token, ttlSec);
  return { ...exchangeLinks(links, code), exp };
}

export type TokenState = "active" | "expired" | "revoked";

export interface TokenView extends TokenRecord {
  state: TokenState;
}

export function tokenState(r: TokenRecord, now = Date.now()): TokenState {
  return r.revokedAt !== undefined ? "revoked" : r.expiresAt * 1000 < now ? "expired" : "active";
}

export function listClientTokens(store: TokenStore, now = Date.now()): TokenView[] {
  return store.list().map((r) => ({ ...r, state: tokenState(r, now) }));
}

export function checkScopes(scopes: readonly string[]): string[] {
  const out = [...new Set(scopes.map((s) => s.trim()).filter((s) => s !== ""))];
  if (out.length === 0)
    throw new LoopgateError(ErrorCodes.USAGE, "a token needs at least one scope", {
      hint: "e.g. operator.read,operator.write",
    });
  const unknown = out.filter((s) => !ALL_OPERATOR_SCOPES.includes(s));
  if (unknown.length > 0)
    throw new LoopgateError(ErrorCodes.USAGE, `unknown scope ${JSON.stringify(unknown[0]!.slice(0, 40))}`, {
      hint: `scopes are ${ALL_OPERATOR_SCOPES.join(", ")}`,
    });
  return out;
}

export interface CreateTokenInput {
  identity: HostIdentity;
  store: TokenStore;
  relayUrl: string;
  relayFingerprint: string | string[] | undefined;
  ttlSec: number;
  scopes: readonly string[];
  name?: string | undefined;
}

export interface CreatedToken {
  id: string;
  hostId: string;
  name: string | undefined;
  scopes: string[];
  /** Seconds since the epoch. */
  exp: number;
  token: string;
  links: ClientLinks;
  /** Ready to paste into the client's config file. */
  clientConfig: { gateway: { mode: "remote"; remote: { url: string; token: string; tlsFingerprint?: string[] } } };
}

/** Mints a client token for the relay at `relayUrl`, records it (never the token itself), and says how a client uses it. */
export async function createClientToken(input: CreateTokenInput): Promise<CreatedToken> {
  const name = input.name?.trim() || undefined;
  if (name !== undefined && name.length > MAX_TOKEN_NAME)
    throw new LoopgateError(ErrorCodes.USAGE, `a token name has at most ${MAX_TOKEN_NAME} characters`);
  const scopes = checkScopes(input.scopes);
  const links = clientLinks(input.relayUrl, input.identity.hostId);
  const pins = parsePins(input.relayFingerprint);
  const audience = relayAudience(input.relayUrl);
  const minted = await mintClientToken(input.identity.privateKey, input.identity.hostId, {
    audience,
    ttlSec: input.ttlSec,
    scopes,
    ...(name ? { name } : {}),
  });
  input.store.add({ id: minted.id, name, scopes, audience, createdAt: Date.now(), expiresAt: minted.exp });
  return {
    id: minted.id,
    hostId: input.identity.hostId,
    name,
    scopes,
    exp: minted.exp,
    token: minted.token,
    links,
    clientConfig: {
      gateway: {
        mode: "remote",
        remote: {
          url: links.wsUrl,
          token: minted.token,
          ...(pins.length ? { tlsFingerprint: pins.map(formatPin) } : {}),
        },
      },
    },
  };
}
