/**
 * Host identity and tokens (jose; Web Crypto only, so Node and Workers share it).
 *
 * - A host is an Ed25519 key; its id is the RFC 7638 JWK thumbprint.
 * - Link tokens: EdDSA JWTs the host signs for each link connection
 *   (purpose "link", iss = sub = hostId, aud = the relay, ≤ 5 min), carrying
 *   the host's public JWK in the header so the relay can check that the key
 *   hashes to the host id it admits.
 * - Client tokens: EdDSA JWTs the host mints for its users (purpose "client",
 *   iss = hostId, aud = the relay, exp/nbf, jti for revocation, scope, name).
 *   The relay and the gateway verify them with the host's public key.
 * Every failure is a LoopgateError(TOKEN_INVALID) with a short reason code;
 * a token never appears in a message.
 */
// jose by subpath: the package index also loads JWE and everything else (~8 MiB more RSS in a relay).
import { SignJWT } from "jose/jwt/sign";
import { jwtVerify } from "jose/jwt/verify";
import { decodeJwt } from "jose/jwt/decode";
import { decodeProtectedHeader } from "jose/decode/protected_header";
import { calculateJwkThumbprint } from "jose/jwk/thumbprint";
import { EmbeddedJWK } from "jose/jwk/embedded";
import { importJWK } from "jose/key/import";
import * as errors from "jose/errors";
import type { JWK, CryptoKey, JWTPayload } from "jose";
import { LoopgateError, ErrorCodes } from "./errors.ts";

export const MAX_TOKEN_BYTES = 4096;
export const MAX_LINK_TOKEN_TTL_SEC = 300;
/** Clock skew allowed between host and relay: an `iat` further in the future is refused. */
export const MAX_CLOCK_SKEW_SEC = 30;

export type TokenFailure =
  | "malformed"
  | "too_large"
  | "alg_not_allowed"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "wrong_audience"
  | "wrong_issuer"
  | "wrong_purpose"
  | "revoked"
  | "key_mismatch"
  | "ttl_too_long";

export function tokenError(reason: TokenFailure, message: string): LoopgateError {
  return new LoopgateError(ErrorCodes.TOKEN_INVALID, message, { details: { reason } });
}

export interface ClientClaims {
  hostId: string;
  id: string;
  name: string | undefined;
  scopes: string[];
  exp: number;
  iat: number | undefined;
}

export async function hostIdFromJwk(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x } as JWK, "sha256");
}

/** Accepts only an Ed25519 public key (OKP, no private part). */
export function checkHostPublicJwk(jwk: unknown): JWK {
  const k = jwk as Record<string, unknown> | null;
  if (
    !k ||
    typeof k !== "object" ||
    k.kty !== "OKP" ||
    k.crv !== "Ed25519" ||
    typeof k.x !== "string" ||
    k.x.length !== 43 ||
    "d" in k
  ) {
    throw tokenError("malformed", "not an Ed25519 public key");
  }
  return { kty: "OKP", crv: "Ed25519", x: k.x };
}

export async function importHostPublicJwk(jwk: unknown): Promise<CryptoKey> {
  return (await importJWK(checkHostPublicJwk(jwk), "EdDSA")) as CryptoKey;
}

function randomId(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export async function signLinkToken(
  privateKey: CryptoKey,
  publicJwk: JWK,
  hostId: string,
  audience: string,
  ttlSec = 60,
): Promise<string> {
  return new SignJWT({ purpose: "link" })
    .setProtectedHeader({ alg: "EdDSA", typ: "JWT", jwk: checkHostPublicJwk(publicJwk) })
    .setIssuer(hostId)
    .setSubject(hostId)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${Math.min(ttlSec, MAX_LINK_TOKEN_TTL_SEC)}s`)
    .setJti(randomId())
    .sign(privateKey);
}

export async function mintClientToken(
  privateKey: CryptoKey,
  hostId: string,
  opts: { audience: string; ttlSec: number; scopes: string[]; name?: string; id?: string },
): Promise<{ token: string; id: string; exp: number }> {
  const id = opts.id ?? randomId();
  const now = Math.floor(Date.now() / 1000);
  const exp = now + opts.ttlSec;
  const token = await new SignJWT({
    purpose: "client",
    scope: opts.scopes.join(" "),
    ...(opts.name ? { name: opts.name } : {}),
  })
    .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
    .setIssuer(hostId)
    .setSubject(opts.name ?? id)
    .setAudience(opts.audience)
    .setIssuedAt(now)
    .setNotBefore(now - 30)
    .setExpirationTime(exp)
    .setJti(id)
    .sign(privateKey);
  return { token, id, exp };
}

function preCheck(token: string): void {
  if (typeof token !== "string" || token.length === 0) throw tokenError("malformed", "no token");
  if (token.length > MAX_TOKEN_BYTES) throw tokenError("too_large", `token larger than ${MAX_TOKEN_BYTES} bytes`);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) throw tokenError("malformed", "not a JWT");
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw tokenError("malformed", "unreadable token header");
  }
  if (header.alg !== "EdDSA")
    throw tokenError("alg_not_allowed", `algorithm ${String(header.alg).slice(0, 16)} is not allowed`);
  if (header.crit !== undefined) throw tokenError("malformed", "critical header parameters are not supported");
}

function mapJoseError(e: unknown): LoopgateError {
  if (e instanceof LoopgateError) return e;
  if (e instanceof errors.JWTExpired) return tokenError("expired", "token expired");
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "nbf") return tokenError("not_yet_valid", "token not yet valid");
    if (e.claim === "aud") return tokenError("wrong_audience", "token is for another relay");
    if (e.claim === "iss") return tokenError("wrong_issuer", "token was issued by another host");
    if (e.claim === "purpose") return tokenError("wrong_purpose", "wrong kind of token");
    return tokenError("malformed", `token claim ${e.claim} is invalid`);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed)
    return tokenError("bad_signature", "token signature is invalid");
  if (e instanceof errors.JOSEAlgNotAllowed) return tokenError("alg_not_allowed", "token algorithm not allowed");
  return tokenError("malformed", "token could not be verified");
}

/** `iat` may not lie in the future beyond the skew (a future iat would stretch a token's life). */
function checkIssuedAt(payload: JWTPayload, skewSec: number): void {
  if (payload.iat !== undefined && payload.iat > Math.floor(Date.now() / 1000) + skewSec)
    throw tokenError("not_yet_valid", "token issued in the future");
}

export interface VerifyClientOptions {
  hostId: string;
  audience: string | string[];
  isRevoked?: (id: string) => boolean;
  clockToleranceSec?: number;
}

export async function verifyClientToken(
  token: string,
  hostKey: CryptoKey | JWK,
  opts: VerifyClientOptions,
): Promise<ClientClaims> {
  try {
    preCheck(token);
    if (peekUnverifiedIssuer(token) !== opts.hostId)
      throw tokenError("wrong_issuer", "token was issued by another host");
    const key = "kty" in (hostKey as object) ? await importHostPublicJwk(hostKey) : (hostKey as CryptoKey);
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["EdDSA"],
      issuer: opts.hostId,
      audience: opts.audience,
      clockTolerance: opts.clockToleranceSec ?? 30,
      requiredClaims: ["exp", "jti", "iss", "aud"],
    });
    checkIssuedAt(payload, opts.clockToleranceSec ?? MAX_CLOCK_SKEW_SEC);
    return checkClientPayload(payload, opts);
  } catch (e) {
    throw mapJoseError(e);
  }
}

function checkClientPayload(payload: JWTPayload, opts: VerifyClientOptions): ClientClaims {
  if (payload.purpose !== "client") throw tokenError("wrong_purpose", "not a client token");
  const id = payload.jti as string;
  if (opts.isRevoked?.(id)) throw tokenError("revoked", "token was revoked");
  const scope = typeof payload.scope === "string" ? payload.scope : "";
  return {
    hostId: payload.iss as string,
    id,
    name: typeof payload.name === "string" ? payload.name : undefined,
    scopes: scope.split(" ").filter((s) => s !== ""),
    exp: payload.exp as number,
    iat: payload.iat,
  };
}

export interface LinkTokenClaims {
  hostId: string;
  publicJwk: JWK;
  /** The token's id: the relay remembers it until `exp`, so a token links once. */
  jti: string;
  exp: number;
}

/**
 * Verifies a link token with the key in its own header, and that the key is
 * the host's: its thumbprint must equal the issuer. Its life is bounded: iat
 * not in the future (beyond the skew), at most 5 minutes from iat to exp, and
 * exp no further than that from now. The caller checks the host id against
 * its allow-list and that the jti was not used before.
 */
export async function verifyLinkToken(
  token: string,
  opts: { audience: string | string[]; clockToleranceSec?: number },
): Promise<LinkTokenClaims> {
  try {
    preCheck(token);
    const header = decodeProtectedHeader(token);
    const jwk = checkHostPublicJwk(header.jwk);
    const hostId = await hostIdFromJwk(jwk);
    const { payload } = await jwtVerify(token, EmbeddedJWK, {
      algorithms: ["EdDSA"],
      issuer: hostId,
      subject: hostId,
      audience: opts.audience,
      clockTolerance: opts.clockToleranceSec ?? 30,
      requiredClaims: ["exp", "iat", "iss", "aud"],
    });
    if (payload.purpose !== "link") throw tokenError("wrong_purpose", "not a link token");
    const skew = opts.clockToleranceSec ?? MAX_CLOCK_SKEW_SEC;
    checkIssuedAt(payload, skew);
    const exp = payload.exp as number;
    if (
      exp - (payload.iat as number) > MAX_LINK_TOKEN_TTL_SEC ||
      exp > Math.floor(Date.now() / 1000) + MAX_LINK_TOKEN_TTL_SEC + skew
    )
      throw tokenError("ttl_too_long", "link token lifetime too long");
    const jti = payload.jti;
    if (typeof jti !== "string" || jti.length === 0 || jti.length > 128)
      throw tokenError("malformed", "link token id invalid");
    return { hostId, publicJwk: jwk, jti, exp };
  } catch (e) {
    if (e instanceof errors.JWTClaimValidationFailed && e.claim === "iss")
      return Promise.reject(tokenError("key_mismatch", "link token key does not match its host id"));
    throw mapJoseError(e);
  }
}

/** The unverified issuer of a token, for routing only. Never trust it for anything else. */
export function peekUnverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" && iss.length <= 128 ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** The audience value for a relay URL: its origin, as https://host[:port]. */
export function relayAudience(relayUrl: string): string {
  const u = new URL(relayUrl);
  const scheme = u.protocol === "ws:" || u.protocol === "http:" ? "http:" : "https:";
  return `${scheme}//${u.host}`.toLowerCase();
}
