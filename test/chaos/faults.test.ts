/**
 * Faults during live traffic (npm run test:chaos): kill -9 of the relay, of
 * the link connector and of the gateway while 100 streams carry numbered
 * messages, and a link whose packets silently vanish. Every client must see
 * its stream end within seconds (none hangs), what it received must be an
 * in-order prefix of what it sent (nothing duplicated, reordered or
 * invented), and the host must come back by itself.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import type WebSocket from "ws";
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";
import { echoOnce } from "../helpers/relay-client.ts";
import {
  freePort,
  startRelay,
  makeHost,
  startLinkProc,
  startLinkedGateway,
  mintToken,
  startEchoUpstream,
  waitForLog,
  RELAY_KINDS,
  skipUnlessRunnable,
  type RelayProc,
  type Host,
  echoRigForSuite,
} from "../helpers/relay.ts";
import { startTcpProxy } from "../helpers/tcp-proxy.ts";

const STREAMS = Number(process.env.LOOPGATE_CHAOS_STREAMS ?? 100);
/** Every client must have seen its stream end within this long after the fault. */
const CLOSE_BOUND_MS = 5_000;

interface SeqClient {
  ws: WebSocket;
  sent: number;
  received: number;
  violations: string[];
  closed: Promise<{ code: number; at: number }>;
  stop(): void;
}

/** A client that sends "id:n" every few ms and checks the echoes arrive exactly in order. */
function seqClient(ws: WebSocket, id: number): SeqClient {
  const c: SeqClient = {
    ws,
    sent: 0,
    received: 0,
    violations: [],
    closed: new Promise((resolve) => {
      ws.once("close", (code) => resolve({ code, at: Date.now() }));
      ws.once("error", () => resolve({ code: 1006, at: Date.now() }));
    }),
    stop: () => clearInterval(timer),
  };
  ws.on("message", (d) => {
    const want = `${id}:${c.received}`;
    const got = String(d);
    if (got !== want) c.violations.push(`client ${id}: got ${got}, wanted ${want}`);
    c.received++;
  });
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return clearInterval(timer);
    ws.send(`${id}:${c.sent++}`);
  }, 5);
  return c;
}

async function openClients(relay: RelayProc, hostId: string, token: string, n: number): Promise<SeqClient[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () =>
      openWebSocket(`${relay.url}/h/${hostId}`, {
        pins: [relay.pin],
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: 15_000,
      }),
    ),
  );
  return sockets.map((ws, i) => seqClient(ws, i));
}

/** After the fault: all clients closed within the bound, and every stream an in-order prefix. */
async function assertAllEndCleanly(
  clients: SeqClient[],
  faultAt: number,
  codes?: number[],
  boundMs = CLOSE_BOUND_MS,
): Promise<void> {
  const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), boundMs + 2_000).unref());
  const results = await Promise.race([Promise.all(clients.map((c) => c.closed)), timeout]);
  clients.forEach((c) => c.stop());
  assert.notEqual(results, "timeout", `some clients were still open ${boundMs + 2_000} ms after the fault`);
  const ends = results as { code: number; at: number }[];
  const slowest = Math.max(...ends.map((e) => e.at - faultAt));
  assert.ok(slowest <= boundMs, `the slowest client saw its stream end ${slowest} ms after the fault`);
  if (codes)
    for (const e of ends)
      assert.ok(codes.includes(e.code), `close code ${e.code}, expected one of ${codes.join(", ")}`);
  const violations = clients.flatMap((c) => c.violations);
  assert.deepEqual(violations.slice(0, 5), [], "messages arrived once and in order");
  for (const c of clients) assert.ok(c.received <= c.sent, "nothing arrived that was not sent");
  assert.ok(clients.reduce((n, c) => n + c.received, 0) > clients.length, "traffic was flowing before the fault");
}

async function echoWorks(relay: RelayProc, hostId: string, token: string, deadlineMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      if ((await echoOnce(relay, hostId, token, "still there?", 5_000)) === "still there?") return true;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return false;
}

for (const kind of RELAY_KINDS) {
  describe(
    `chaos (${kind} relay): kill -9 during ${STREAMS} active streams`,
    skipUnlessRunnable(kind, "the chaos run"),
    () => {
      const rig = echoRigForSuite(kind, [], { signal: "SIGKILL" });

      test("the relay: every client's stream ends at once, the host relinks by itself", async () => {
        const clients = await openClients(rig.relay, rig.host.hostId, rig.token, STREAMS);
        await new Promise((r) => setTimeout(r, 500));
        const { port, stateDir } = rig.relay;
        const linkedBefore = rig.link.stderr.filter((l) => l.includes("relay link linked")).length;
        const faultAt = Date.now();
        await rig.relay.kill("SIGKILL");
        await assertAllEndCleanly(clients, faultAt);
        rig.relay = await startRelay(kind, { allowHosts: [rig.host.hostId], port, stateDir });
        await rig.link.waitForLine(
          (l) =>
            l.includes("relay link linked") &&
            rig.link.stderr.filter((x) => x.includes("relay link linked")).length > linkedBefore,
          15_000,
          "stderr",
        );
        assert.ok(
          await echoWorks(rig.relay, rig.host.hostId, rig.token),
          "a new client gets through after the relay came back",
        );
      });

      test("the link connector: clients see 1012 within seconds; a new link serves new clients", async () => {
        const clients = await openClients(rig.relay, rig.host.hostId, rig.token, STREAMS);
        await new Promise((r) => setTimeout(r, 500));
        const faultAt = Date.now();
        await rig.link.kill("SIGKILL");
        await assertAllEndCleanly(clients, faultAt, [1012]);
        rig.link = await startLinkProc(rig.host, rig.relay, rig.echo.port);
        assert.ok(await echoWorks(rig.relay, rig.host.hostId, rig.token));
      });
    },
  );
}

describe("chaos: kill -9 of the gateway with its in-process link", () => {
  let relay: RelayProc;
  let host: Host;
  before(async () => {
    host = await makeHost();
    relay = await startRelay("node", { allowHosts: [host.hostId] });
  });
  after(async () => {
    await relay?.kill("SIGKILL");
  });

  test("every relayed client's stream ends within seconds, and the restarted gateway relinks", async () => {
    const gw = await startLinkedGateway(host, relay);
    const token = (await mintToken(host, relay)).token;
    const sockets = await Promise.all(
      Array.from({ length: STREAMS }, () =>
        openWebSocket(`${relay.url}/h/${host.hostId}`, {
          pins: [relay.pin],
          headers: { authorization: `Bearer ${token}` },
          timeoutMs: 15_000,
        }),
      ),
    );
    const closed = sockets.map((ws) => new Promise<number>((r) => ws.once("close", (code) => r(code))));
    const faultAt = Date.now();
    await gw.kill("SIGKILL");
    const codes = await Promise.race([
      Promise.all(closed),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), CLOSE_BOUND_MS).unref()),
    ]);
    assert.notEqual(codes, "timeout", `clients still open ${CLOSE_BOUND_MS} ms after the gateway died`);
    assert.ok(
      (codes as number[]).every((c) => c === 1012),
      `close codes: ${[...new Set(codes as number[])].join(",")}`,
    );
    assert.ok(Date.now() - faultAt <= CLOSE_BOUND_MS);
    const gw2 = await startLinkedGateway(host, relay);
    await gw2.kill();
  });
});

for (const kind of RELAY_KINDS) {
  describe(
    `chaos (${kind} relay): a link whose packets silently vanish`,
    skipUnlessRunnable(kind, "the chaos run"),
    () => {
      test("both ends notice through heartbeats within bounded time, and clients are closed", async () => {
        const HB = 500;
        // Node: the relay pings every HB and gives up after three. Workers: the
        // host's pings are answered by the runtime, and an alarm every
        // LINK_TIMEOUT_SECONDS drops a link silent for longer than that.
        const WORKERS_TIMEOUT_S = 2;
        const relayArgs =
          kind === "node" ? ["--heartbeat-ms", String(HB)] : ["--var", `LINK_TIMEOUT_SECONDS:${WORKERS_TIMEOUT_S}`];
        const host = await makeHost();
        const echo = await startEchoUpstream();
        // The host dials the relay through the proxy: the proxy's URL is one of the relay's configured audiences.
        const relayPort = await freePort();
        const proxy = await startTcpProxy(relayPort);
        const proxyAud = `https://127.0.0.1:${proxy.port}`;
        const audArgs =
          kind === "node"
            ? ["--public-url", proxyAud]
            : ["--var", `RELAY_AUDIENCES:${proxyAud},https://127.0.0.1:${relayPort}`];
        const relay = await startRelay(kind, {
          allowHosts: [host.hostId],
          port: relayPort,
          args: [...relayArgs, ...audArgs],
        });
        const viaProxy = { url: `wss://127.0.0.1:${proxy.port}`, pin: relay.pin };
        const link = await startLinkProc(host, viaProxy, echo.port, ["--heartbeat-ms", String(HB)]);
        try {
          // Tokens name the relay URL the host is linked to (the host refuses relayed tokens for any other).
          const token = (await mintToken(host, viaProxy)).token;
          const clients = await openClients(relay, host.hostId, token, 10);
          await new Promise((r) => setTimeout(r, 300));
          const faultAt = Date.now();
          proxy.blackhole();
          await waitForLog(link, /relay link silent/, 10_000);
          const hostNoticedMs = Date.now() - faultAt;
          assert.ok(hostNoticedMs <= HB * 3 + HB * 2, `the host noticed after ${hostNoticedMs} ms`);
          // Workers checks on an alarm: silent for the timeout, noticed by the next alarm at the latest.
          const relayBoundMs = kind === "node" ? CLOSE_BOUND_MS : WORKERS_TIMEOUT_S * 2000 + CLOSE_BOUND_MS;
          await assertAllEndCleanly(clients, faultAt, [1012], relayBoundMs);
          // The relay's socket keepalive or its link heartbeat, whichever fires first
          // (wrangler passes the Worker's log lines on with a short delay).
          await waitForLog(relay, /link silent|host link closed/, 5_000);
        } finally {
          await link.kill("SIGKILL");
          await relay.kill("SIGKILL");
          await proxy.close();
          await echo.close();
        }
      });
    },
  );
}
