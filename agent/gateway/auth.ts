/**
 * Connection auth for the gateway: checks the `connect` credentials against
 * the configured mode in constant time, rate-limits failures per real client
 * address, and never lets a forwarded (relayed/proxied) connection use the
 * loopback-only `none` mode.
 */
import { timingSafeEqualStr } from "../../shared/ct-compare.ts";
import { FailureLimiter } from "../../shared/rate-limit.ts";
import type { GatewaySettings } from "./settings.ts";
import { ConnectErrorDetails } from "./protocol.ts";
import { ALL_OPERATOR_SCOPES } from "./scopes.ts";
import type { PeerInfo } from "./peer.ts";

export type AuthOk = {
  ok: true;
  method: "token" | "password" | "none" | "client-token" | "tailscale" | "trusted-proxy";
  role: string;
  allowedScopes: readonly string[];
  subject?: string;
  /** The id of the host-minted client token used (method client-token): revoking it closes the connection. */
  tokenId?: string;
};
export type AuthFail = { ok: false; detail: string; message: string; retryAfterMs?: number; rateLimited?: boolean };
export type AuthResult = AuthOk | AuthFail;

/** Verifies a host-minted client token (relay issue); returns its scopes or undefined. */
export type ClientTokenVerifier = (
  token: string,
) => Promise<{ scopes: string[]; id: string; name?: string } | undefined>;

export class GatewayAuth {
  readonly #settings: GatewaySettings["auth"];
  readonly #limiter: FailureLimiter;
  #clientTokenVerifier: ClientTokenVerifier | undefined;

  constructor(settings: GatewaySettings["auth"], opts: { clientTokenVerifier?: ClientTokenVerifier } = {}) {
    this.#settings = settings;
    this.#limiter = new FailureLimiter(settings.rateLimit);
    this.#clientTokenVerifier = opts.clientTokenVerifier;
  }

  setClientTokenVerifier(v: ClientTokenVerifier | undefined): void {
    this.#clientTokenVerifier = v;
  }

  get mode(): string {
    return this.#settings.mode;
  }

  /**
   * The limiter key for a peer, or undefined when it is exempt: a direct
   * loopback client (no forwarding headers) without a browser Origin, so the
   * owner's own CLI can never be locked out by wrong tokens (OpenClaw's
   * exemptLoopback). A loopback browser page is limited per page origin; a
   * relayed or proxied client by the real address the relay saw.
   */
  #limitKey(peer: PeerInfo): string | undefined {
    if (peer.local && this.#settings.rateLimit.exemptLoopback && (peer.origin === undefined || peer.origin === ""))
      return undefined;
    return peer.local && peer.origin
      ? `${peer.clientAddr} ${peer.origin.slice(0, 200).toLowerCase()}`
      : peer.clientAddr;
  }

  async verify(auth: { token?: string; password?: string } | undefined, peer: PeerInfo): Promise<AuthResult> {
    const key = this.#limitKey(peer);
    if (key === undefined) return this.#check(auth, peer);
    const wait = this.#limiter.retryAfterMs(key);
    if (wait > 0) {
      return {
        ok: false,
        detail: ConnectErrorDetails.AUTH_RATE_LIMITED,
        message: `too many failed auth attempts; retry in ${Math.ceil(wait / 1000)}s`,
        retryAfterMs: wait,
        rateLimited: true,
      };
    }
    const result = await this.#check(auth, peer);
    if (result.ok) this.#limiter.succeed(key);
    else this.#limiter.fail(key);
    return result;
  }

  async #check(auth: { token?: string; password?: string } | undefined, peer: PeerInfo): Promise<AuthResult> {
    const s = this.#settings;
    // No credential in connect: a relayed browser is authenticated by the token the relay checked.
    const token = auth?.token ?? (auth?.password === undefined ? peer.edgeToken : undefined);
    const password = auth?.password;
    const full = { role: "operator", allowedScopes: ALL_OPERATOR_SCOPES };

    // A host-minted client token (JWT) is accepted in every mode: it is how relayed clients authenticate.
    if (token?.startsWith("eyJ") && this.#clientTokenVerifier) {
      const claims = await this.#clientTokenVerifier(token).catch(() => undefined);
      if (claims)
        return {
          ok: true,
          method: "client-token",
          role: "operator",
          allowedScopes: claims.scopes,
          subject: claims.name ?? claims.id,
          tokenId: claims.id,
        };
    }

    // A verified proxy identity stands in for a credential only when none was given.
    if (token === undefined && password === undefined && peer.proxyIdentity) {
      const id = peer.proxyIdentity;
      if (id.via === "tailscale" && s.allowTailscale)
        return { ok: true, method: "tailscale", subject: id.user, ...full };
      if (id.via === "trusted-proxy" && s.mode === "trusted-proxy")
        return { ok: true, method: "trusted-proxy", subject: id.user, ...full };
    }

    switch (s.mode) {
      case "trusted-proxy":
        return {
          ok: false,
          detail: ConnectErrorDetails.AUTH_UNAUTHORIZED,
          message:
            "unauthorized: this gateway accepts identities from its trusted proxy only (or a host-minted client token)",
        };
      case "none":
        if (peer.local) return { ok: true, method: "none", ...full };
        // Forwarded connections never inherit loopback trust: they need a credential.
        if (token !== undefined && s.token && (await timingSafeEqualStr(token, s.token.value)))
          return { ok: true, method: "token", ...full };
        return {
          ok: false,
          detail: ConnectErrorDetails.AUTH_REQUIRED,
          message: "unauthorized: this connection is forwarded, and auth none applies to direct loopback clients only",
        };
      case "token":
        return sharedSecret("token", token, s.token, full);
      case "password":
        return sharedSecret("password", password, s.password, full);
      default:
        return {
          ok: false,
          detail: ConnectErrorDetails.AUTH_UNAUTHORIZED,
          message: `unauthorized: auth mode ${s.mode} is not available for this connection`,
        };
    }
  }
}

const SECRET_DETAILS = {
  token: {
    missing: ConnectErrorDetails.AUTH_TOKEN_MISSING,
    mismatch: ConnectErrorDetails.AUTH_TOKEN_MISMATCH,
    hint: "pass --token or set OPENCLAW_GATEWAY_TOKEN",
  },
  password: {
    missing: ConnectErrorDetails.AUTH_PASSWORD_MISSING,
    mismatch: ConnectErrorDetails.AUTH_PASSWORD_MISMATCH,
    hint: "pass --password or set OPENCLAW_GATEWAY_PASSWORD",
  },
} as const;

/** Modes token and password: the configured secret, compared with the given one in constant time. */
async function sharedSecret(
  mode: "token" | "password",
  given: string | undefined,
  configured: { value: string } | undefined,
  full: Pick<AuthOk, "role" | "allowedScopes">,
): Promise<AuthResult> {
  const d = SECRET_DETAILS[mode];
  if (!configured)
    return {
      ok: false,
      detail: ConnectErrorDetails.AUTH_UNAUTHORIZED,
      message: `unauthorized: no gateway ${mode} is configured`,
    };
  if (given === undefined || given === "")
    return { ok: false, detail: d.missing, message: `unauthorized: gateway ${mode} missing (${d.hint})` };
  if (await timingSafeEqualStr(given, configured.value)) return { ok: true, method: mode, ...full };
  return { ok: false, detail: d.mismatch, message: `unauthorized: gateway ${mode} mismatch` };
}
