/**
 * A relay, a host and clients, as real processes on 127.0.0.1, for the relay
 * e2e suite. `kind` picks the relay runtime (Node now; Workers under workerd
 * joins through the same interface).
 */
import { before, after } from "node:test";
import { writeFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { WebSocketServer } from "ws";
import {
  runCli,
  runProcess,
  cli,
  tempDir,
  isolatedEnv,
  startGateway,
  ROOT,
  type Proc,
  type GatewayProc,
} from "./proc.ts";
import { freePort, onFreePort } from "./free-port.ts";

export { freePort, onFreePort };

export type RelayKind = "node" | "workers";

export interface RelayProc extends Proc {
  kind: RelayKind;
  port: number;
  pin: string;
  url: string;
  stateDir: string;
  /** Every line the relay logged so far (its logs go to stderr on Node, through wrangler on Workers). */
  logs(): string[];
}

export interface RelayStartOptions {
  allowHosts: string[];
  stateDir?: string;
  port?: number;
  args?: string[];
}

/** Starts the relay of the given kind on 127.0.0.1 with a self-signed certificate; the pin is read back. */
export function startRelay(kind: RelayKind, opts: RelayStartOptions): Promise<RelayProc> {
  return kind === "node" ? startRelayProc(opts) : startWorkersRelay(opts);
}

export async function startRelayProc(opts: RelayStartOptions): Promise<RelayProc> {
  const stateDir = opts.stateDir ?? tempDir("loopgate-relay-");
  const env = { LOOPGATE_STATE_DIR: stateDir, HOME: stateDir, LOOPGATE_CONFIG: "" };
  const p = runCli(
    [
      "relay",
      "serve",
      "--port",
      String(opts.port ?? 0),
      "--json",
      ...opts.allowHosts.map((h) => `--allow-host=${h}`),
      ...(opts.args ?? []),
    ],
    { env },
  );
  const line = await p.waitForLine((l) => l.includes('"ready"'));
  const ready = JSON.parse(line) as { port: number; pin: string; url: string };
  return Object.assign(p, {
    kind: "node" as const,
    port: ready.port,
    pin: ready.pin,
    url: ready.url,
    stateDir,
    logs: () => p.stderr,
  });
}

/**
 * The process that holds the relay's state: the Node relay itself, or the
 * workerd that runs the Worker. `wrangler dev` starts two workerd processes:
 * its dev proxy (which serves the relay's port, terminates TLS and forwards
 * every request and WebSocket to the other one) and the one running the
 * Worker and its Durable Objects. The proxy is the one whose entry socket is
 * the relay's port.
 */
export function relayStatePid(relay: RelayProc): number {
  if (relay.kind === "node") return relay.child.pid!;
  const all = workerdPids(relay);
  const worker = all.find((w) => !w.servesPort);
  if (!worker) throw new Error("workerd is not running under wrangler");
  return worker.pid;
}

/** Workers only: wrangler's dev proxy in front of the Worker's workerd (not part of a deployed relay). */
export function devProxyPid(relay: RelayProc): number | undefined {
  return relay.kind === "workers" ? workerdPids(relay).find((w) => w.servesPort)?.pid : undefined;
}

function workerdPids(relay: RelayProc): { pid: number; servesPort: boolean }[] {
  const out: { pid: number; servesPort: boolean }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== relay.child.pid || !stat.includes("(workerd)")) continue; // fields[2] is the process group
      const args = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      out.push({
        pid: Number(d),
        servesPort: args.some((a) => a.startsWith("--socket-addr=entry=") && a.endsWith(`:${relay.port}`)),
      });
    } catch {
      // gone
    }
  }
  return out;
}

/** Is the Workers toolchain (wrangler + workerd) installed and runnable here? A reason when not. */
export function workersUnavailable(): string | undefined {
  const bin = join(ROOT, "node_modules", ".bin", "wrangler");
  if (!existsSync(bin)) return "wrangler is not installed (npm install brings it)";
  const workerd = join(ROOT, "node_modules", "@cloudflare", "workerd-linux-64", "bin", "workerd");
  if (process.platform === "linux" && process.arch === "x64" && !existsSync(workerd))
    return "workerd's binary is missing (its install script did not run; see allowScripts)";
  return undefined;
}

/** The relays a parameterised suite runs against: both by default; LOOPGATE_RELAY_KINDS=node narrows the run. */
export const RELAY_KINDS: RelayKind[] = (process.env.LOOPGATE_RELAY_KINDS ?? "node,workers")
  .split(",")
  .map((k) => k.trim())
  .filter((k): k is RelayKind => k === "node" || k === "workers");

/** Test options for a suite on `kind`: a loud skip when the Workers toolchain is missing. */
export function skipUnlessRunnable(kind: RelayKind, suite: string): { skip?: string } {
  if (kind !== "workers") return {};
  const why = workersUnavailable();
  if (why) console.warn(`\n*** SKIPPING ${suite} on the Workers relay: ${why} ***\n`);
  return why ? { skip: why } : {};
}

/**
 * The Workers relay under local workerd (`wrangler dev --local`, offline, no
 * account), serving https with a certificate we made so clients can pin it.
 */
export async function startWorkersRelay(opts: RelayStartOptions): Promise<RelayProc> {
  if (opts.port === undefined) return onFreePort((port) => startWorkersRelayOn(opts, port));
  return startWorkersRelayOn(opts, opts.port);
}

async function startWorkersRelayOn(opts: RelayStartOptions, port: number): Promise<RelayProc> {
  const stateDir = opts.stateDir ?? tempDir("loopgate-wrelay-");
  const { loadOrCreateRelayCert } = await import("../../relay/node/certificate.ts");
  const cert = await loadOrCreateRelayCert(stateDir);
  const bin = join(ROOT, "node_modules", ".bin", "wrangler");
  // Token audiences come from configuration only: the port is chosen first so RELAY_AUDIENCES can name it.
  const args = [
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    "0",
    "--local-protocol",
    "https",
    "--https-key-path",
    join(stateDir, "relay-key.pem"),
    "--https-cert-path",
    join(stateDir, "relay-cert.pem"),
    "--persist-to",
    join(stateDir, "wrangler-state"),
    "--show-interactive-dev-session=false",
    "--log-level",
    "log",
    "--var",
    `ALLOWED_HOSTS:${opts.allowHosts.join(",")}`,
    "--var",
    "LOOPGATE_TEST:1",
    "--var",
    "LINK_TIMEOUT_SECONDS:20",
    "--var",
    `RELAY_AUDIENCES:https://127.0.0.1:${port}`,
    ...(opts.args ?? []),
  ];
  const env = { ...workersEnv(stateDir) };
  const p = runProcess(bin, args, { env, cwd: ROOT, group: true });
  await p.waitForLine((l) => /Ready on https:\/\/127\.0\.0\.1:\d+/.test(l), 60_000);
  return Object.assign(p, {
    kind: "workers" as const,
    port,
    pin: cert.pin,
    url: `wss://127.0.0.1:${port}`,
    stateDir,
    logs: () => [...p.stdout, ...p.stderr],
  });
}

/** wrangler with nothing that reaches beyond this machine: no metrics, no cf.json fetch, state in the test dir. */
export function workersEnv(stateDir: string): Record<string, string> {
  return {
    HOME: stateDir,
    XDG_CONFIG_HOME: join(stateDir, "xdg"),
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_LOG_PATH: join(stateDir, "wrangler-logs"),
    CI: "1",
    NO_COLOR: "1",
    // wrangler's update check asks the package registry; point it at a closed local port instead.
    npm_config_registry: "http://127.0.0.1:9/",
  };
}

export interface Host {
  stateDir: string;
  hostId: string;
  env: Record<string, string>;
}

/** A host identity in its own state dir. */
export async function makeHost(): Promise<Host> {
  const env = isolatedEnv({}, "loopgate-host-");
  const stateDir = env.LOOPGATE_STATE_DIR;
  const r = await cli(["host", "id", "--json"], { env });
  if (r.code !== 0) throw new Error(`host id failed: ${r.stderr}`);
  return { stateDir, hostId: JSON.parse(r.stdout).hostId, env };
}

/** Runs our gateway for `host` with the in-process link to `relay`. */
export async function startLinkedGateway(
  host: Host,
  relay: { url: string; pin: string },
  extraArgs: string[] = [],
  extraConfig: Record<string, unknown> = {},
): Promise<GatewayProc> {
  const config = { ...extraConfig, gateway: { relay: { enabled: true, url: relay.url, tlsFingerprint: relay.pin } } };
  writeFileSync(host.env.LOOPGATE_CONFIG!, JSON.stringify(config));
  const gw = await startGateway({ args: extraArgs, env: host.env, config });
  await waitForLog(gw, /relay link linked/);
  return gw;
}

export async function waitForLog(p: Proc, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return p.waitForLine((l) => re.test(l), timeoutMs, "stderr");
}

/** `loopgate link` alone in front of an upstream. */
export async function startLinkProc(
  host: Host,
  relay: { url: string; pin: string },
  upstreamPort: number,
  extraArgs: string[] = [],
): Promise<Proc> {
  const p = runCli(
    [
      "link",
      "--relay",
      relay.url,
      "--relay-fingerprint",
      relay.pin,
      "--upstream",
      `ws://127.0.0.1:${upstreamPort}`,
      "--json",
      ...extraArgs,
    ],
    { env: host.env },
  );
  await waitForLog(p, /relay link linked/);
  return p;
}

export interface MintedToken {
  token: string;
  id: string;
  url: string;
  clientConfig: unknown;
}

export async function mintToken(
  host: Host,
  relay: { url: string; pin: string },
  args: string[] = [],
): Promise<MintedToken> {
  const r = await cli(["token", "create", "--relay", relay.url, "--relay-fingerprint", relay.pin, "--json", ...args], {
    env: host.env,
  });
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as MintedToken;
}

/** A client-side state dir with the printed config pasted in. */
export function clientEnv(clientConfig: unknown): Record<string, string> {
  return isolatedEnv(clientConfig, "loopgate-client-");
}

/**
 * A plain WebSocket echo upstream that records what it saw (headers, opens),
 * standing in for any gateway behind `loopgate link`.
 */
export type EchoUpstream = Awaited<ReturnType<typeof startEchoUpstream>>;

/** The usual rig: a host, an echo upstream, a relay of `kind`, `loopgate link` between them, and a client token. */
export async function startEchoRig(
  kind: RelayKind,
  relayArgs: string[] = [],
): Promise<{ host: Host; echo: EchoUpstream; relay: RelayProc; link: Proc; token: string }> {
  const host = await makeHost();
  const echo = await startEchoUpstream();
  const relay = await startRelay(kind, { allowHosts: [host.hostId], args: relayArgs });
  const link = await startLinkProc(host, relay, echo.port);
  const token = (await mintToken(host, relay)).token;
  return { host, echo, relay, link, token };
}

export type EchoRig = Awaited<ReturnType<typeof startEchoRig>>;

/**
 * The usual rig for the suite (describe block) this is called in: started in
 * its before(), stopped in its after(). The fields are there once before()
 * ran; a test that replaces the relay or link stores the new one here, so
 * after() stops that one. `signal`: how the processes are stopped (the chaos
 * suites use SIGKILL). `relayArgs` may be a function, called in before().
 */
export function echoRigForSuite(
  kind: RelayKind,
  relayArgs: string[] | (() => string[]) = [],
  opts: { signal?: NodeJS.Signals } = {},
): EchoRig {
  const rig = {} as EchoRig;
  before(async () => {
    Object.assign(rig, await startEchoRig(kind, typeof relayArgs === "function" ? relayArgs() : relayArgs));
  });
  after(async () => {
    await rig.link?.kill(opts.signal);
    await rig.relay?.kill(opts.signal);
    await rig.echo?.close();
  });
  return rig;
}

/** The echo upstream as a separate process (see echo-process.ts); kill() stops it. */
export async function startEchoProcess(): Promise<{ port: number; pid: number; kill(): Promise<unknown> }> {
  const p = runProcess(process.execPath, [join(ROOT, "test", "helpers", "echo-process.ts")]);
  const line = await p.waitForLine((l) => l.startsWith("port "));
  return { port: Number(line.slice(5)), pid: p.child.pid!, kill: () => p.kill("SIGKILL") };
}

export async function startEchoUpstream(): Promise<{
  port: number;
  opens: { headers: Record<string, string | string[] | undefined> }[];
  close(): Promise<void>;
}> {
  const opens: { headers: Record<string, string | string[] | undefined> }[] = [];
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 64 * 1024 * 1024 });
  wss.on("connection", (ws, req) => {
    opens.push({ headers: req.headers });
    // A peer's protocol error (bad UTF-8, a frame too large) closes that socket, as a gateway's would; nothing more.
    ws.on("error", () => {});
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? undefined : String(data);
      if (text?.startsWith("close:")) {
        const [, code, reason] = text.split(":");
        ws.close(Number(code), reason);
        return;
      }
      ws.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const a = wss.address();
  return {
    port: typeof a === "object" && a ? a.port : 0,
    opens,
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}
