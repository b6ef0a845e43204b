/**
 * Isolation and sustained load at the relay (npm run test:chaos), bounded in
 * count and time and all on 127.0.0.1:
 * - one host flooding its link does not slow another host's clients beyond a
 *   stated bound: p99 round trip at most FAIR_RATIO times its p99 alone
 *   (floor: 150 ms; 250 ms on local workerd) while the other host pushes tens of MiB/s through the
 *   same relay. The hosts share no link and no queue; what they share is
 *   the relay's event loop (the Node relay gives each host a bounded share
 *   of every turn: relay/node/fair-inbox.ts) and its CPU, and on a 2-core
 *   machine that runs the relay, both links, both upstreams and the flooder,
 *   that is what the bound covers. The target is 5x (bench/fairness.ts
 *   measures it); the default ratio, 50x, is that with slack for a shared CI
 *   machine. Before the fair inbox this test saw 300-470 ms on such a machine.
 * - many clients with steady traffic for a bounded time: nothing lost, and the
 *   relay's memory stays flat (last third within 25 % + 16 MiB of the first).
 * Both run against the Node relay and the Workers relay (local workerd). On
 * Workers the flooder keeps at most 1 MiB in flight per stream: Workers cannot
 * pause a client's reads, so one that outruns the host's credit is closed
 * with 1008 (README, "No send backpressure").
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import type WebSocket from "ws";
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";
import {
  startRelay,
  makeHost,
  startLinkProc,
  mintToken,
  startEchoProcess,
  RELAY_KINDS,
  skipUnlessRunnable,
  relayStatePid,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import { rssKiB, type Proc } from "../helpers/proc.ts";
import { startFlood } from "../helpers/flood.ts";

const LOAD_SECONDS = Number(process.env.LOOPGATE_CHAOS_LOAD_SECONDS ?? 12);
const LOAD_CLIENTS = Number(process.env.LOOPGATE_CHAOS_LOAD_CLIENTS ?? 200);
const FAIR_RATIO = Number(process.env.LOOPGATE_CHAOS_FAIR_RATIO ?? 50);

function open(relay: RelayProc, hostId: string, token: string): Promise<WebSocket> {
  return openWebSocket(`${relay.url}/h/${hostId}`, {
    pins: [relay.pin],
    headers: { authorization: `Bearer ${token}` },
    timeoutMs: 15_000,
  });
}

async function roundTrips(ws: WebSocket, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      ws.once("message", () => resolve());
      ws.send(`rt ${i}`);
    });
    out.push(performance.now() - t0);
  }
  return out;
}

const p99 = (a: number[]) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * 0.99))]!;

for (const kind of RELAY_KINDS)
  describe(`isolation and load at the ${kind} relay`, skipUnlessRunnable(kind, "the load run"), () => {
    let relay: RelayProc;
    let hostA: Host;
    let hostB: Host;
    let links: Proc[] = [];
    let echoA: Awaited<ReturnType<typeof startEchoProcess>>;
    let echoB: Awaited<ReturnType<typeof startEchoProcess>>;
    let tokenA: string;
    let tokenB: string;
    before(async () => {
      hostA = await makeHost();
      hostB = await makeHost();
      // Each host has its own upstream process, as real hosts do: the relay is
      // the only thing they share (an in-process upstream would make this test
      // process echo host A's flood while it times host B).
      echoA = await startEchoProcess();
      echoB = await startEchoProcess();
      relay = await startRelay(kind, { allowHosts: [hostA.hostId, hostB.hostId] });
      links = [await startLinkProc(hostA, relay, echoA.port), await startLinkProc(hostB, relay, echoB.port)];
      tokenA = (await mintToken(hostA, relay)).token;
      tokenB = (await mintToken(hostB, relay)).token;
    });
    after(async () => {
      for (const l of links) await l.kill();
      await relay?.kill();
      await echoA?.kill();
      await echoB?.kill();
    });

    test("host A flooding its link does not slow host B's clients beyond the bound", async () => {
      const b = await open(relay, hostB.hostId, tokenB);
      await roundTrips(b, 20); // warm up
      const base = p99(await roundTrips(b, 200));
      const flood = await startFlood(relay, hostA.hostId, tokenA, kind);
      const rts: number[] = [];
      const until = Date.now() + 3000;
      while (Date.now() < until || rts.length < 200) rts.push(...(await roundTrips(b, 20)));
      const loaded = p99(rts);
      const mib = flood.mib();
      const closed = flood.closed();
      await flood.stop();
      b.close();
      // Local workerd runs both hosts' Durable Objects on one thread, without the Node relay's turn budget: a higher floor.
      const bound = Math.max(kind === "workers" ? 250 : 150, base * FAIR_RATIO);
      console.log(
        `# ${kind}: host B p99: ${base.toFixed(1)} ms alone, ${loaded.toFixed(1)} ms (${(loaded / base).toFixed(1)}x) while host A echoed ${mib} MiB`,
      );
      assert.deepEqual(closed, [], "the flood's streams stayed open");
      assert.ok(mib >= 8, "host A really was flooding");
      assert.ok(loaded <= bound, `host B p99 ${loaded.toFixed(1)} ms exceeds the ${bound.toFixed(1)} ms bound`);
    });

    test(`${LOAD_CLIENTS} clients with steady traffic for ${LOAD_SECONDS} s: nothing lost, relay memory flat`, async () => {
      const clients = await Promise.all(
        Array.from({ length: LOAD_CLIENTS }, (_, i) =>
          open(relay, i % 2 ? hostA.hostId : hostB.hostId, i % 2 ? tokenA : tokenB),
        ),
      );
      let sent = 0;
      let received = 0;
      for (const c of clients) c.on("message", () => received++);
      const samples: number[] = [];
      const timers = clients.map((c, i) =>
        setInterval(() => {
          if (c.readyState === c.OPEN) {
            c.send(i % 10 === 0 ? Buffer.alloc(16 * 1024, i) : `m ${i} ${sent}`);
            sent++;
          }
        }, 50),
      );
      const pid = relayStatePid(relay);
      const sampler = setInterval(() => samples.push(rssKiB(pid) * 1024), 500);
      await new Promise((r) => setTimeout(r, LOAD_SECONDS * 1000));
      timers.forEach(clearInterval);
      clearInterval(sampler);
      const deadline = Date.now() + 5000;
      while (received < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const c of clients) c.close();
      assert.equal(received, sent, `every message came back (${received}/${sent})`);
      const third = Math.max(1, Math.floor(samples.length / 3));
      const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      const first = avg(samples.slice(0, third));
      const last = avg(samples.slice(-third));
      console.log(
        `# ${kind}: ${sent} messages; relay RSS ${(first / 1048576).toFixed(1)} MiB → ${(last / 1048576).toFixed(1)} MiB`,
      );
      assert.ok(
        last <= first * 1.25 + 16 * 1048576,
        `relay memory grew from ${(first / 1048576).toFixed(1)} to ${(last / 1048576).toFixed(1)} MiB`,
      );
    });
  });
