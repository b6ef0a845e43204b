/**
 * Fairness across hosts: the p99 round trip of one host's client, alone and
 * while another host on the same relay floods its link (8 streams of 512 KiB
 * echoes, from a separate process). Each host has its own link process and
 * its own upstream process, as real hosts do: the relay is what they share.
 */
import {
  startRelay,
  makeHost,
  startLinkProc,
  mintToken,
  startEchoProcess,
  type RelayKind,
} from "../test/helpers/relay.ts";
import { startFlood } from "../test/helpers/flood.ts";
import { roundTrips, percentile } from "./measure.ts";
import type { PathTarget } from "./paths.ts";

export interface FairnessResult {
  p99AloneMs: number;
  p99FloodedMs: number;
  p50AloneMs: number;
  p50FloodedMs: number;
  /** MiB the flooding host echoed while the other host was timed. */
  floodMiB: number;
  floodClosed: string[];
}

export async function fairness(kind: RelayKind, count: number, floodSeconds: number): Promise<FairnessResult> {
  const [hostA, hostB] = [await makeHost(), await makeHost()];
  const [echoA, echoB] = [await startEchoProcess(), await startEchoProcess()];
  const relay = await startRelay(kind, { allowHosts: [hostA.hostId, hostB.hostId] });
  const links = [await startLinkProc(hostA, relay, echoA.port), await startLinkProc(hostB, relay, echoB.port)];
  try {
    const tokenA = (await mintToken(hostA, relay)).token;
    const tokenB = (await mintToken(hostB, relay)).token;
    const b: PathTarget = {
      name: `fairness ${kind}`,
      url: `${relay.url}/h/${hostB.hostId}`,
      pins: [relay.pin],
      headers: { authorization: `Bearer ${tokenB}` },
      pids: {},
      close: async () => {},
    };
    const alone = await roundTrips(b, "x".repeat(64), count, 20_000);
    const flood = await startFlood(relay, hostA.hostId, tokenA, kind);
    try {
      const flooded = await roundTrips(b, "x".repeat(64), count, floodSeconds * 1000);
      await new Promise((r) => setTimeout(r, 1100));
      return {
        p99AloneMs: percentile(alone, 0.99),
        p99FloodedMs: percentile(flooded, 0.99),
        p50AloneMs: percentile(alone, 0.5),
        p50FloodedMs: percentile(flooded, 0.5),
        floodMiB: flood.mib(),
        floodClosed: flood.closed(),
      };
    } finally {
      await flood.stop();
    }
  } finally {
    for (const l of links) await l.kill("SIGKILL");
    await relay.kill("SIGKILL");
    await echoA.kill();
    await echoB.kill();
  }
}
