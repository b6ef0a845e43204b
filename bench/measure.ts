/**
 * The measurements, each bounded in count and time. Clients are ws clients
 * (pinned TLS for the relays) against an echo upstream.
 */
import { readFileSync } from "node:fs";
import type WebSocket from "ws";
import { Agent, request } from "undici";
import { openWebSocket } from "../agent/tls/pinned-connect.ts";
import type { PathTarget } from "./paths.ts";
import { rssKiB } from "../test/helpers/proc.ts";
import { connectParams } from "../test/helpers/ws-client.ts";

export function open(p: PathTarget, timeoutMs = 15_000): Promise<WebSocket> {
  return openWebSocket(p.url, {
    ...(p.pins ? { pins: p.pins } : {}),
    ...(p.headers ? { headers: p.headers } : {}),
    timeoutMs,
    maxPayload: 64 * 1024 * 1024,
  });
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))]!;
}

function echo(ws: WebSocket, data: string | Buffer, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return reject(new Error("not open"));
    const t = setTimeout(() => reject(new Error("no echo")), timeoutMs);
    const onClose = () => (clearTimeout(t), reject(new Error("closed")));
    ws.once("message", () => {
      clearTimeout(t);
      ws.off("close", onClose);
      resolve();
    });
    ws.once("close", onClose);
    ws.send(data);
  });
}

/**
 * Calls made before any is timed, the same on every path: enough for V8 to
 * compile the hot paths of a relay and gateway started for the phase (20 were
 * not, while the `ssh -L` path's gateway had been warmed by the direct phase
 * before it), and at most about a second for slow calls (1 MiB echoes).
 */
async function warmUp(call: () => Promise<unknown>): Promise<void> {
  const until = performance.now() + 1000;
  for (let i = 0; i < 500 && performance.now() < until; i++) await call();
}

/** Sequential round trips of one message; returns the latencies in ms. */
export async function roundTrips(
  p: PathTarget,
  data: string | Buffer,
  count: number,
  budgetMs: number,
): Promise<number[]> {
  const ws = await open(p);
  try {
    await warmUp(() => echo(ws, data));
    const out: number[] = [];
    const deadline = performance.now() + budgetMs;
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t0 = performance.now();
      await echo(ws, data);
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    ws.terminate();
  }
}

/** Echoed bytes per second over `streams` streams, each keeping `window` 64 KiB messages in flight. */
export async function throughput(p: PathTarget, streams: number, seconds: number): Promise<number> {
  const socks = await Promise.all(Array.from({ length: streams }, () => open(p)));
  const chunk = Buffer.alloc(64 * 1024, 7);
  let bytes = 0;
  let running = true;
  const t0 = performance.now();
  await Promise.all(
    socks
      .map(
        (ws) =>
          new Promise<void>((resolve) => {
            let inFlight = 0;
            const pump = () => {
              while (running && inFlight < 8) {
                inFlight++;
                ws.send(chunk);
              }
              if (!running && inFlight === 0) resolve();
            };
            ws.on("message", (d: Buffer) => {
              inFlight--;
              bytes += d.length;
              pump();
            });
            ws.on("close", () => resolve());
            pump();
          }),
      )
      .concat([new Promise<void>((r) => setTimeout(() => ((running = false), r()), seconds * 1000))]),
  );
  const elapsed = (performance.now() - t0) / 1000;
  for (const ws of socks) ws.terminate();
  return bytes / elapsed;
}

/** Time from nothing to an open socket and the first echo, for `count` new clients. */
export async function connectTimes(p: PathTarget, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const ws = await open(p);
    await echo(ws, "hi");
    out.push(performance.now() - t0);
    ws.terminate();
  }
  return out;
}

/**
 * Many idle clients: how many stay open, and the memory each costs in the
 * path's processes. `kibPerClient` is taken `holdMs` after the last client
 * opened, when the heap still holds the garbage of 10,000 handshakes and
 * upgrades; `kibPerClientSettled` once more after `settleMs`, by when V8's
 * memory reducer has run (it waits for a quiet heap, ~10-20 s here): the
 * figure an idle relay stays at. `kibPerClientMarginal` counts only the
 * second half of the clients (from half open to all open): costs paid once,
 * whatever the count (heap and malloc growth, compiled code), and memory left
 * by earlier phases of the run move it far less than the whole-run figure.
 */
export async function idleClients(
  p: PathTarget,
  n: number,
  settleMs = 25_000,
): Promise<{
  opened: number;
  heldAfterMs: number;
  held: number;
  closeCodes: Record<string, number>;
  sampleEchoFailures: number;
  kibPerClient: Record<string, number>;
  settledAfterMs: number;
  kibPerClientSettled: Record<string, number>;
  kibPerClientMarginal: Record<string, number>;
}> {
  const rssNow = () => Object.fromEntries(Object.entries(p.pids).map(([k, pid]) => [k, rssKiB(pid)]));
  const before = rssNow();
  const socks: WebSocket[] = [];
  const batch = 200;
  let closed = 0;
  /** How the lost ones ended ("code reason" → count), so a loss can be told apart. */
  const closeCodes: Record<string, number> = {};
  /** Memory once half the clients are open: the second half's cost leaves out what any first client pays. */
  let half: { at: number; rss: Record<string, number> } | undefined;
  for (let i = 0; i < n; i += batch) {
    if (!half && i >= n / 2) {
      await new Promise((r) => setTimeout(r, 1000));
      half = { at: socks.length, rss: rssNow() };
    }
    const got = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => open(p, 30_000)));
    for (const g of got) {
      if (g.status !== "fulfilled") continue;
      socks.push(g.value);
      g.value.once("close", (code: number, reason: Buffer) => {
        closed++;
        const k = `${code} ${String(reason)}`.trim();
        closeCodes[k] = (closeCodes[k] ?? 0) + 1;
      });
    }
  }
  const holdMs = 5_000;
  await new Promise((r) => setTimeout(r, holdMs));
  const after = rssNow();
  await new Promise((r) => setTimeout(r, settleMs));
  const settled = rssNow();
  // Prove they still carry traffic: a sample of them echoes.
  const sample = socks.filter((_, i) => i % Math.max(1, Math.floor(socks.length / 50)) === 0);
  let sampleFailed = 0;
  await Promise.all(sample.map((ws) => echo(ws, "still here?", 10_000).catch(() => sampleFailed++)));
  const perClient = (at: Record<string, number>) =>
    Object.fromEntries(
      Object.keys(before).map((k) => [
        k,
        socks.length ? Math.round(((at[k]! - before[k]!) / socks.length) * 10) / 10 : NaN,
      ]),
    );
  const kibPerClient = perClient(after);
  const kibPerClientSettled = perClient(settled);
  const added = socks.length - (half?.at ?? 0);
  const kibPerClientMarginal = Object.fromEntries(
    Object.keys(before).map((k) => [
      k,
      half && added > 0 ? Math.round(((after[k]! - half.rss[k]!) / added) * 10) / 10 : NaN,
    ]),
  );
  const held = socks.length - closed;
  const lost = { ...closeCodes }; // before our own terminate() adds its 1006s
  for (const ws of socks) ws.terminate();
  await new Promise((r) => setTimeout(r, 1000));
  return {
    opened: socks.length,
    heldAfterMs: holdMs,
    held,
    closeCodes: lost,
    sampleEchoFailures: sampleFailed,
    kibPerClient,
    settledAfterMs: holdMs + settleMs,
    kibPerClientSettled,
    kibPerClientMarginal,
  };
}

/** p99 of a normal client before and while another client on the same path stops reading. */
export async function slowConsumer(
  p: PathTarget,
  count: number,
): Promise<{ p99BeforeMs: number; p99DuringMs: number; stalledSentMiB: number }> {
  const p99Before = percentile(await roundTrips(p, "x".repeat(64), count, 10_000), 0.99);
  const stalled = await open(p);
  (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
  const blob = Buffer.alloc(256 * 1024, 3);
  let sent = 0;
  let stop = false;
  const flood = async () => {
    while (!stop && stalled.readyState === stalled.OPEN && sent < 64 * 1024 * 1024) {
      await new Promise<void>((r) => stalled.send(blob, () => r()));
      sent += blob.length;
    }
  };
  const f = flood();
  await new Promise((r) => setTimeout(r, 500));
  const p99During = percentile(await roundTrips(p, "x".repeat(64), count, 10_000), 0.99);
  stop = true;
  stalled.terminate();
  await Promise.race([f, new Promise((r) => setTimeout(r, 1000))]);
  return { p99BeforeMs: p99Before, p99DuringMs: p99During, stalledSentMiB: Math.round((sent / 1048576) * 10) / 10 };
}

/** Relay restart: from the moment it listens again to the first successful echo through it. */
export async function reconnect(p: PathTarget): Promise<{ listenToFirstEchoMs: number } | undefined> {
  if (!p.restart) return undefined;
  const listening = await p.restart();
  const deadline = listening + 30_000;
  while (performance.now() < deadline) {
    try {
      const ws = await open(p, 2_000);
      await echo(ws, "back?");
      ws.terminate();
      return { listenToFirstEchoMs: Math.round(performance.now() - listening) };
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { listenToFirstEchoMs: NaN };
}

/** The next text frame whose JSON has `id` (gateway responses), skipping events. */
function response(ws: WebSocket, id: string, timeoutMs = 30_000): Promise<{ ok?: boolean; error?: unknown }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => (ws.off("message", onMessage), reject(new Error(`no response to ${id}`))), timeoutMs);
    const onMessage = (d: WebSocket.RawData) => {
      const f = JSON.parse(String(d)) as { type?: string; id?: string; ok?: boolean; error?: unknown };
      if (f.type !== "res" || f.id !== id) return;
      clearTimeout(t);
      ws.off("message", onMessage);
      resolve(f);
    };
    ws.on("message", onMessage);
  });
}

/**
 * Sequential round trips of the gateway's own `health` RPC over protocol v4
 * (connect first, with `token`); returns the latencies in ms. Measures what a
 * client of loopgate's gateway waits for, rather than an echo upstream.
 */
export async function rpcRoundTrips(p: PathTarget, token: string, count: number, budgetMs: number): Promise<number[]> {
  const ws = await open(p);
  try {
    const connect = {
      type: "req",
      id: "c",
      method: "connect",
      params: connectParams(
        { token },
        { client: { id: "cli", version: "0.0.0", platform: process.platform, mode: "cli" }, scopes: ["operator.read"] },
      ),
    };
    const hello = response(ws, "c");
    ws.send(JSON.stringify(connect));
    const h = await hello;
    if (!h.ok) throw new Error(`connect refused on ${p.name}: ${JSON.stringify(h.error)}`);
    const call = async (i: number) => {
      const id = `h${i}`;
      const r = response(ws, id);
      ws.send(JSON.stringify({ type: "req", id, method: "health" }));
      const f = await r;
      if (!f.ok) throw new Error(`health failed on ${p.name}: ${JSON.stringify(f.error)}`);
    };
    let warm = 0;
    await warmUp(() => call(-++warm));
    const out: number[] = [];
    const deadline = performance.now() + budgetMs;
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t0 = performance.now();
      await call(i);
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    ws.terminate();
  }
}

/**
 * GETs of one Control UI page over a single keep-alive connection, as a
 * browser loads a page's assets; returns the latencies in ms. The relay's
 * certificate is not checked here: the WebSocket rows check the pin, and a
 * kept-alive connection pays for its handshake once.
 */
export async function httpRoundTrips(
  url: string,
  headers: Record<string, string>,
  count: number,
  budgetMs: number,
): Promise<number[]> {
  const agent = new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 60_000, connections: 1 });
  const get = async () => {
    const r = await request(url, { dispatcher: agent, headers });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`GET ${new URL(url).pathname} answered ${r.statusCode}`);
  };
  try {
    await warmUp(get);
    const out: number[] = [];
    const deadline = performance.now() + budgetMs;
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t0 = performance.now();
      await get();
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    await agent.close();
  }
}

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s); NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds used by a path's own processes (relay and link, not the client or the upstream) while `work` runs. */
export async function pathCpu<T>(p: PathTarget, work: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const pids = Object.values(p.pids).filter((x): x is number => typeof x === "number");
  const before = pids.map(cpuSeconds);
  const result = await work();
  const seconds = pids.reduce((sum, pid, i) => sum + (cpuSeconds(pid) - (before[i] ?? Number.NaN)), 0);
  return { result, seconds: pids.length > 0 ? seconds : Number.NaN };
}
