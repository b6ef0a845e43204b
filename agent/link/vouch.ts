/**
 * Vouching: one loopgate client token for both hops in front of a gateway in
 * trusted-proxy mode (OpenClaw's `gateway.auth.mode: "trusted-proxy"`, which
 * takes the user from a header set by a proxy on a listed address).
 *
 * The relay has verified the client token before it sent the OPEN, and a
 * WebSocket OPEN carries that token. The standalone link verifies it again
 * with the host's own key (signature, issuer, audience = the relay it dialled,
 * expiry, revocation): a relay cannot vouch for anyone by itself. Only then
 * does the request get the vouch header, naming the token's id, and
 * `x-openclaw-scopes`, the token's operator scopes (OpenClaw caps the session
 * to them), and lose the token itself (the upstream never needs it); a copy of that header from
 * anywhere else is always dropped. An OPEN without a token
 * (plain HTTP: assets, the relay never forwards its token there) goes on
 * without the header; one whose token does not verify is refused.
 */
import type { CryptoKey, JWK } from "jose";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { verifyClientToken, relayAudience } from "../../shared/tokens.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { HOST_SET_HEADERS, type UpstreamRequest } from "./upstream-request.ts";
import { CLIENT_TOKEN_HEADER } from "../../shared/http-headers.ts";

/** OpenClaw's scope cap for a proxied request; only the link sets it (any other copy is dropped). */
export const SCOPES_HEADER = "x-openclaw-scopes";

/** Headers that mean something else to a gateway or proxy: never a vouch header. */
const RESERVED = new Set<string>([
  ...HOST_SET_HEADERS,
  CLIENT_TOKEN_HEADER,
  "x-forwarded-host",
  "x-forwarded-user",
  "x-real-ip",
  "x-openclaw-scopes",
]);

/** A vouch header name: lower case, `x-` and token characters, none the link or a proxy chain already gives a meaning. */
export function checkVouchHeader(name: string): string {
  const h = name.trim().toLowerCase();
  if (!/^x-[a-z0-9][a-z0-9-]{0,62}$/.test(h))
    throw new LoopgateError(
      ErrorCodes.USAGE,
      `--vouch-header must be a header name starting with x- (got ${name.slice(0, 70)})`,
      { hint: "e.g. --vouch-header x-loopgate-user" },
    );
  if (RESERVED.has(h) || h.startsWith("x-forwarded-"))
    throw new LoopgateError(
      ErrorCodes.USAGE,
      `--vouch-header ${h} already means something else; pick a header of its own`,
      { hint: "e.g. --vouch-header x-loopgate-user" },
    );
  return h;
}

export interface VoucherOptions {
  /** The header to set (checked with checkVouchHeader). */
  header: string;
  hostId: string;
  hostKey: JWK | CryptoKey;
  /** The relay this link dialled: the only audience accepted. */
  relayUrl: string;
  isRevoked: (tokenId: string) => boolean;
}

export class Voucher {
  readonly header: string;
  readonly #o: VoucherOptions;

  constructor(o: VoucherOptions) {
    this.header = checkVouchHeader(o.header);
    this.#o = o;
  }

  /**
   * The request as the upstream gets it: never with a copy of the vouch
   * header it did not set, and with it (the token's id) when the OPEN carries
   * a client token that verifies with the host key. Rejects with a
   * LoopgateError (TOKEN_INVALID) when the token does not verify.
   */
  async vouch(meta: OpenMeta, req: UpstreamRequest): Promise<UpstreamRequest> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (k.toLowerCase() !== this.header && k.toLowerCase() !== SCOPES_HEADER) headers[k] = v;
    const token = meta.headers[CLIENT_TOKEN_HEADER];
    if (token === undefined) return { ...req, headers };
    const claims = await verifyClientToken(token, this.#o.hostKey, {
      hostId: this.#o.hostId,
      audience: relayAudience(this.#o.relayUrl),
      isRevoked: this.#o.isRevoked,
    });
    // The token was for the relay and the link; a gateway that trusts the header never needs to see it.
    delete headers[CLIENT_TOKEN_HEADER];
    headers[this.header] = claims.id;
    // OpenClaw caps a proxied session (and a device it enrolls) to these: a read-only token stays read-only there.
    headers[SCOPES_HEADER] = claims.scopes.filter((sc) => /^operator\.[a-z.]{1,40}$/.test(sc)).join(",");
    return { ...req, headers };
  }
}
