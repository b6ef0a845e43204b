/**
 * The paths under test, all on 127.0.0.1: direct loopback to the upstream,
 * a real `ssh -N -L` tunnel through a throwaway sshd, the Node relay with
 * TLS and the link, and the Workers relay under local workerd. Each path
 * gives a URL plus the options a client needs (pins, token).
 */
import { startSshTunnel, sshAvailable } from "../test/helpers/sshd.ts";
import {
  startRelay,
  makeHost,
  startLinkProc,
  mintToken,
  workersUnavailable,
  relayStatePid,
  devProxyPid,
  type RelayProc,
  type Host,
  type RelayKind,
} from "../test/helpers/relay.ts";
import { runProcess, tempDir, ROOT, type Proc } from "../test/helpers/proc.ts";
import { loadOrCreateRelayCert, CERT_FILE, KEY_FILE } from "../relay/node/certificate.ts";
import { join } from "node:path";

const MAX_STREAMS = 50_000;

export interface PathTarget {
  name: string;
  url: string;
  pins?: string[];
  headers?: Record<string, string>;
  /** Processes whose memory belongs to this path (relay, link). */
  pids: Record<string, number>;
  /** Restarts the path's relay on the same port; resolves when it listens again. */
  restart?: () => Promise<number>;
  close(): Promise<void>;
}

export async function directPath(upstreamPort: number): Promise<PathTarget> {
  return { name: "direct", url: `ws://127.0.0.1:${upstreamPort}`, pids: {}, close: async () => {} };
}

export async function sshPath(upstreamPort: number): Promise<PathTarget | string> {
  const why = sshAvailable();
  if (why) return why;
  const t = await startSshTunnel(upstreamPort);
  return { name: "ssh -L", url: `ws://127.0.0.1:${t.localPort}`, pids: {}, close: () => t.close() };
}

export async function relayPath(
  kind: RelayKind,
  upstreamPort: number,
  linkArgs: string[] = [],
): Promise<PathTarget | string> {
  if (kind === "workers") {
    const why = workersUnavailable();
    if (why) return why;
  }
  const host: Host = await makeHost();
  // The idle-clients phase holds 10,000 streams on one host: raise the per-host limit (default 1024).
  const relayArgs =
    kind === "node" ? ["--max-streams", String(MAX_STREAMS)] : ["--var", `MAX_STREAMS_PER_HOST:${MAX_STREAMS}`];
  let relay: RelayProc = await startRelay(kind, { allowHosts: [host.hostId], args: relayArgs });
  const link: Proc = await startLinkProc(host, relay, upstreamPort, [
    "--max-streams",
    String(MAX_STREAMS),
    ...linkArgs,
  ]);
  const token = (await mintToken(host, relay)).token;
  const target: PathTarget = {
    name: kind === "node" ? "relay (Node)" : "relay (Workers)",
    url: `${relay.url}/h/${host.hostId}`,
    pins: [relay.pin],
    headers: { authorization: `Bearer ${token}` },
    // Workers: the workerd running the Worker holds the relay's state (not wrangler, nor its dev proxy, shown apart).
    pids: { relay: relayStatePid(relay), ...devProxy(relay), link: link.child.pid! },
    restart: async () => {
      const { port, stateDir } = relay;
      await relay.kill("SIGKILL");
      relay = await startRelay(kind, { allowHosts: [host.hostId], port, stateDir, args: relayArgs });
      target.pids.relay = relayStatePid(relay);
      Object.assign(target.pids, devProxy(relay));
      return performance.now();
    },
    close: async () => {
      await link.kill("SIGKILL");
      await relay.kill("SIGKILL");
    },
  };
  return target;
}

/** `wrangler dev`'s proxy workerd, reported on its own: a deployed relay has none. */
function devProxy(relay: RelayProc): { "dev proxy"?: number } {
  const pid = devProxyPid(relay);
  return pid === undefined ? {} : { "dev proxy": pid };
}

/** The name of the byte-level floor path (bench/floor.ts): TLS in, one TLS link, TCP out, bytes only. */
export const FLOOR = "byte floor (Node)";

/** The byte-level floor: floor.ts as a relay process and a host process, in front of the upstream. */
export async function floorPath(upstreamPort: number): Promise<PathTarget> {
  const dir = tempDir("loopgate-floor-");
  const cert = await loadOrCreateRelayCert(dir);
  const script = join(ROOT, "bench", "floor.ts");
  const relay: Proc = runProcess(process.execPath, [script, "relay", join(dir, CERT_FILE), join(dir, KEY_FILE)]);
  const [clientPort, linkPort] = (await relay.waitForLine((l) => l.startsWith("ready ")))
    .split(" ")
    .slice(1)
    .map(Number);
  const host: Proc = runProcess(process.execPath, [script, "host", String(linkPort), String(upstreamPort)]);
  await host.waitForLine((l) => l === "linked");
  return {
    name: FLOOR,
    url: `wss://127.0.0.1:${clientPort}`,
    pins: [cert.pin],
    pids: { relay: relay.child.pid!, link: host.child.pid! },
    close: async () => {
      await host.kill("SIGKILL");
      await relay.kill("SIGKILL");
    },
  };
}
