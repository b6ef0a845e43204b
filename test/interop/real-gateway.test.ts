/**
 * loopgate against a real OpenClaw gateway (opt-in: LOOPGATE_INTEROP=1, as
 * each case starts OpenClaw's gateway, ~40 s of CPU): loopgate's CLI talks to
 * it, and `loopgate link` with the relay carries the OpenClaw CLI to it. The
 * OpenClaw clients against loopgate's own gateway run always, in the other
 * files of this folder.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { interopEnabled, openclawUnavailable, openclaw, lastJson } from "../helpers/openclaw.ts";

const skip = interopEnabled() ?? openclawUnavailable();
if (skip) console.warn(`\n*** SKIPPING loopgate against a real OpenClaw gateway: ${skip} ***\n`);

describe("interop: loopgate's CLI against the real openclaw gateway", { skip }, () => {
  const TOKEN = "real-gateway-token-0123456789";
  let stop: (() => Promise<void>) | undefined;
  let port = 0;
  before(async () => {
    const { freePort } = await import("../helpers/free-port.ts");
    const { startOpenclawGateway } = await import("../helpers/openclaw.ts");
    port = await freePort();
    stop = (await startOpenclawGateway(port, TOKEN)).stop;
  });
  after(async () => {
    await stop?.();
  });

  test("loopgate health, status --deep and gateway call work against it", async () => {
    const { cli, tempDir } = await import("../helpers/proc.ts");
    const dir = tempDir();
    const env = { HOME: dir, LOOPGATE_STATE_DIR: dir, LOOPGATE_CONFIG: "", OPENCLAW_GATEWAY_TOKEN: "" };
    const url = `ws://127.0.0.1:${port}`;
    const h = await cli(["health", "--url", url, "--token", TOKEN, "--timeout", "30000", "--json"], {
      env,
      timeoutMs: 40_000,
    });
    assert.equal(h.code, 0, h.stderr);
    const s = await cli(["status", "--deep", "--url", url, "--token", TOKEN, "--json"], { env });
    assert.equal(s.code, 0, s.stderr);
    const deep = JSON.parse(s.stdout).deep;
    assert.equal(deep.server.protocol, 4);
    assert.ok(deep.methods.includes("health"));
    const c = await cli(["gateway", "call", "health", "--url", url, "--token", TOKEN, "--json"], { env });
    assert.equal(c.code, 0, c.stderr);
    const bad = await cli(["health", "--url", url, "--token", "wrong"], { env });
    assert.equal(bad.code, 8, bad.stderr);
  });
});

/**
 * OpenClaw refuses forwarded traffic whose client address is loopback (it
 * will not grant local trust through a proxy), so a client on 127.0.0.1 can
 * never show the relayed path working. This suite therefore runs itself again
 * inside a private network namespace (unshare -rn) where the relay listens on
 * a second address of the namespace's own loopback device: the client then
 * reaches the relay from a non-loopback address, as it would from the
 * internet, and nothing leaves the namespace.
 */
const NETNS_ADDR = process.env.LOOPGATE_NETNS_ADDR;

describe("interop: `loopgate link` in front of the real openclaw gateway, from a private network namespace", {
  skip,
}, () => {
  test("runs in a namespace of its own", { skip: NETNS_ADDR ? "already inside the namespace" : false }, async (t) => {
    const { spawnSync } = await import("node:child_process");
    const probe = spawnSync("unshare", ["-rn", "true"]);
    if (probe.status !== 0) {
      t.skip(
        `cannot create a network namespace (unshare -rn failed: ${String(probe.stderr).trim()}); install util-linux or allow user namespaces`,
      );
      return;
    }
    const addr = "10.99.0.2";
    const script = `ip link set lo up && ip addr add ${addr}/32 dev lo && exec "$0" --test --test-reporter=tap --test-timeout=120000 --test-name-pattern=edgeAuth "$1"`;
    const r = spawnSync("unshare", ["-rn", "sh", "-c", script, process.execPath, new URL(import.meta.url).pathname], {
      // NODE_TEST_CONTEXT would make the inner runner report to ours instead of printing.
      env: { ...process.env, LOOPGATE_NETNS_ADDR: addr, NODE_TEST_CONTEXT: undefined },
      encoding: "utf8",
      timeout: 180_000,
    });
    assert.equal(r.status, 0, `the namespaced run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass [1-9]/);
    assert.match(r.stdout, /# fail 0/);
  });
});

describe("interop: `loopgate link` and the relay in front of the real openclaw gateway", {
  skip: skip ?? (NETNS_ADDR ? false : "runs only inside its network namespace (see above)"),
}, () => {
  const GW_TOKEN = "real-gateway-token-behind-relay-0123";
  let stop: (() => Promise<void>) | undefined;
  let log: (() => string) | undefined;
  let relay: import("../helpers/relay.ts").RelayProc | undefined;
  let link: import("../helpers/proc.ts").Proc | undefined;
  let minted: import("../helpers/relay.ts").MintedToken;
  let hostId = "";
  let relayPin = "";
  let relayUrl = "";
  before(async () => {
    const { freePort } = await import("../helpers/free-port.ts");
    const { startOpenclawGateway } = await import("../helpers/openclaw.ts");
    const { makeHost, startRelay, startLinkProc, mintToken } = await import("../helpers/relay.ts");
    const port = await freePort();
    // The setting that makes OpenClaw use the forwarded client address for connections from the link.
    ({ stop, log } = await startOpenclawGateway(port, GW_TOKEN, { gateway: { trustedProxies: ["127.0.0.1", "::1"] } }));
    const host = await makeHost();
    hostId = host.hostId;
    relay = await startRelay("node", { allowHosts: [host.hostId], args: ["--host", NETNS_ADDR!] });
    relayPin = relay.pin;
    relayUrl = relay.url;
    link = await startLinkProc(host, relay, port);
    minted = await mintToken(host, relay, ["--name", "openclaw-cli"]);
  });
  after(async () => {
    await link?.kill();
    await relay?.kill();
    await stop?.();
  });

  test("edgeAuth: the openclaw CLI, configured with the printed URL, pin and token, gets health through the relay", async () => {
    const { tempDir } = await import("../helpers/proc.ts");
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const home = tempDir("loopgate-ocremote-");
    mkdirSync(join(home, ".openclaw"), { recursive: true });
    const url = `${relayUrl}/h/${hostId}`;
    writeFileSync(
      join(home, ".openclaw", "openclaw.json"),
      JSON.stringify({
        gateway: {
          mode: "remote",
          remote: {
            url,
            token: GW_TOKEN,
            tlsFingerprint: relayPin,
            edgeAuth: { Authorization: `Bearer ${minted.token}` },
          },
        },
      }),
    );
    const r = await openclaw(["gateway", "call", "health", "--json"], { home, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout + "\n--- gateway log:\n" + log!().slice(-3000));
    assert.equal(lastJson(r.stdout).ok, true);
    // Without the relay token the relay refuses before anything reaches the gateway.
    writeFileSync(
      join(home, ".openclaw", "openclaw.json"),
      JSON.stringify({ gateway: { mode: "remote", remote: { url, token: GW_TOKEN, tlsFingerprint: relayPin } } }),
    );
    const before = log!().length;
    const bad = await openclaw(["gateway", "call", "health", "--json"], { home, timeoutMs: 60_000 });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /401|unauthori[sz]ed|token/i);
    assert.ok(!log!().slice(before).includes("connect"), "nothing reached the gateway");
  });
});
