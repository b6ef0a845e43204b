/**
 * Fairness across hosts: the p99 round trip of one host's client, alone and
 * while another host on the same relay floods its link (8 streams of 512 KiB
 * echoes, from a separate process). Each host has its own link process and
 * its own upstream process, as real hosts do: the relay is what they share.
 *
 * On one machine the flooding host's three processes (client, link,
 * upstream) also take CPU from the timed host's link and upstream, which
 * real hosts on other machines would not. So the flood is timed twice: at
 * equal priority, and again with the flooder's processes at the lowest CPU
 * priority (nice 19), where they run on what the relay and the timed host
 * leave over, as if on machines of their own. The relay itself stays at
 * normal priority in both: what it does with the flood is what is measured.
 */
import { setPriority } from "node:os";
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
  /** The same, with the flooding host's processes at nice 19 (as if on other machines). */
  p99FloodedNicedMs: number;
  p50FloodedNicedMs: number;
  /** MiB/s the flooding host echoed while the other host was timed, at equal priority and at nice 19. */
  floodMiBps: number;
  floodNicedMiBps: number;
  floodClosed: string[];
}

export async function fairness(kind: RelayKind, count: number, floodSeconds: number): Promise<FairnessResult> {
  const [hostA, hostB] = [await makeHost(), await makeHost()];
  const [echoA, echoB] = [await startEchoProcess(), await startEchoProcess()];
  const relay = await startRelay(kind, { allowHosts: [hostA.hostId, hostB.hostId] });
  const [linkA, linkB] = [await startLinkProc(hostA, relay, echoA.port), await startLinkProc(hostB, relay, echoB.port)];
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
      const timed = async () => {
        const [t0, mib0] = [performance.now(), flood.mib()];
        const rtts = await roundTrips(b, "x".repeat(64), count, floodSeconds * 1000);
        await new Promise((r) => setTimeout(r, 300)); // the flooder reports every 250 ms
        return { rtts, mibps: ((flood.mib() - mib0) * 1000) / (performance.now() - t0) };
      };
      const flooded = await timed();
      for (const pid of [flood.pid, linkA.child.pid!, echoA.pid]) setPriority(pid, 19);
      await new Promise((r) => setTimeout(r, 500));
      const niced = await timed();
      return {
        p99AloneMs: percentile(alone, 0.99),
        p99FloodedMs: percentile(flooded.rtts, 0.99),
        p50AloneMs: percentile(alone, 0.5),
        p50FloodedMs: percentile(flooded.rtts, 0.5),
        p99FloodedNicedMs: percentile(niced.rtts, 0.99),
        p50FloodedNicedMs: percentile(niced.rtts, 0.5),
        floodMiBps: Math.round(flooded.mibps),
        floodNicedMiBps: Math.round(niced.mibps),
        floodClosed: flood.closed(),
      };
    } finally {
      await flood.stop();
    }
  } finally {
    for (const l of [linkA, linkB]) await l.kill("SIGKILL");
    await relay.kill("SIGKILL");
    await echoA.kill();
    await echoB.kill();
  }
}
