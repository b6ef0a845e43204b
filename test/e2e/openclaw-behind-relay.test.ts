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
import { startFakeModel, type FakeModel } from "../helpers/fake-model.ts";
import type { RelayProc, Host } from "../helpers/relay.ts";

const skip = interopEnabled();
if (skip) console.warn(`# SKIP openclaw behind the relay: ${skip}`);
const NETNS_ADDR = process.env.LOOPGATE_NETNS_ADDR;
const RELAY_NAME = "relay.test";

describe("openclaw behind the relay: namespace", { skip }, () => {
  test("runs in a network namespace of its own", { skip: NETNS_ADDR ? "already inside the namespace" : false }, async (t) => {
    const { spawnSync } = await import("node:child_process");
    if (spawnSync("unshare", ["-rnm", "true"]).status !== 0) {
      t.skip("cannot create a network and mount namespace (unshare -rnm failed)");
      return;
    }
    const addr = "10.99.0.3";
    // The relay is reached by name, as in real use: a hosts file of the namespace's own names it (a mount namespace
    // lets it cover /etc/hosts for this run only); chromium maps the hosts' origins, *.relay.test, itself.
    const hosts = join(tempDir("loopgate-netns-"), "hosts");
    writeFileSync(hosts, `127.0.0.1 localhost\n${addr} ${RELAY_NAME}\n`);
    const script = `mount --bind "$2" /etc/hosts && ip link set lo up && ip addr add ${addr}/32 dev lo && exec "$0" --test --test-reporter=tap --test-timeout=150000 "$1"`;
    const r = spawnSync("unshare", ["-rnm", "sh", "-c", script, process.execPath, new URL(import.meta.url).pathname, hosts], {
      env: { ...process.env, LOOPGATE_NETNS_ADDR: addr, NODE_TEST_CONTEXT: undefined },
      encoding: "utf8",
      timeout: 240_000,
    });
    assert.equal(r.status, 0, `the namespaced run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass 3\b/);
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
  let gwPort = 0;
  let relayUrl = "";
  let model: FakeModel | undefined;
  let printed: { for: string; pin: string; url: string; browserUrl: string; origin: string; openclawConfig: { gateway: { remote: Record<string, unknown> } }; openclawHostConfig: Record<string, unknown> };
  before(async () => {
    const { freePort } = await import("../helpers/sshd.ts");
    const { startOpenclawGateway } = await import("../helpers/openclaw.ts");
    const { makeHost, startLinkProc } = await import("../helpers/relay.ts");
    const port = await freePort();
    gwPort = port;
    host = await makeHost();
    // The relay by its name (its configured public URL); each host's browser origin is one label below it.
    const { startNamedRelay } = await import("../helpers/named-relay.ts");
    let byName: { url: string; pin: string };
    ({ relay, byName } = await startNamedRelay("node", [host.hostId], { name: RELAY_NAME, listen: NETNS_ADDR! }));
    relayUrl = byName.url;
    link = await startLinkProc(host, byName, port);
    // No --relay, --relay-fingerprint or --for: the link's record says where and what.
    const r = await cli(["token", "create", "--name", "openclaw-laptop", "--json"], { env: { ...host.env, OPENCLAW_GATEWAY_TOKEN: GW_TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    printed = JSON.parse(r.stdout);
    // The OpenClaw gateway: the printed host-side settings, plus a fake OpenAI-compatible model for its agent.
    model = await startFakeModel();
    const hostSide = printed.openclawHostConfig as { gateway: Record<string, unknown> };
    ({ stop, log: gwLog } = await startOpenclawGateway(port, GW_TOKEN, {
      ...hostSide,
      agents: { defaults: { model: { primary: "fake/fake-1" } } },
      models: {
        mode: "merge",
        providers: {
          fake: {
            baseUrl: model.baseUrl,
            apiKey: "sk-fake",
            api: "openai-completions",
            models: [{ id: "fake-1", name: "Fake", reasoning: false, input: ["text"], cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }, contextWindow: 32000, maxTokens: 1024 }],
          },
        },
      },
    }));
  });
  after(async () => {
    await model?.close();
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
    assert.equal(remote.url, `${relayUrl}/h/${host.hostId}`);
    assert.deepEqual(Object.keys(remote.edgeAuth as object), ["x-loopgate-client-token"]);
    const hostSide = printed.openclawHostConfig as { gateway: { trustedProxies: string[]; controlUi: { allowedOrigins: string[] } } };
    assert.deepEqual(hostSide.gateway.trustedProxies, ["127.0.0.1", "::1"]);
    assert.deepEqual(hostSide.gateway.controlUi.allowedOrigins, [printed.origin]);
    assert.match(printed.origin, new RegExp(`^https://[a-z2-7]{52}\\.${RELAY_NAME.replace(".", "\\.")}:\\d+$`));
  });

  test("the openclaw CLI with that config written as is gets gateway call health through the relay", async () => {
    const home = tempDir("loopgate-ocprinted-");
    mkdirSync(join(home, ".openclaw"), { recursive: true });
    writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(printed.openclawConfig));
    const r = await openclaw(["gateway", "call", "health", "--json"], { home, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout + "\n--- gateway log:\n" + gwLog!().slice(-3000));
    assert.equal(lastJson(r.stdout).ok, true);
  });

  test("OpenClaw's own Control UI loads at browserUrl through the relay with no failed request, pairs and chats", async () => {
    const { chromium } = await import("playwright-core");
    const exe = process.env.LOOPGATE_CHROMIUM ?? "/usr/bin/chromium";
    const browser = await chromium.launch({ executablePath: exe, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", `--host-resolver-rules=MAP ${RELAY_NAME} ${NETNS_ADDR}, MAP *.${RELAY_NAME} ${NETNS_ADDR}`] });
    try {
      // The relay's certificate is self-signed: accepted for this test profile only (see README on browsers and pins).
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await ctx.newPage();
      const failed: string[] = [];
      page.on("requestfailed", (q) => failed.push(`${q.method()} ${q.url()} ${q.failure()?.errorText}`));
      page.on("response", (res) => res.status() >= 400 && failed.push(`${res.status()} ${res.url()}`));
      const sockets: string[] = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      assert.ok(printed.browserUrl.startsWith(`${printed.origin}/?token=`), printed.browserUrl);
      await page.goto(`${printed.browserUrl}#token=${GW_TOKEN}`);
      assert.equal(new URL(page.url()).search, "", "the relay token left the address bar");
      await page.waitForLoadState("networkidle", { timeout: 30_000 });
      await page.waitForTimeout(2000);
      assert.deepEqual(failed, [], "no failed request");
      assert.ok(sockets.some((u) => u.startsWith(printed.origin.replace("https:", "wss:"))), `the UI's WebSocket goes to its own origin: ${sockets.join(" ")}`);
      // Gateway auth passed through the relay; OpenClaw now asks for the one-time device pairing.
      await page.waitForSelector("text=has not seen it before", { timeout: 20_000 });
      // The owner approves it on the host (loopback, straight to the gateway, not through the relay).
      const direct = ["--url", `ws://127.0.0.1:${gwPort}`, "--token", GW_TOKEN, "--json"];
      const list = await openclaw(["devices", "list", ...direct], { timeoutMs: 60_000 });
      assert.equal(list.code, 0, list.stderr + list.stdout);
      const pending = lastJson(list.stdout).pending as { requestId: string }[] | undefined;
      assert.ok(pending && pending.length === 1, list.stdout.slice(0, 2000));
      const ok = await openclaw(["devices", "approve", pending[0]!.requestId, ...direct], { timeoutMs: 60_000 });
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      await page.waitForFunction(() => !document.body.innerText.includes("has not seen it before"), undefined, { timeout: 30_000 });
      assert.deepEqual(failed, [], "still no failed request");
      // Paired and connected: chat through the relay, the reply streamed from the host's (fake) model.
      const composer = page.getByRole("textbox", { name: "Chat composer" });
      await composer.waitFor({ timeout: 20_000 });
      await composer.fill("hello through the relay");
      await composer.press("Enter");
      await page.waitForFunction(() => document.body.innerText.includes("Hello, world"), undefined, { timeout: 45_000 });
      // While chatting the UI asks for pictures the gateway does not have (the owner's avatar, a workspace icon):
      // a failure counts against the relay unless the same request straight to the gateway fails the same way.
      const direct404 = async (url: string) => {
        const u = new URL(url);
        const r = await fetch(`http://127.0.0.1:${gwPort}${u.pathname}${u.search}`, { headers: { authorization: `Bearer ${GW_TOKEN}` } });
        await r.body?.cancel();
        return r.status === 404;
      };
      const relayCaused: string[] = [];
      for (const f of failed) {
        const m = /(?:^404 |^GET )(https:\S+)(?: net::ERR_ABORTED)?$/.exec(f);
        if (!m || !(await direct404(m[1]!))) relayCaused.push(f);
      }
      assert.deepEqual(relayCaused, [], "no request failed because of the relay while chatting");
    } finally {
      await browser.close();
    }
  });
});
