/**
 * `npm run bench [-- --quick] [--idle N] [--out FILE] [--chart FILE] [--no-workers] [--only PHASES]`
 *
 * Starts everything itself on 127.0.0.1 (an echo upstream, our gateway, a
 * throwaway sshd with `ssh -N -L`, the Node relay with its link, and the
 * Workers relay under local workerd when wrangler is installed, and the
 * byte-level floor of bench/floor.ts) and measures each path in the same run,
 * printing every figure with its ratio to direct loopback and to `ssh -L`.
 * loopgate's own gateway is measured too (its `health` RPC and the CLI), over
 * direct, `ssh -L` and each relay with the gateway's in-process link. Bounded: every phase has a count and a time cap;
 * --quick finishes in about a minute. `--only echo,floor,rpc,fair,idle,reconnect` runs
 * just those phases (a focused before/after comparison on a busy machine).
 */
import { cpus, totalmem, release } from "node:os";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ROOT, cli, startGateway, type GatewayProc } from "../test/helpers/proc.ts";
import {
  startEchoProcess,
  makeHost,
  startRelay,
  startLinkedGateway,
  mintToken,
  clientEnv,
  workersUnavailable,
} from "../test/helpers/relay.ts";
import { startSshTunnel, sshAvailable } from "../test/helpers/sshd.ts";
import { directPath, sshPath, relayPath, floorPath, FLOOR, type PathTarget } from "./paths.ts";
import {
  roundTrips,
  rpcRoundTrips,
  throughput,
  connectTimes,
  idleClients,
  slowConsumer,
  reconnect,
  percentile,
  httpRoundTrips,
  pathCpu,
} from "./measure.ts";
import { printTable, writeJson, writeChart, ratio, type Metric, type Report } from "./report.ts";
import { relayIdleMemory, relayKibPerClient, processMemory } from "./memory.ts";
import { fairness } from "./fairness.ts";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    idle: { type: "string" },
    out: { type: "string", default: join(ROOT, "bench", "out", "latest.json") },
    chart: { type: "string", default: join(ROOT, "bench", "out", "chart.svg") },
    "no-workers": { type: "boolean", default: false },
    only: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log(
    "usage: npm run bench -- [--quick] [--idle N] [--out FILE] [--chart FILE] [--no-workers] [--only echo,floor,rpc,fair,idle,reconnect]",
  );
  process.exit(0);
}

const quick = args.quick!;
const N = {
  small: quick ? 300 : 2000,
  big: quick ? 5 : 30,
  tputSeconds: quick ? 2 : 5,
  connects: quick ? 10 : 50,
  idle: Number(args.idle ?? (quick ? 1000 : 10_000)),
  slow: quick ? 200 : 1000,
  health: quick ? 3 : 7,
  fairSeconds: quick ? 4 : 10,
};
/** Idle clients the local Workers relay is asked to hold (see the idle phase). */
const WORKERS_LOCAL_IDLE_MAX = 2000;
const PHASES = ["echo", "floor", "rpc", "fair", "idle", "reconnect"] as const;
const only = args.only ? new Set(args.only.split(",").map((x) => x.trim())) : undefined;
for (const p of only ?? [])
  if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${p}`);
const want = (phase: (typeof PHASES)[number]) => !only || only.has(phase);

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const cleanups: (() => Promise<void>)[] = [];
let cleaning = false;
async function cleanup(): Promise<void> {
  if (cleaning) return;
  cleaning = true;
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
const hardStop = setTimeout(() => {
  log("time cap reached (20 min); stopping");
  void cleanup().then(() => process.exit(2));
}, 20 * 60_000);
hardStop.unref();

function version(cmd: string, a: string[]): string {
  // Some tools (ssh -V) print their version on stderr.
  const r = spawnSync(cmd, a, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  return `${r.stdout ?? ""}`.trim().split("\n")[0] || `${r.stderr ?? ""}`.trim().split("\n")[0] || "unavailable";
}

async function main(): Promise<void> {
  const report: Report = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "?",
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
    },
    versions: {
      node: process.version,
      openssh: version("ssh", ["-V"]),
      wrangler: workersUnavailable()
        ? "unavailable"
        : version(join(ROOT, "node_modules", ".bin", "wrangler"), ["--version"]),
    },
    mode: quick ? "quick" : "full",
    paths: [],
    skipped: {},
    metrics: [],
    extra: {},
  };
  // The upstream runs in its own process, as a real gateway does: in this
  // one it would share the event loop and the file-descriptor limit with the
  // 10,000 idle clients (20,000 fds), and its refused accepts looked like
  // clients lost by the relay.
  const echo = await startEchoProcess();
  cleanups.push(async () => void (await echo.kill()));

  const paths: PathTarget[] = [await directPath(echo.port)];
  const pathPhases = want("echo") || want("idle") || want("reconnect");
  const ssh = pathPhases ? await sshPath(echo.port) : "not needed by --only";
  if (typeof ssh === "string") report.skipped["ssh -L"] = ssh;
  else paths.push(ssh);
  const node = pathPhases ? await relayPath("node", echo.port) : "not needed by --only";
  if (typeof node === "string") report.skipped["relay (Node)"] = node;
  else paths.push(node);
  if (!args["no-workers"] && pathPhases) {
    log("starting the Workers relay under local workerd");
    const w = await relayPath("workers", echo.port).catch((e: Error) => e.message);
    if (typeof w === "string") report.skipped["relay (Workers)"] = w;
    else paths.push(w);
  } else report.skipped["relay (Workers)"] = "--no-workers";
  for (const p of paths) cleanups.push(() => p.close());
  report.paths = paths.map((p) => p.name);

  const metric = (key: string, label: string, unit: string, higherIsBetter = false): Metric => {
    const m: Metric = { key, label, unit, higherIsBetter, values: {} };
    report.metrics.push(m);
    return m;
  };
  // Relay memory at rest (host linked, no client yet), before any traffic: bench/memory.ts.
  const idleRss = metric("relay_idle_rss", "relay idle RSS (host linked, no clients)", "MiB");
  for (const [name, m] of Object.entries(want("idle") ? await relayIdleMemory(paths) : {})) {
    idleRss.values[name] = m.rssKiB / 1024;
    report.extra[`idle memory ${name}`] = m;
  }
  const small50 = metric("small_p50", "small message RTT p50", "ms");
  const small99 = metric("small_p99", "small message RTT p99", "ms");
  const big = metric("mib_rtt", "1 MiB message RTT p50", "ms");
  const tp1 = metric("tput_1", "throughput, 1 stream", "MiB/s", true);
  const tp8 = metric("tput_8", "throughput, 8 streams", "MiB/s", true);
  const conn = metric("connect", "connect + first reply p50", "ms");
  // The path's own processes (relay and link; the floor's two): steadier than latency on shared cores.
  const cpuRtt = metric("cpu_small_rtt", "relay + link CPU per small round trip", "µs");
  const cpuMib = metric("cpu_mib", "relay + link CPU per MiB, 1 stream", "ms");
  const slow99 = metric("slow_p99", "p99 while another client stalls", "ms");
  /** The echo rows of one path: small and 1 MiB round trips, throughput, and the path's CPU for them. */
  async function echoRows(p: PathTarget, name: string): Promise<void> {
    const settle = () => new Promise((r) => setTimeout(r, 500));
    const s = await roundTrips(p, "x".repeat(64), N.small, 30_000);
    small50.values[name] = percentile(s, 0.5);
    small99.values[name] = percentile(s, 0.99);
    // CPU per unit of work, measured on a second, warm run (the first includes compiling the code), after
    // the previous phase's sockets are gone (their teardown is work too).
    await settle();
    const rtt = await pathCpu(p, () => roundTrips(p, "x".repeat(64), N.small, 30_000));
    if (!Number.isNaN(rtt.seconds)) cpuRtt.values[name] = (rtt.seconds * 1e6) / rtt.result.length;
    big.values[name] = percentile(await roundTrips(p, Buffer.alloc(1024 * 1024, 1), N.big, 30_000), 0.5);
    tp1.values[name] = (await throughput(p, 1, N.tputSeconds)) / 1048576;
    await settle();
    const mib = await pathCpu(p, () => throughput(p, 1, N.tputSeconds));
    if (!Number.isNaN(mib.seconds))
      cpuMib.values[name] = (mib.seconds * 1000) / ((mib.result * N.tputSeconds) / 1048576);
    await settle();
    tp8.values[name] = (await throughput(p, 8, N.tputSeconds)) / 1048576;
  }
  for (const p of want("echo") ? paths : []) {
    log(`${p.name}: round trips and throughput`);
    await echoRows(p, p.name);
    conn.values[p.name] = percentile(await connectTimes(p, N.connects), 0.5);
    log(`${p.name}: slow consumer`);
    const sc = await slowConsumer(p, N.slow);
    slow99.values[p.name] = sc.p99DuringMs;
    report.extra[`slow consumer ${p.name}`] = sc;
  }

  // The byte-level floor (bench/floor.ts): the relay's route when Node only moves bytes. Echo rows only.
  if (want("floor")) {
    log(`${FLOOR}: round trips and throughput`);
    const floor = await floorPath(echo.port);
    cleanups.push(() => floor.close());
    report.paths.push(FLOOR);
    await echoRows(floor, FLOOR);
    await floor.close();
  }

  // loopgate's own gateway over each path: its `health` RPC on one connection (the relays with the
  // gateway's in-process link), then `loopgate health` as a user runs it, a CLI process per call.
  const rpc50 = metric("rpc_p50", "gateway `health` RPC p50", "ms");
  const rpc99 = metric("rpc_p99", "gateway `health` RPC p99", "ms");
  const health = metric("health", "`loopgate health` end to end p50", "ms");
  const page50 = metric("ui_get_p50", "Control UI page GET p50 (kept-alive)", "ms");
  const page99 = metric("ui_get_p99", "Control UI page GET p99 (kept-alive)", "ms");
  // The gateway itself: process start to ready (to linked, on a relay path), and its memory once idle.
  const gwStart = metric("gateway_start", "gateway start → ready (→ linked via a relay)", "ms");
  const gwRss = metric("gateway_idle_rss", "gateway idle RSS (no clients)", "MiB");
  /** Starts a gateway with `start`, recording its start time and idle RSS under `name`. */
  async function timedGateway(name: string, start: () => Promise<GatewayProc>): Promise<GatewayProc> {
    const t0 = performance.now();
    const g = await start();
    gwStart.values[name] = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const mem = processMemory(g.child.pid!);
    if (mem) gwRss.values[name] = mem.rssKiB / 1024;
    return g;
  }
  if (want("rpc")) await gatewayPhase();
  async function gatewayPhase(): Promise<void> {
    log("loopgate gateway: health RPC and `loopgate health` end to end");
    const TOKEN = "bench-token-0123456789abcdef";
    const gw = await timedGateway("direct", () => startGateway({ args: ["--token", TOKEN] }));
    cleanups.push(async () => void (await gw.kill()));
    const timeCli = async (argv: string[], env: Record<string, string>) => {
      const xs: number[] = [];
      for (let i = 0; i < N.health; i++) {
        const t0 = performance.now();
        const r = await cli(argv, { env });
        if (r.code !== 0) throw new Error(`health failed: ${r.stderr}`);
        xs.push(performance.now() - t0);
      }
      return percentile(xs, 0.5);
    };
    const timeRpc = async (target: PathTarget, token: string) => {
      const xs = await rpcRoundTrips(target, token, N.small, 30_000);
      rpc50.values[target.name] = percentile(xs, 0.5);
      rpc99.values[target.name] = percentile(xs, 0.99);
    };
    // The Control UI's page, as a browser fetches it: the relay forwards it over the link as an HTTP stream.
    const timePage = async (name: string, base: string, headers: Record<string, string> = {}) => {
      const xs = await httpRoundTrips(`${base.replace(/^ws/, "http")}/`, headers, N.small, 30_000);
      page50.values[name] = percentile(xs, 0.5);
      page99.values[name] = percentile(xs, 0.99);
    };
    const bare = { OPENCLAW_GATEWAY_TOKEN: "", OPENCLAW_GATEWAY_URL: "", LOOPGATE_CONFIG: "" };
    await timeRpc(await directPath(gw.port), TOKEN);
    await timePage("direct", `ws://127.0.0.1:${gw.port}`);
    health.values.direct = await timeCli(["health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", TOKEN], bare);
    if (!sshAvailable()) {
      if (!report.paths.includes("ssh -L")) report.paths.splice(1, 0, "ssh -L");
      const t = await startSshTunnel(gw.port);
      cleanups.push(() => t.close());
      await timeRpc({ name: "ssh -L", url: `ws://127.0.0.1:${t.localPort}`, pids: {}, close: async () => {} }, TOKEN);
      await timePage("ssh -L", `ws://127.0.0.1:${t.localPort}`);
      health.values["ssh -L"] = await timeCli(
        ["health", "--url", `ws://127.0.0.1:${t.localPort}`, "--token", TOKEN],
        bare,
      );
    }
    for (const kind of ["node", "workers"] as const) {
      const name = kind === "node" ? "relay (Node)" : "relay (Workers)";
      if (kind === "workers" && (args["no-workers"] || workersUnavailable())) continue;
      if (!report.paths.includes(name)) report.paths.push(name);
      const host = await makeHost();
      const relay = await startRelay(kind, { allowHosts: [host.hostId] });
      cleanups.push(async () => void (await relay.kill("SIGKILL")));
      const lgw = await timedGateway(name, () => startLinkedGateway(host, relay));
      cleanups.push(async () => void (await lgw.kill()));
      const minted = await mintToken(host, relay);
      await timeRpc(
        {
          name,
          url: `${relay.url}/h/${host.hostId}`,
          pins: [relay.pin],
          headers: { authorization: `Bearer ${minted.token}` },
          pids: {},
          close: async () => {},
        },
        minted.token,
      );
      await timePage(name, `${relay.url}/h/${host.hostId}`, { authorization: `Bearer ${minted.token}` });
      health.values[name] = await timeCli(["health"], clientEnv(minted.clientConfig));
    }
  }

  // Fairness across hosts: another host's p99 alone and while one host floods the same relay (bench/fairness.ts).
  const fairAlone = metric("fair_alone_p99", "other host's p99, alone", "ms");
  const fairFlood = metric("fair_flood_p99", "other host's p99 while one host floods", "ms");
  const fairNiced = metric("fair_flood_niced_p99", "other host's p99, flooder at nice 19", "ms");
  for (const kind of want("fair") ? (["node", "workers"] as const) : []) {
    if (kind === "workers" && (args["no-workers"] || workersUnavailable())) continue;
    const name = kind === "node" ? "relay (Node)" : "relay (Workers)";
    log(`${name}: another host's p99 while one host floods`);
    if (!report.paths.includes(name)) report.paths.push(name);
    const f = await fairness(kind, N.small, N.fairSeconds);
    fairAlone.values[name] = f.p99AloneMs;
    fairFlood.values[name] = f.p99FloodedMs;
    fairNiced.values[name] = f.p99FloodedNicedMs;
    report.extra[`fairness ${name}`] = f;
  }

  log(`idle clients: ${N.idle} per relay`);
  for (const p of want("idle") ? paths.filter((x) => x.name.startsWith("relay")) : []) {
    // Local `wrangler dev` puts a proxy with two file descriptors per client (of 20,000) in front of
    // workerd: past ~2,000 its connections stall until they time out, which says nothing of the relay.
    const n = p.name === "relay (Workers)" ? Math.min(N.idle, WORKERS_LOCAL_IDLE_MAX) : N.idle;
    if (n < N.idle) log(`${p.name}: ${n} idle clients (the local dev proxy's limit), not ${N.idle}`);
    const r = await idleClients(p, n);
    report.extra[`idle ${p.name}`] = r;
    log(
      `${p.name}: held ${r.held}/${r.opened}, KiB per client ${JSON.stringify(r.kibPerClient)}, ` +
        `settled (${r.settledAfterMs / 1000} s) ${JSON.stringify(r.kibPerClientSettled)}, ` +
        `second half only ${JSON.stringify(r.kibPerClientMarginal)}`,
    );
  }
  const perClient = metric("relay_kib_per_client", "relay memory per idle client", "KiB");
  Object.assign(perClient.values, relayKibPerClient(report, paths));
  const settledPerClient = metric("relay_kib_per_client_settled", "relay memory per idle client, settled", "KiB");
  Object.assign(settledPerClient.values, relayKibPerClient(report, paths, "kibPerClientSettled"));
  log("relay restart to first successful request");
  const rec = metric("reconnect", "relay restart → first echo (after listening)", "ms");
  for (const p of want("reconnect") ? paths : []) {
    const r = await reconnect(p);
    if (r) rec.values[p.name] = r.listenToFirstEchoMs;
  }

  console.log(
    `\nloopgate bench (${report.mode}) on ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB; node ${report.versions.node}; ${report.versions.openssh}\n`,
  );
  printTable(report);
  for (const m of [small50, small99, big, tp1, tp8]) {
    const r = ratio(m.values["relay (Node)"], m.values[FLOOR]);
    if (r !== undefined) console.log(`relay (Node) ÷ ${FLOOR}, ${m.label}: ${r.toFixed(2)}×`);
  }
  for (const name of Object.keys(fairFlood.values)) {
    const r = ratio(fairFlood.values[name], fairAlone.values[name]);
    const n = ratio(fairNiced.values[name], fairAlone.values[name]);
    if (r !== undefined && n !== undefined)
      console.log(
        `${name}, other host's p99 flooded ÷ alone: ${r.toFixed(2)}× (flooder at nice 19, as if on other machines: ${n.toFixed(2)}×)`,
      );
  }
  for (const [k, v] of Object.entries(report.extra)) console.log(`${k}: ${JSON.stringify(v)}`);
  writeJson(args.out!, report);
  writeChart(args.chart!, report);
  console.log(`\nwrote ${args.out} and ${args.chart}`);
}

main()
  .catch((e) => {
    console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exitCode = 1;
  })
  .finally(() => void cleanup().then(() => process.exit()));
