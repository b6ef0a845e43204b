/**
 * A relay hub (relay/core/hub.ts) and a host's end of the link, in memory:
 * fake client sockets that record what they get, and a host LinkMux wired
 * to the hub through a link whose frames arrive asynchronously, like a
 * socket's. The host echoes by default; tests reach its streams directly.
 * No timers (external heartbeat), no sockets.
 */
import { generateKeyPair, exportJWK, type CryptoKey, type JWK } from "jose";
import {
  HostHub,
  type ClientHandle,
  type ClientSocket,
  type HubOptions,
  type LinkHandle,
} from "../../relay/core/hub.ts";
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";
import { LinkMux } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { checkHostPublicJwk, hostIdFromJwk } from "../../shared/tokens.ts";

/** A client WebSocket as the hub sees it. `hold` keeps sends unfinished (a client that does not read). */
export class FakeClient implements ClientSocket {
  readonly received: (string | Uint8Array)[] = [];
  closed: { code: number; reason: string } | undefined;
  paused = false;
  hold = false;
  readonly #unsent: (() => void)[] = [];

  send(data: string | Uint8Array, done: () => void): void {
    this.received.push(data);
    if (this.hold) this.#unsent.push(done);
    else done();
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** The client reads again: everything it held is sent. */
  drain(): void {
    this.hold = false;
    for (const done of this.#unsent.splice(0)) done();
  }
  texts(): string[] {
    return this.received.map((d) => (typeof d === "string" ? d : `<${d.length} bytes>`));
  }
}

export const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** Lets frames cross the in-memory link until nothing moves. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

export function clientMeta(over: Partial<OpenMeta> = {}): OpenMeta {
  return {
    kind: "ws",
    path: "/",
    headers: { "x-forwarded-for": "192.0.2.1", "x-loopgate-relay": "1" },
    clientAddr: "192.0.2.1",
    tokenId: "tok-1",
    scopes: ["operator.read"],
    ...over,
  };
}

/** How the host answers an HTTP request that came over the link. */
export type HttpAnswer = (
  meta: OpenMeta,
  body: string,
) => { status?: number; headers?: Record<string, string>; body?: string };

const echoHttp: HttpAnswer = (meta, body) => ({ body: `${meta.method} ${meta.path}${body ? ` ${body}` : ""}` });

export interface HostEnd {
  mux: LinkMux;
  /** Every stream the host was opened, in order. */
  streams: LinkStream[];
  /** With `echo: false`: the releases of the messages the host got and holds (call them to read). */
  held: (() => void)[];
  /** The link socket as the hub closed it, if it did. */
  linkClosed: { code: number; reason: string } | undefined;
  /** The hub's handle for this link (messages in, closed). */
  handle: LinkHandle;
  /** Host stream `id` as last opened. */
  stream(id: number): LinkStream;
}

/**
 * Links a host to `hub`: frames cross asynchronously both ways. The host
 * echoes every message; `close:<code>:<reason>` closes the stream instead;
 * an HTTP stream is answered by `http` (default: 200, `METHOD /path` and
 * the request body). `echo: false`
 * leaves the host's streams to the test: it holds what it gets (`held`).
 */
export function linkHost(hub: HostHub, publicJwk: JWK, opts: { echo?: boolean; http?: HttpAnswer } = {}): HostEnd {
  const end = { streams: [] as LinkStream[], held: [] as (() => void)[], linkClosed: undefined } as unknown as HostEnd;
  const echo = opts.echo ?? true;
  end.mux = new LinkMux({
    role: "host",
    send: (f) => queueMicrotask(() => end.handle.message(f)),
    onOpen: (s) => {
      end.streams.push(s);
      if (!echo) {
        s.onMessage = (_d, _b, release) => void end.held.push(release);
        return;
      }
      if (s.meta?.kind === "http") {
        const meta = s.meta;
        const answer = (body: string) => {
          const r = (opts.http ?? echoHttp)(meta, body);
          s.accept({ status: r.status ?? 200, headers: r.headers ?? { "content-type": "text/plain" } });
          s.sendMessage(r.body ?? "");
          s.close(1000, "");
        };
        // GET and HEAD carry no body message; other methods exactly one.
        if (meta.method === "GET" || meta.method === "HEAD") answer("");
        else
          s.onMessage = (d, _b, release) => {
            release();
            answer(typeof d === "string" ? d : new TextDecoder().decode(d));
          };
        return;
      }
      s.accept();
      s.onMessage = (d, _b, release) => {
        release();
        if (typeof d === "string" && d.startsWith("close:")) {
          const [, code, reason] = d.split(":");
          s.close(Number(code), reason ?? "");
          return;
        }
        s.sendMessage(d);
      };
    },
  });
  end.stream = (id) => {
    const s = [...end.streams].reverse().find((x) => x.id === id);
    if (!s) throw new Error(`the host has no stream ${id}`);
    return s;
  };
  end.handle = hub.attachLink(
    {
      // Text on the link is the keepalive answer; the host's mux only reads frames.
      send: (f) => typeof f !== "string" && queueMicrotask(() => end.mux.receive(f)),
      close: (code, reason) => {
        end.linkClosed ??= { code, reason };
      },
    },
    publicJwk,
  );
  return end;
}

/** A fresh host identity and its hub, heartbeat external (no timers), with its own metrics. */
export async function makeHub(limits: Partial<RelayLimits> = {}, opts: HubOptions = {}) {
  const { publicKey, privateKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  const hostId = await hostIdFromJwk(publicJwk);
  const metrics = opts.metrics ?? new RelayMetrics();
  const logs: string[] = [];
  const log = { info: (m: string) => void logs.push(m), warn: (m: string) => void logs.push(m) };
  const hub = new HostHub(hostId, publicJwk, { ...DEFAULT_RELAY_LIMITS, ...limits }, log, {
    heartbeat: "external",
    metrics,
    ...opts,
  });
  return { hub, hostId, publicJwk, privateKey: privateKey as CryptoKey, metrics, logs };
}

/** A client stream on `hub`: the fake socket and the hub's handle (undefined when refused). */
export function openClient(
  hub: HostHub,
  meta: Partial<OpenMeta> = {},
): { sock: FakeClient; handle: ClientHandle | undefined } {
  const sock = new FakeClient();
  return { sock, handle: hub.attachClient(sock, clientMeta(meta)) };
}
