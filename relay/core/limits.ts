/**
 * Relay limits and the close codes it uses. Every limit is enforced with a
 * clear close code and reason; the same values on Node and Workers.
 */
export interface RelayLimits {
  /** Concurrent client streams per host. */
  maxStreamsPerHost: number;
  /** Concurrent streams one client token may hold on a host (default: a quarter of the per-host limit). */
  maxStreamsPerToken?: number;
  /** Concurrent streams one client address may hold on a host (default: half the per-host limit). */
  maxStreamsPerClientAddr?: number;
  /** Largest client message forwarded (bytes); larger closes 1009. */
  maxMessageBytes: number;
  /** Bytes the relay holds for one stream before it stops reading (Node) or closes it (Workers). */
  maxBufferedPerStream: number;
  /** Largest token accepted in any position (bytes). */
  maxTokenBytes: number;
  /** Auth failures per client address before lockout. */
  authFailures: { maxFailures: number; windowMs: number; lockoutMs: number };
  /** Heartbeat: ping every intervalMs, dead after timeoutMs of silence. */
  heartbeat: { intervalMs: number; timeoutMs: number };
  /** HTTP bodies forwarded under /h/HOSTID/… */
  maxHttpBodyBytes: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxStreamsPerHost: 1024,
  maxMessageBytes: 25 * 1024 * 1024,
  maxBufferedPerStream: 1024 * 1024,
  maxTokenBytes: 4096,
  authFailures: { maxFailures: 20, windowMs: 60_000, lockoutMs: 60_000 },
  heartbeat: { intervalMs: 15_000, timeoutMs: 45_000 },
  maxHttpBodyBytes: 8 * 1024 * 1024,
};

/** The per-token and per-address stream caps in force: configured or derived, never above the per-host limit. */
export function streamCaps(l: RelayLimits): { perToken: number; perAddr: number } {
  const clamp = (v: number) => Math.max(1, Math.min(l.maxStreamsPerHost, Math.floor(v)));
  return {
    perToken: clamp(l.maxStreamsPerToken ?? l.maxStreamsPerHost / 4),
    perAddr: clamp(l.maxStreamsPerClientAddr ?? l.maxStreamsPerHost / 2),
  };
}

/** Close codes seen by clients of the relay. */
export const RelayClose = {
  NORMAL: 1000,
  GOING_AWAY: 1001, // relay shutting down
  POLICY: 1008, // token revoked, limits
  TOO_BIG: 1009,
  INTERNAL: 1011,
  RESTART: 1012, // the host link went away, was replaced or is restarting
  TRY_AGAIN: 1013, // host offline, too many streams
  HOST_OFFLINE: 4404, // a Worker restored a client whose host had no link by then (live streams end with RESTART)
  REVOKED: 4401, // the token was revoked
} as const;
