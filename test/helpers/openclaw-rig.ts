/**
 * The rig every interop suite drives a real OpenClaw client against: a fake
 * OpenAI-compatible model, a loopgate gateway using it, and a frame tap in
 * front of the gateway that records every frame. Two routes:
 * - local: the client dials the tap on 127.0.0.1 (the tap is transparent:
 *   the gateway sees a direct loopback peer);
 * - relay: the client dials the Node relay over pinned TLS with the relay
 *   token as `gateway.remote.edgeAuth`; `loopgate link` carries the stream to
 *   the tap, then the gateway (the standalone link rather than the in-gateway
 *   one, so that the tap can sit between link and gateway).
 * `home()` makes an OpenClaw HOME whose openclaw.json points at the route, as
 * a user would configure it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startGateway, tempDir, type GatewayProc, type Proc } from "./proc.ts";
import { startFakeModel, type FakeModel } from "./fake-model.ts";
import { startFrameTap, type FrameTap } from "./openclaw-tap.ts";
import { makeHost, startRelay, startLinkProc, mintToken, type RelayProc } from "./relay.ts";
import { validateDefinition } from "./schema.ts";

export type Route = "local" | "relay";
/** Both routes by default; LOOPGATE_INTEROP_ROUTES=local (or relay) narrows a run. */
export const ROUTES: Route[] = (process.env.LOOPGATE_INTEROP_ROUTES ?? "local,relay")
  .split(",")
  .map((r) => r.trim())
  .filter((r): r is Route => r === "local" || r === "relay");

export interface InteropRig {
  route: Route;
  model: FakeModel;
  gw: GatewayProc;
  tap: FrameTap;
  /** The gateway token (what `--token` / `#token=` carry). */
  token: string;
  /** The WebSocket URL a client dials on this route. */
  url: string;
  relay?: { proc: RelayProc; hostId: string; pin: string; clientToken: string; link: Proc };
  /** A fresh OpenClaw HOME configured (gateway.mode remote) for this route. */
  home(extra?: Record<string, unknown>, remoteOverride?: Record<string, unknown>): string;
  /** The gateway's log lines so far (for failure messages). */
  gatewayLog(): string;
  stop(): Promise<void>;
}

export interface RigOptions {
  /** Extra gateway config merged over the defaults (model provider, token). */
  gateway?: Record<string, unknown>;
}

let dumps = 0;
/**
 * With LOOPGATE_INTEROP_FRAMES=DIR, every frame the gateway saw and sent is
 * written there (one JSON file per rig) for reading after a run; credentials
 * (connect auth, tokens, anything token-shaped) are redacted first.
 */
function dumpFrames(route: Route, tap: FrameTap): void {
  const dir = process.env.LOOPGATE_INTEROP_FRAMES;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${route}-${process.pid}-${++dumps}.json`),
    JSON.stringify(
      tap.frames.map((f) => ({ ...f, frame: scrub(f.frame) })),
      null,
      1,
    ),
  );
}

/** A copy with every credential-named field and token-shaped string masked; session keys and text stay readable. */
export function scrub(value: unknown): unknown {
  if (typeof value === "string")
    return value.replace(/\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/g, "[redacted-jwt]").replaceAll(RIG_TOKEN, "[redacted]");
  if (Array.isArray(value)) return value.map(scrub);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        /token|password|secret|signature|apikey/i.test(k) && v !== null && typeof v !== "object"
          ? "[redacted]"
          : scrub(v),
      ]),
    );
  }
  return value;
}

export const RIG_TOKEN = "interop-gateway-token-0123456789abcdef";

export async function startRig(route: Route, opts: RigOptions = {}): Promise<InteropRig> {
  const model = await startFakeModel();
  const stops: (() => Promise<unknown>)[] = [() => model.close()];
  try {
    const config = { agent: { provider: { baseUrl: model.baseUrl, model: "fake-1" } }, ...opts.gateway };
    let gw: GatewayProc;
    let relay: InteropRig["relay"];
    let tap: FrameTap;
    let url: string;
    if (route === "local") {
      // The token comes from the environment, as recommended, not from a flag that ps shows.
      gw = await startGateway({ config, env: { OPENCLAW_GATEWAY_TOKEN: RIG_TOKEN } });
      stops.unshift(() => gw.kill());
      tap = await startFrameTap(gw.port);
      stops.unshift(() => tap.close());
      url = tap.url;
    } else {
      const host = await makeHost();
      writeFileSync(host.env.LOOPGATE_CONFIG!, JSON.stringify(config));
      gw = await startGateway({ env: { ...host.env, OPENCLAW_GATEWAY_TOKEN: RIG_TOKEN }, config });
      stops.unshift(() => gw.kill());
      tap = await startFrameTap(gw.port);
      stops.unshift(() => tap.close());
      const proc = await startRelay("node", { allowHosts: [host.hostId] });
      stops.unshift(() => proc.kill());
      const link = await startLinkProc(host, proc, tap.port);
      stops.unshift(() => link.kill());
      const minted = await mintToken(host, proc, ["--name", "openclaw-interop"]);
      relay = { proc, hostId: host.hostId, pin: proc.pin, clientToken: minted.token, link };
      url = `${proc.url}/h/${host.hostId}`;
    }
    const remote = relay
      ? { url, token: RIG_TOKEN, tlsFingerprint: relay.pin, edgeAuth: { Authorization: `Bearer ${relay.clientToken}` } }
      : { url, token: RIG_TOKEN };
    return {
      route,
      model,
      gw,
      tap,
      token: RIG_TOKEN,
      url,
      ...(relay ? { relay } : {}),
      home(extra = {}, remoteOverride = {}) {
        const home = tempDir("loopgate-ochome-");
        mkdirSync(join(home, ".openclaw"), { recursive: true });
        writeFileSync(
          join(home, ".openclaw", "openclaw.json"),
          JSON.stringify({ gateway: { mode: "remote", remote: { ...remote, ...remoteOverride } }, ...extra }),
        );
        return home;
      },
      gatewayLog: () => gw.stderr.join("\n"),
      async stop() {
        dumpFrames(route, tap);
        for (const s of stops) await s().catch(() => undefined);
      },
    };
  } catch (e) {
    for (const s of stops) await s().catch(() => undefined);
    throw e;
  }
}

/** Failures a test may not accept: any error response, or any response naming an unknown method. */
export function describeFailures(rig: InteropRig, since = 0): string {
  const f = rig.tap.failures(since);
  return f.map((x) => `${x.method}: ${x.code} ${x.message}`).join("\n");
}

/**
 * Every frame the gateway sent to the real client, checked against the
 * published protocol schema: each response and event envelope, hello-ok as
 * HelloOk, and chat events as ChatEvent. One line per problem, frames counted.
 */
export function frameSchemaErrors(rig: InteropRig): string[] {
  const errs: string[] = [];
  for (const f of rig.tap.frames) {
    if (f.dir !== "out") continue;
    const where = `conn ${f.conn} ${f.frame.type} ${f.frame.event ?? f.frame.id ?? ""}`;
    const def = f.frame.type === "res" ? "ResponseFrame" : f.frame.type === "event" ? "EventFrame" : undefined;
    if (!def) {
      errs.push(`${where}: not a response or event frame`);
      continue;
    }
    for (const e of validateDefinition(def, f.frame)) errs.push(`${where}: ${e}`);
    const payload = f.frame.payload as { type?: string } | undefined;
    if (f.frame.type === "res" && payload?.type === "hello-ok")
      for (const e of validateDefinition("HelloOk", payload)) errs.push(`${where} hello-ok: ${e}`);
    if (f.frame.event === "chat")
      for (const e of validateDefinition("ChatEvent", payload)) errs.push(`${where} chat: ${e}`);
  }
  return [...new Set(errs)].slice(0, 40);
}
