/**
 * A real OpenClaw gateway behind `loopgate link` and the relay, reached by the
 * real `openclaw` CLI with exactly the config `loopgate token create --json`
 * printed (issue 18), written as is. Opt-in like the other interop suites
 * (LOOPGATE_INTEROP=1). OpenClaw refuses forwarded traffic from a loopback
 * client, so the suite re-runs itself in a private network namespace where the
 * relay listens on a non-loopback address of the namespace's own `lo`.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { interopEnabled, openclaw, lastJson } from "../helpers/openclaw.ts";
import { cli, tempDir, type Proc } from "../helpers/proc.ts";
import type { RelayProc, Host } from "../helpers/relay.ts";

const skip = interopEnabled();
if (skip) console.warn(`# SKIP openclaw behind the relay: ${skip}`);
const NETNS_ADDR = process.env.LOOPGATE_NETNS_ADDR;

describe("openclaw behind the relay: namespace", { skip }, () => {
  test("runs in a network namespace of its own", { skip: NETNS_ADDR ? "already inside the namespace" : false }, async (t) => {
    const { spawnSync } = await import("node:child_process");
    if (spawnSync("unshare", ["-rn", "true"]).status !== 0) {
      t.skip("cannot create a network namespace (unshare -rn failed)");
      return;
    }
    const addr = "10.99.0.3";
    const script = `ip link set lo up && ip addr add ${addr}/32 dev lo && exec "$0" --test --test-reporter=tap --test-timeout=150000 "$1"`;
    const r = spawnSync("unshare", ["-rn", "sh", "-c", script, process.execPath, new URL(import.meta.url).pathname], {
      env: { ...process.env, LOOPGATE_NETNS_ADDR: addr, NODE_TEST_CONTEXT: undefined },
      encoding: "utf8",
      timeout: 240_000,
    });
    assert.equal(r.status, 0, `the namespaced run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass 2\b/);
    assert.match(r.stdout, /# fail 0/);
  });
});

describe("openclaw behind the relay: the printed config, as is", { skip: skip ?? (NETNS_ADDR ? false : "runs only inside its network namespace (see above)") }, () => {
  const GW_TOKEN = "openclaw-gateway-token-behind-relay-42";
  let stop: (() => Promise<void>) | undefined;
  let gwLog: (() => string) | undefined;
  let relay: RelayProc | undefined;
  let link: Proc | undefined;
  let host: Host;
  let printed: { for: string; pin: string; url: string; browserUrl: string; openclawConfig: { gateway: { remote: Record<string, unknown> } }; openclawHostConfig: Record<string, unknown> };
  before(async () => {
    const { freePort } = await import("../helpers/sshd.ts");
    const { startOpenclawGateway } = await import("../helpers/openclaw.ts");
    const { makeHost, startRelay, startLinkProc } = await import("../helpers/relay.ts");
    const port = await freePort();
    host = await makeHost();
    relay = await startRelay("node", { allowHosts: [host.hostId], args: ["--host", NETNS_ADDR!] });
    link = await startLinkProc(host, relay, port);
    // No --relay, --relay-fingerprint or --for: the link's record says where and what.
    const r = await cli(["token", "create", "--name", "openclaw-laptop", "--json"], { env: { ...host.env, OPENCLAW_GATEWAY_TOKEN: GW_TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    printed = JSON.parse(r.stdout);
    ({ stop, log: gwLog } = await startOpenclawGateway(port, GW_TOKEN, printed.openclawHostConfig));
  });
  after(async () => {
    await link?.kill();
    await relay?.kill();
    await stop?.();
  });

  test("token create prints an OpenClaw config: pin as a string, relay token in edgeAuth, gateway token in token", () => {
    assert.equal(printed.for, "openclaw");
    const remote = printed.openclawConfig.gateway.remote;
    assert.equal(typeof remote.tlsFingerprint, "string");
    assert.equal(remote.tlsFingerprint, relay!.pin);
    assert.equal(remote.token, GW_TOKEN);
    assert.equal(remote.url, `${relay!.url}/h/${host.hostId}`);
    assert.deepEqual(Object.keys(remote.edgeAuth as object), ["x-loopgate-client-token"]);
    assert.deepEqual((printed.openclawHostConfig as { gateway: { trustedProxies: string[] } }).gateway.trustedProxies, ["127.0.0.1", "::1"]);
  });

  test("the openclaw CLI with that config written as is gets gateway call health through the relay", async () => {
    const home = tempDir("loopgate-ocprinted-");
    mkdirSync(join(home, ".openclaw"), { recursive: true });
    writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(printed.openclawConfig));
    const r = await openclaw(["gateway", "call", "health", "--json"], { home, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout + "\n--- gateway log:\n" + gwLog!().slice(-3000));
    assert.equal(lastJson(r.stdout).ok, true);
  });
});
