/**
 * What `loopgate token create` prints for a client: ready-to-paste config for
 * the client that will use the token, and the browser link.
 *
 * - loopgate clients: `gateway.remote.{url, token, tlsFingerprint}` (our
 *   gateway takes the same token in `connect`, so one token serves both hops).
 * - OpenClaw clients: `gateway.remote.{url, tlsFingerprint (a string), edgeAuth}`,
 *   the relay token in edgeAuth under the relay's own header (never in
 *   `token`, which is the OpenClaw gateway's own secret), plus the settings
 *   the OpenClaw gateway on the host needs behind the link. When the link
 *   vouches for its clients (`loopgate link --vouch-header`), no OpenClaw
 *   gateway token at all: the host side is trusted-proxy mode with the link's
 *   header as the user, so the relay token serves both hops.
 */
import { formatPin } from "../../shared/pin.ts";
import { browserSignInUrl, clientLinks } from "../tokens/admin.ts";
import { CLIENT_TOKEN_HEADER, RELAY_HEADER } from "../../shared/http-headers.ts";

export type ClientKind = "openclaw" | "loopgate";

export interface ClientConfigInput {
  kind: ClientKind;
  hostId: string;
  relayUrl: string;
  pins: readonly string[];
  token: string;
  /** The OpenClaw gateway's own token, when the host knows it (OPENCLAW_GATEWAY_TOKEN or --gateway-token-file). */
  gatewayToken?: string;
  /** The header the host's link names verified clients in (trusted-proxy mode upstream). */
  vouchHeader?: string;
}

export interface ClientConfigs {
  /** wss://RELAY/h/HOSTID: what CLIs use (works on any relay, no wildcard DNS needed). */
  url: string;
  /** The host's own origin with a one-time ?token= (or the /h/ path form on a relay reached by IP). */
  browserUrl: string;
  /** The host's own browser origin on the relay, when the relay has a host name. */
  origin: string | undefined;
  clientConfig: Record<string, unknown>;
  /** For OpenClaw: the client's config file, to write as is. */
  openclawConfig?: Record<string, unknown>;
  /** For OpenClaw: what to add to the OpenClaw gateway's config on this host. */
  openclawHostConfig?: Record<string, unknown>;
}

/** What an OpenClaw client behind a vouching link gives as its password: a fixed placeholder, never checked (see README). */
export const VOUCHED_PLACEHOLDER_PASSWORD = "none:the-loopgate-link-vouches";

export function buildClientConfigs(i: ClientConfigInput): ClientConfigs {
  const links = clientLinks(i.relayUrl, i.hostId);
  const { wsUrl: url, origin } = links;
  const browserUrl = browserSignInUrl(links, i.token);
  const pin = i.pins[0] !== undefined ? formatPin(i.pins[0]) : undefined;
  if (i.kind === "loopgate") {
    return {
      url,
      browserUrl,
      origin,
      clientConfig: {
        gateway: {
          mode: "remote",
          remote: { url, token: i.token, ...(i.pins.length ? { tlsFingerprint: i.pins.map(formatPin) } : {}) },
        },
      },
    };
  }
  const openclawConfig = {
    gateway: {
      mode: "remote",
      remote: {
        url,
        ...(i.gatewayToken && !i.vouchHeader ? { token: i.gatewayToken } : {}),
        ...(pin ? { tlsFingerprint: pin } : {}),
        edgeAuth: { [CLIENT_TOKEN_HEADER]: i.token },
        // OpenClaw's TUI will not dial without a token or password of its own; a gateway in trusted-proxy mode
        // authenticates relayed clients by the link's header and never checks this one. Not a secret.
        ...(i.vouchHeader ? { password: VOUCHED_PLACEHOLDER_PASSWORD } : {}),
      },
      // OpenClaw's CLI refuses to dial a token- or password-mode gateway without that secret; this one
      // authenticates by its proxy (the link), so the client says so and sends only the relay token.
      ...(i.vouchHeader ? { auth: { mode: "trusted-proxy", trustedProxy: { userHeader: i.vouchHeader } } } : {}),
    },
  };
  const openclawHostConfig = {
    gateway: {
      // Connections from the link come from loopback: use the client address the relay saw.
      trustedProxies: ["127.0.0.1", "::1"],
      // The link verified the client's token with the host key and names it (the token id) in its own header;
      // it drops any copy a client sent. The link connects from loopback, hence allowLoopback (see README).
      ...(i.vouchHeader
        ? {
            auth: {
              mode: "trusted-proxy",
              trustedProxy: { userHeader: i.vouchHeader, requiredHeaders: [RELAY_HEADER], allowLoopback: true },
            },
          }
        : {}),
      ...(origin ? { controlUi: { allowedOrigins: [origin] } } : {}),
    },
  };
  return { url, browserUrl, origin, clientConfig: openclawConfig, openclawConfig, openclawHostConfig };
}
