/**
 * Who may pass the relay. Runs before anything reaches a host, on Node and
 * Workers alike:
 * - clients present a host-minted EdDSA token as `Authorization: Bearer`, as
 *   `x-loopgate-client-token`, as a WebSocket subprotocol `bearer.<token>`
 *   (beside `loopgate.v1`), as the host-scoped cookie a browser got from a
 *   one-time `?token=` exchange, or as `?token=`; or a single-use `?code=`
 *   that stands for a token the host pushed (exchange-codes.ts). An `Authorization` that is
 *   not a loopgate token for this host belongs to the upstream (a UI's own
 *   bearer secret): the relay ignores it and forwards it;
 * - links present a short-lived link token whose key hashes to the host id,
 *   and the host id must be on the allow-list.
 * Refusals are uniform: a client learns 401 whether the host is unknown or
 * the token is bad, after the same amount of work, and the same text: a
 * reason is named only for a token whose signature verified with the host's
 * key (expired, revoked, wrong audience), which no one can present for a host
 * that is not there.
 * Audiences come from the relay's configuration only, never from the request.
 */
import type { JWK } from "jose";
import { generateKeyPair } from "jose/key/generate/keypair";
import { exportJWK } from "jose/key/export";
import { decodeJwt } from "jose/jwt/decode";
import { LoopgateError } from "../../shared/errors.ts";
import { bearerToken, CLIENT_TOKEN_HEADER } from "../../shared/http-headers.ts";
import { setBounded } from "../../shared/bounded-map.ts";
import {
  verifyClientToken,
  verifyLinkToken,
  checkHostPublicJwk,
  importHostPublicJwk,
  type ClientClaims,
  type TokenFailure,
} from "../../shared/tokens.ts";
import type { RefusalReason } from "./metrics.ts";
import { EXCHANGE_CODE_PARAM, hashExchangeCode, isExchangeCodeShape } from "./exchange-codes.ts";

export const SUBPROTOCOL = "loopgate.v1";
export const BEARER_PROTOCOL_PREFIX = "bearer.";

export interface HostRecord {
  hostId: string;
  publicJwk: JWK;
  isRevoked(tokenId: string): boolean;
  /** The token an exchange code (by its sha256) stands for, once; the code is spent by the call. */
  redeemExchangeCode?(hash: string): string | undefined;
}

export type TokenSource = "authorization" | "header" | "subprotocol" | "cookie" | "query";

export interface ExtractedToken {
  token: string;
  source: TokenSource;
  /** `token` is an exchange code (`?code=`), not yet traded for the token it stands for. */
  exchange?: true;
}

export function cookieName(hostId: string): string {
  return `lg_${hostId.slice(0, 16).replace(/[^A-Za-z0-9_-]/g, "")}`;
}

function parseCookies(header: string | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/**
 * Is this Authorization value the relay's to check: a loopgate token, for this
 * host or any other (decoded, not verified)? Anything else is the upstream's
 * own credential. A loopgate token is never forwarded to a host, so one host's
 * token sent to another by mistake reaches neither.
 */
export function isOwnAuthorization(value: string | null, hostId: string): boolean {
  const token = bearerToken(value);
  if (token === undefined) return false;
  try {
    const claims = decodeJwt(token);
    return claims.iss === hostId || claims.purpose === "client" || claims.purpose === "link";
  } catch {
    return false;
  }
}

/**
 * Finds the client token in a request, in order: Authorization (ours only),
 * our header, subprotocol, `?code=`, cookie, `?token=`. A code comes before
 * the cookie: it is spent when presented, and a browser that already has a
 * cookie must still trade it (and drop it from the address bar).
 */
export function extractClientToken(
  req: Request,
  hostId: string,
  opts: { allowQuery: boolean; cookieName?: string },
): ExtractedToken | undefined {
  const auth = req.headers.get("authorization");
  if (isOwnAuthorization(auth, hostId)) return { token: bearerToken(auth) ?? "", source: "authorization" };
  const own = req.headers.get(CLIENT_TOKEN_HEADER);
  if (own) return { token: own.trim(), source: "header" };
  const protos = req.headers.get("sec-websocket-protocol");
  if (protos) {
    const p = protos
      .split(",")
      .map((s) => s.trim())
      .find((s) => s.startsWith(BEARER_PROTOCOL_PREFIX));
    if (p) return { token: p.slice(BEARER_PROTOCOL_PREFIX.length), source: "subprotocol" };
  }
  if (opts.allowQuery) {
    const code = new URL(req.url).searchParams.get(EXCHANGE_CODE_PARAM);
    if (code) return { token: code, source: "query", exchange: true };
  }
  const cookie = parseCookies(req.headers.get("cookie")).get(opts.cookieName ?? cookieName(hostId));
  if (cookie) return { token: cookie, source: "cookie" };
  if (opts.allowQuery) {
    const q = new URL(req.url).searchParams.get("token");
    if (q) return { token: q, source: "query" };
  }
  return undefined;
}

/** The subprotocol the relay answers with, if the client offered ours. */
export function chooseSubprotocol(req: Request): string | undefined {
  const protos = req.headers.get("sec-websocket-protocol");
  if (!protos) return undefined;
  return protos
    .split(",")
    .map((s) => s.trim())
    .includes(SUBPROTOCOL)
    ? SUBPROTOCOL
    : undefined;
}

/**
 * Host keys imported for verification, by the key itself (its public bytes,
 * `x`), not by host: a token is checked with exactly the key the record
 * holds now, never with one a host had before. Importing costs about as
 * much as verifying, on every client connect; bounded, oldest out first.
 */
const importedKeys = new Map<string, Promise<CryptoKey>>();
const MAX_IMPORTED_KEYS = 4096;

function importedKey(jwk: JWK): Promise<CryptoKey> {
  const x = checkHostPublicJwk(jwk).x!;
  let key = importedKeys.get(x);
  if (!key) {
    key = importHostPublicJwk(jwk);
    setBounded(importedKeys, x, key, MAX_IMPORTED_KEYS);
    key.catch(() => importedKeys.delete(x));
  }
  return key;
}

/**
 * Client tokens that verified, while unexpired: a client that connects again
 * with the same token is not put through Ed25519 again (most of a token
 * check). Keyed by the whole token with the host, the key that verified it
 * and the audiences, so a hit stands for exactly the check that passed;
 * expiry and revocation are checked on every use, and anything but a
 * current, unrevoked hit goes through the full check, which also gives every
 * refusal. Refused tokens are never kept, so a bad token costs the same work
 * as before, known host or not. Bounded, oldest out first.
 */
const verifiedTokens = new Map<string, ClientClaims>();
const MAX_VERIFIED_TOKENS = 256;

function verifiedToken(cacheKey: string, record: HostRecord): ClientClaims | undefined {
  const claims = verifiedTokens.get(cacheKey);
  if (!claims) return undefined;
  if (claims.exp <= Math.floor(Date.now() / 1000)) {
    verifiedTokens.delete(cacheKey);
    return undefined;
  }
  if (record.isRevoked(claims.id)) return undefined;
  return { ...claims, scopes: [...claims.scopes] };
}

function rememberVerified(cacheKey: string, claims: ClientClaims): void {
  setBounded(verifiedTokens, cacheKey, { ...claims, scopes: [...claims.scopes] }, MAX_VERIFIED_TOKENS);
}

let decoy: Promise<CryptoKey> | undefined;
/** A key no token verifies against, so unknown hosts cost the same work as known ones. */
function decoyKey(): Promise<CryptoKey> {
  decoy ??= generateKeyPair("Ed25519", { extractable: true })
    .then(({ publicKey }) => exportJWK(publicKey))
    .then((j) => importedKey(j));
  return decoy;
}

/** Failures that can only follow a good signature by the host's key: safe to name. Anything else is "invalid", whoever the host. */
const SIGNED_FAILURES: ReadonlySet<string> = new Set<TokenFailure>([
  "expired",
  "not_yet_valid",
  "wrong_audience",
  "wrong_purpose",
  "revoked",
]);

/** The metrics label of a token failure (the text shown to the client stays as uniform as before). */
function failureLabel(raw: string): RefusalReason {
  switch (raw) {
    case "expired":
      return "token_expired";
    case "revoked":
      return "token_revoked";
    case "wrong_audience":
      return "wrong_audience";
    default:
      return "token_invalid";
  }
}

/** `missing`: no token was presented at all (nothing guessed, so not a failed login). `why`: the refusal's metrics label. */
export type ClientAuthResult =
  | { ok: true; claims: ClientClaims; source: TokenSource; token: string }
  | { ok: false; status: 401 | 403; reason: string; why: RefusalReason; missing?: true };

export async function authenticateClient(
  req: Request,
  hostId: string,
  record: HostRecord | undefined,
  audiences: readonly string[],
  opts: { allowQuery: boolean; maxTokenBytes: number; cookieName?: string },
): Promise<ClientAuthResult> {
  const found = extractClientToken(req, hostId, opts);
  if (!found)
    return {
      ok: false,
      status: 401,
      missing: true,
      why: "token_missing",
      reason: "token required: send Authorization: Bearer <token> (loopgate token create on the host mints one)",
    };
  if (found.token.length > opts.maxTokenBytes)
    return {
      ok: false,
      status: 401,
      why: "token_invalid",
      reason: `token refused (larger than ${opts.maxTokenBytes} bytes)`,
    };
  let token = found.token;
  if (found.exchange) {
    // Unknown, spent, expired or malformed: the same refusal as any bad token (whether a code ever existed stays unsaid).
    const hash = isExchangeCodeShape(found.token) ? await hashExchangeCode(found.token) : undefined;
    const mapped = hash !== undefined ? record?.redeemExchangeCode?.(hash) : undefined;
    if (mapped === undefined)
      return { ok: false, status: 401, why: "token_invalid", reason: "token refused (invalid)" };
    token = mapped;
  }
  try {
    const key = await (record ? importedKey(record.publicJwk) : decoyKey());
    const cacheKey = record ? `${hostId}\n${record.publicJwk.x}\n${audiences.join(" ")}\n${token}` : undefined;
    const known = cacheKey !== undefined && record ? verifiedToken(cacheKey, record) : undefined;
    if (known) return { ok: true, claims: known, source: found.source, token };
    const claims = await verifyClientToken(token, key, {
      hostId,
      audience: [...audiences],
      ...(record ? { isRevoked: (id) => record.isRevoked(id) } : {}),
    });
    if (!record || cacheKey === undefined)
      return { ok: false, status: 401, why: "token_invalid", reason: "token refused (invalid)" };
    rememberVerified(cacheKey, claims);
    return { ok: true, claims, source: found.source, token };
  } catch (e) {
    const raw =
      e instanceof LoopgateError ? ((e.details as { reason?: string } | undefined)?.reason ?? "invalid") : "invalid";
    const reason = record && SIGNED_FAILURES.has(raw) ? raw : "invalid";
    // Revoked and wrong-audience tokens are real tokens that are not welcome here: 403. Everything else: 401.
    return {
      ok: false,
      status: reason === "revoked" || reason === "wrong_audience" ? 403 : 401,
      why: failureLabel(reason),
      reason: `token refused (${reason})`,
    };
  }
}

export type LinkAuthResult =
  | { ok: true; hostId: string; publicJwk: JWK; jti: string; exp: number }
  | { ok: false; status: 401 | 403; reason: string; why: RefusalReason };

export async function authenticateLink(
  req: Request,
  audiences: readonly string[],
  isAllowed: (hostId: string) => boolean,
  maxTokenBytes: number,
): Promise<LinkAuthResult> {
  const auth = req.headers.get("authorization");
  const token = bearerToken(auth);
  if (!auth || token === undefined)
    return { ok: false, status: 401, why: "token_missing", reason: "link token required" };
  if (auth.length > maxTokenBytes + 16)
    return {
      ok: false,
      status: 401,
      why: "token_invalid",
      reason: `link token refused (larger than ${maxTokenBytes} bytes)`,
    };
  try {
    const v = await verifyLinkToken(token, { audience: [...audiences] });
    if (!isAllowed(v.hostId))
      return {
        ok: false,
        status: 403,
        why: "not_allowed",
        reason: `host ${v.hostId} is not on this relay's allow-list (relay serve --allow-host=${v.hostId})`,
      };
    return { ok: true, hostId: v.hostId, publicJwk: v.publicJwk, jti: v.jti, exp: v.exp };
  } catch (e) {
    const reason =
      e instanceof LoopgateError ? ((e.details as { reason?: string } | undefined)?.reason ?? "invalid") : "invalid";
    return { ok: false, status: 401, why: failureLabel(reason), reason: `link token refused (${reason})` };
  }
}

/**
 * Link token ids seen and not yet expired, in memory (the Node relay; the
 * Workers relay keeps them in the host's Durable Object storage). Bounded:
 * only tokens that verified with an allowed host's key get here, at most one
 * per link attempt, and each is dropped once expired.
 */
export class LinkTokenLedger {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** True the first time a (host, jti) is presented before its expiry; false for a replay. */
  claim(hostId: string, jti: string, exp: number, nowSec = Math.floor(Date.now() / 1000)): boolean {
    for (const [k, e] of this.#seen) if (e < nowSec) this.#seen.delete(k);
    const key = `${hostId}:${jti}`;
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= this.#max) return false;
    this.#seen.set(key, exp);
    return true;
  }
}
