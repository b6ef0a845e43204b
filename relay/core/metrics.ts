/**
 * The relay's own counters, for Node and Workers alike: the app counts
 * refusals and auth failures, the hub counts links, streams and buffer
 * peaks; what is live (hosts linked, open streams, link bytes) is read from
 * the hubs when scraped. A snapshot is plain JSON, so the Workers entry can
 * sum the snapshots of its Durable Objects; `metricFamilies` turns one into
 * OpenMetrics families (relay/core/openmetrics.ts renders them).
 *
 * Every label has a fixed, small set of values. Host ids appear only in the
 * per-host families, which the operator turns on (`--metrics-per-host`).
 */
import { Histogram, type MetricFamily, type Sample } from "./openmetrics.ts";

/** Why the relay refused a request or a stream (the `reason` label). */
export const REFUSAL_REASONS = [
  "token_missing", // no credential at all
  "token_invalid", // bad signature, unknown host, malformed, too large
  "token_expired",
  "token_revoked",
  "token_replayed", // a link token presented twice
  "wrong_audience",
  "not_allowed", // a link for a host not on the allow-list
  "rate_limited", // too many failed attempts from this address
  "stream_cap", // per-host, per-token or per-address stream limit
  "request_shape", // a request that may not be forwarded (path, headers, method, size)
  "browser_policy", // a browser credential used where it may not be
  "host_offline", // the host's link is not connected
  "not_configured", // the relay has no public URL (audience) configured
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Whose credential failed (the `kind` label of auth failures). */
export const AUTH_KINDS = ["client", "link", "metrics"] as const;
export type AuthKind = (typeof AUTH_KINDS)[number];

/** Why a host's link ended (the `reason` label of link drops). */
export const LINK_DROP_REASONS = ["closed", "silent", "replaced", "protocol_error", "shutdown"] as const;
export type LinkDropReason = (typeof LINK_DROP_REASONS)[number];

export const STREAM_KINDS = ["ws", "http"] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** Upper bounds (bytes) of the per-stream buffer peak histogram. */
export const BUFFER_PEAK_BOUNDS: readonly number[] = [
  1024,
  16 * 1024,
  64 * 1024,
  256 * 1024,
  1024 * 1024,
  4 * 1024 * 1024,
  16 * 1024 * 1024,
  64 * 1024 * 1024,
];

/** One host as the hubs see it when scraped. */
export interface HostSample {
  hostId: string;
  linked: boolean;
  streams: number;
  /** Link bytes received from the host, and sent to it (frames, all streams, since the hub began). */
  bytesFromHost: number;
  bytesToHost: number;
}

export interface MetricsSnapshot {
  refusals: Record<RefusalReason, number>;
  authFailures: Record<AuthKind, number>;
  linkConnects: number;
  linkReconnects: number;
  linkDrops: Record<LinkDropReason, number>;
  streamsOpened: Record<StreamKind, number>;
  bufferPeak: { counts: number[]; sum: number };
  hostsAllowed: number;
  hosts: HostSample[];
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** The counters one relay process (Node) or one Durable Object (Workers) keeps. */
export class RelayMetrics {
  readonly #refusals = zeros(REFUSAL_REASONS);
  readonly #authFailures = zeros(AUTH_KINDS);
  readonly #linkDrops = zeros(LINK_DROP_REASONS);
  readonly #streamsOpened = zeros(STREAM_KINDS);
  readonly #peak = new Histogram(BUFFER_PEAK_BOUNDS);
  #linkConnects = 0;
  #linkReconnects = 0;

  refused(reason: RefusalReason): void {
    this.#refusals[reason]++;
  }

  authFailed(kind: AuthKind): void {
    this.#authFailures[kind]++;
  }

  /** A host linked; `again` when this relay had seen it linked before (a reconnect). */
  linkConnected(again: boolean): void {
    this.#linkConnects++;
    if (again) this.#linkReconnects++;
  }

  linkDropped(reason: LinkDropReason): void {
    this.#linkDrops[reason]++;
  }

  streamOpened(kind: StreamKind): void {
    this.#streamsOpened[kind]++;
  }

  /** The most bytes one stream held at the relay at any moment (either direction), recorded when it ends. */
  observeBufferPeak(bytes: number): void {
    this.#peak.observe(Math.max(0, bytes));
  }

  snapshot(live: { hostsAllowed: number; hosts: HostSample[] }): MetricsSnapshot {
    return {
      refusals: { ...this.#refusals },
      authFailures: { ...this.#authFailures },
      linkConnects: this.#linkConnects,
      linkReconnects: this.#linkReconnects,
      linkDrops: { ...this.#linkDrops },
      streamsOpened: { ...this.#streamsOpened },
      bufferPeak: this.#peak.totals(),
      hostsAllowed: live.hostsAllowed,
      hosts: live.hosts,
    };
  }
}

function addInto<K extends string>(
  into: Record<K, number>,
  from: Partial<Record<K, number>>,
  keys: readonly K[],
): void {
  for (const k of keys) into[k] += Number(from[k] ?? 0) || 0;
}

/** Sums snapshots (the Workers entry: one per Durable Object). `hostsAllowed` is the entry's own. */
export function mergeSnapshots(parts: readonly MetricsSnapshot[], hostsAllowed: number): MetricsSnapshot {
  const out = new RelayMetrics().snapshot({ hostsAllowed, hosts: [] });
  for (const p of parts) {
    addInto(out.refusals, p.refusals, REFUSAL_REASONS);
    addInto(out.authFailures, p.authFailures, AUTH_KINDS);
    addInto(out.linkDrops, p.linkDrops, LINK_DROP_REASONS);
    addInto(out.streamsOpened, p.streamsOpened, STREAM_KINDS);
    out.linkConnects += p.linkConnects;
    out.linkReconnects += p.linkReconnects;
    p.bufferPeak.counts.forEach((n, i) => {
      if (i < out.bufferPeak.counts.length) out.bufferPeak.counts[i] = (out.bufferPeak.counts[i] ?? 0) + n;
    });
    out.bufferPeak.sum += p.bufferPeak.sum;
    out.hosts.push(...p.hosts);
  }
  return out;
}

const byLabel = <K extends string>(label: string, values: Record<K, number>, keys: readonly K[]): Sample[] =>
  keys.map((k) => ({ labels: { [label]: k }, value: values[k] }));

export function metricFamilies(s: MetricsSnapshot, opts: { perHost: boolean }): MetricFamily[] {
  let linked = 0;
  let streams = 0;
  let fromHosts = 0;
  let toHosts = 0;
  for (const h of s.hosts) {
    if (h.linked) linked++;
    streams += h.streams;
    fromHosts += h.bytesFromHost;
    toHosts += h.bytesToHost;
  }
  const families: MetricFamily[] = [
    {
      type: "gauge",
      name: "loopgate_relay_hosts_allowed",
      help: "Host ids on the relay's allow-list.",
      samples: [{ value: s.hostsAllowed }],
    },
    {
      type: "gauge",
      name: "loopgate_relay_hosts_linked",
      help: "Hosts whose link is connected now.",
      samples: [{ value: linked }],
    },
    {
      type: "gauge",
      name: "loopgate_relay_client_streams",
      help: "Client streams (WebSocket and HTTP) open now, all hosts.",
      samples: [{ value: streams }],
    },
    {
      type: "counter",
      name: "loopgate_relay_client_streams_opened",
      help: "Client streams opened over a link, by kind.",
      samples: byLabel("kind", s.streamsOpened, STREAM_KINDS),
    },
    {
      type: "counter",
      name: "loopgate_relay_link_bytes",
      unit: "bytes",
      help: "Link frame bytes, from hosts (to their clients) and to hosts (from their clients).",
      samples: [
        { labels: { direction: "from_hosts" }, value: fromHosts },
        { labels: { direction: "to_hosts" }, value: toHosts },
      ],
    },
    {
      type: "counter",
      name: "loopgate_relay_refusals",
      help: "Requests and streams the relay refused, by reason.",
      samples: byLabel("reason", s.refusals, REFUSAL_REASONS),
    },
    {
      type: "counter",
      name: "loopgate_relay_auth_failures",
      help: "Credentials presented and refused (a missing credential is not a failure), by kind.",
      samples: byLabel("kind", s.authFailures, AUTH_KINDS),
    },
    {
      type: "counter",
      name: "loopgate_relay_link_connects",
      help: "Host links accepted.",
      samples: [{ value: s.linkConnects }],
    },
    {
      type: "counter",
      name: "loopgate_relay_link_reconnects",
      help: "Host links accepted for a host this relay had seen linked before.",
      samples: [{ value: s.linkReconnects }],
    },
    {
      type: "counter",
      name: "loopgate_relay_link_drops",
      help: "Host links that ended, by reason.",
      samples: byLabel("reason", s.linkDrops, LINK_DROP_REASONS),
    },
    {
      type: "histogram",
      name: "loopgate_relay_stream_buffer_peak_bytes",
      unit: "bytes",
      help: "Per client stream, the most bytes the relay held for it at once (either direction), observed when the stream ends.",
      samples: [{ bounds: BUFFER_PEAK_BOUNDS, counts: s.bufferPeak.counts, sum: s.bufferPeak.sum }],
    },
  ];
  if (opts.perHost) {
    const hosts = [...s.hosts].sort((a, b) => a.hostId.localeCompare(b.hostId));
    families.push(
      {
        type: "gauge",
        name: "loopgate_relay_host_linked",
        help: "1 when this host's link is connected (per host: operator opt-in).",
        samples: hosts.map((h) => ({ labels: { host: h.hostId }, value: h.linked ? 1 : 0 })),
      },
      {
        type: "gauge",
        name: "loopgate_relay_host_client_streams",
        help: "Client streams open now on this host.",
        samples: hosts.map((h) => ({ labels: { host: h.hostId }, value: h.streams })),
      },
      {
        type: "counter",
        name: "loopgate_relay_host_link_bytes",
        unit: "bytes",
        help: "Link frame bytes of this host, by direction.",
        samples: hosts.flatMap((h) => [
          { labels: { host: h.hostId, direction: "from_host" }, value: h.bytesFromHost },
          { labels: { host: h.hostId, direction: "to_host" }, value: h.bytesToHost },
        ]),
      },
    );
  }
  return families;
}
