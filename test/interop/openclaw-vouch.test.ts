/**
 * One token for both hops in front of a real OpenClaw gateway (issue 18):
 * `loopgate link --vouch-header x-loopgate-user` verifies each relayed
 * client's token again with the host key and names it in that header, and
 * OpenClaw runs in trusted-proxy mode with the settings `token create`
 * printed. A client with only its relay token (the printed config, no OpenClaw
 * gateway token) gets `gateway call health`; a client that forges the header
 * gets nothing. Runs in a private network namespace (OpenClaw refuses
 * forwarded traffic from a loopback client) and skips loudly when it cannot.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { openclaw, lastJson, approvePendingDevices } from "../helpers/openclaw.ts";
import { NETNS_ADDR } from "../helpers/netns.ts";
import {
  describeNamespaceRun,
  startOpenclawWithFakeModel,
  tuiChat,
  tuiConnected,
  linkToOpenclawPort,
  namespacedSuiteSkips,
  openclawHome,
  relayBrowserPage,
} from "../helpers/openclaw-relay.ts";
import { startTui } from "../helpers/openclaw-tui.ts";
import type { FakeModel } from "../helpers/fake-model.ts";
import { cli, type Proc } from "../helpers/proc.ts";
import type { RelayProc, Host } from "../helpers/relay.ts";

const ADDR = "10.99.0.4";
const RELAY_NAME = "relay.test";
const VOUCH = "x-loopgate-user";
const OWNER_PASSWORD = "owner-local-password-for-approvals-7";

const { skip, chromiumMissing, tmuxMissing } = namespacedSuiteSkips(
  "one token through the relay to OpenClaw (trusted-proxy)",
  ADDR,
);

describeNamespaceRun("openclaw trusted-proxy behind the link: namespace", {
  file: new URL(import.meta.url).pathname,
  addr: ADDR,
  names: [RELAY_NAME],
  testTimeoutMs: 150_000,
  passes: 5 + (tmuxMissing ? 0 : 1) + (chromiumMissing ? 0 : 1),
  skip,
});

type Printed = {
  id: string;
  for: string;
  browserUrl: string;
  origin: string;
  vouchHeader?: string;
  openclawConfig: { gateway: { remote: Record<string, unknown> } };
  openclawHostConfig: { gateway: Record<string, unknown> };
};

describe("openclaw trusted-proxy behind the link: one relay token serves both hops", {
  skip: skip ?? (NETNS_ADDR ? false : "runs only inside its network namespace (see above)"),
}, () => {
  let stop: (() => Promise<void>) | undefined;
  let gwLog: () => string = () => "";
  let relay: RelayProc | undefined;
  let link: Proc | undefined;
  let host: Host;
  let laptop: Printed;
  let other: Printed;
  let reader: Printed;
  let model: FakeModel | undefined;
  let port = 0;
  before(async () => {
    ({ port, host, relay, link } = await linkToOpenclawPort({
      name: RELAY_NAME,
      listen: NETNS_ADDR!,
      linkArgs: ["--vouch-header", VOUCH],
    }));
    // No OpenClaw gateway token anywhere: the link's record says it vouches, so token create needs none.
    const mint = async (name: string, extra: string[] = []): Promise<Printed> => {
      const r = await cli(["token", "create", "--name", name, "--json", ...extra], {
        env: { ...host.env, OPENCLAW_GATEWAY_TOKEN: "" },
      });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Printed;
    };
    laptop = await mint("laptop");
    other = await mint("other");
    reader = await mint("reader", ["--scopes", "operator.read"]);
    // The printed host-side settings as is, plus what the owner adds: a password for their own local CLI
    // (trusted-proxy mode has no shared token) and, here, one allowed user, to tell identities apart.
    const hostSide = structuredClone(laptop.openclawHostConfig) as {
      gateway: { auth: { password?: string; trustedProxy: Record<string, unknown> } };
    };
    hostSide.gateway.auth.password = OWNER_PASSWORD;
    hostSide.gateway.auth.trustedProxy.allowUsers = [laptop.id, reader.id];
    // Device-less clients (the CLI) get only what OpenClaw grants their identity; grant both tokens writing,
    // so that only the token's own scopes (the link's x-openclaw-scopes cap) can keep the reader from it.
    (hostSide.gateway.auth as Record<string, unknown>).identityScopes = {
      [laptop.id]: ["operator.read", "operator.write"],
      [reader.id]: ["operator.read", "operator.write"],
    };
    ({ model, stop, log: gwLog } = await startOpenclawWithFakeModel(port, undefined, hostSide));
  });
  after(async () => {
    await link?.kill();
    await relay?.kill();
    await stop?.();
  });

  const clientHome = (config: unknown): string => openclawHome(config, "loopgate-ocvouch-");
  /** The owner approves every pending pairing on the host, straight to the gateway with the local password. */
  const approvePending = () => approvePendingDevices(["--url", `ws://127.0.0.1:${port}`, "--password", OWNER_PASSWORD]);
  const withEdge = (p: Printed, edgeAuth: Record<string, string>) => ({
    gateway: { ...p.openclawConfig.gateway, remote: { ...p.openclawConfig.gateway.remote, edgeAuth } },
  });

  test("token create prints trusted-proxy settings for the host and no OpenClaw gateway token for the client", () => {
    assert.equal(laptop.for, "openclaw");
    assert.equal(laptop.vouchHeader, VOUCH);
    const remote = laptop.openclawConfig.gateway.remote;
    assert.equal(remote.token, undefined);
    // A fixed placeholder, not a secret: OpenClaw's TUI will not dial without one, and trusted-proxy mode never checks it.
    assert.equal(remote.password, "none:the-loopgate-link-vouches");
    assert.deepEqual(Object.keys(remote.edgeAuth as object), ["x-loopgate-client-token"]);
    // Without this the OpenClaw CLI refuses to dial at all ("requires credentials before opening a websocket").
    assert.equal((laptop.openclawConfig.gateway as { auth?: { mode?: string } }).auth?.mode, "trusted-proxy");
    assert.deepEqual(laptop.openclawHostConfig.gateway.auth, {
      mode: "trusted-proxy",
      trustedProxy: { userHeader: VOUCH, requiredHeaders: ["x-loopgate-relay"], allowLoopback: true },
    });
    assert.deepEqual(laptop.openclawHostConfig.gateway.trustedProxies, ["127.0.0.1", "::1"]);
  });

  test("the openclaw CLI with only its relay token (the printed config, as is) gets gateway call health", async () => {
    const r = await openclaw(["gateway", "call", "health", "--json"], {
      home: clientHome(laptop.openclawConfig),
      timeoutMs: 90_000,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout + "\n--- gateway log:\n" + gwLog().slice(-3000));
    assert.equal(lastJson(r.stdout).ok, true);
    // OpenClaw took the identity the link vouched for: the token's id, verified with the host key.
    assert.match(gwLog(), new RegExp(`authenticated user connected .*user=${laptop.id}`));
  });

  test("the token's scopes hold at OpenClaw: a read-only relay token cannot write even where OpenClaw would let its identity", async () => {
    const call = async (p: Printed) =>
      openclaw(
        [
          "gateway",
          "call",
          "sessions.send",
          "--params",
          JSON.stringify({ key: "agent:main:scope-probe", message: "probe" }),
          "--json",
        ],
        { home: clientHome(p.openclawConfig), timeoutMs: 90_000 },
      );
    const ro = await call(reader);
    assert.notEqual(ro.code, 0, ro.stdout);
    assert.match(ro.stdout + ro.stderr, /operator\.write/, "refused for want of operator.write");
    // The read-write token passes the scope check (the probe session does not exist: that is all it is told).
    const rw = await call(laptop);
    assert.doesNotMatch(rw.stdout + rw.stderr, /missing scope/, rw.stdout + rw.stderr);
    assert.match(rw.stdout + rw.stderr, /session not found|"ok":\s*true/, rw.stdout + rw.stderr);
  });

  test("a client that forges the header gets nothing: the link's value is the verified token's, not the client's", async () => {
    // A valid relay token of a user OpenClaw does not allow, claiming to be the allowed one.
    const forged = withEdge(other, {
      "x-loopgate-client-token": (other.openclawConfig.gateway.remote.edgeAuth as Record<string, string>)[
        "x-loopgate-client-token"
      ]!,
      [VOUCH]: laptop.id,
    });
    const before = gwLog().length;
    const r = await openclaw(["gateway", "call", "health", "--json"], { home: clientHome(forged), timeoutMs: 90_000 });
    assert.notEqual(r.code, 0, r.stdout);
    const seen = gwLog().slice(before);
    assert.doesNotMatch(
      seen,
      new RegExp(`authenticated user connected[^\n]*user=${laptop.id}`),
      "OpenClaw never took the forged identity",
    );
    // OpenClaw saw the other token's id (not on its allowUsers), not the forged one.
    assert.match(seen, /trusted_proxy_user_not_allowed/, `OpenClaw refused the connection:\n${seen}`);
  });

  test("the header alone, with no relay token, never reaches the gateway", async () => {
    const before = gwLog().length;
    const r = await openclaw(["gateway", "call", "health", "--json"], {
      home: clientHome(withEdge(laptop, { [VOUCH]: laptop.id })),
      timeoutMs: 90_000,
    });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr + r.stdout, /401|unauthori[sz]ed|token/i);
    assert.equal(
      gwLog()
        .slice(before)
        .match(/trusted.proxy|\bhealth\b/gi),
      null,
      "OpenClaw saw nothing of it",
    );
  });

  test("openclaw tui with only its relay token chats through the relay (pairing, if OpenClaw asks, by the owner's password)", {
    skip: tmuxMissing,
  }, async (t) => {
    const home = clientHome(laptop.openclawConfig);
    const tui = await startTui([], { home });
    try {
      // The owner approves on the host with the local password (trusted-proxy mode has no shared token).
      if (await tuiConnected(tui, approvePending))
        t.diagnostic("OpenClaw asked to pair the TUI; the owner approved it on the host");
      else t.diagnostic("no pairing asked: the vouched identity was enough");
      await tuiChat(tui, model!, "hello with one token", 60_000);
    } finally {
      await tui.close();
    }
  });

  test("OpenClaw's Control UI at the printed browser link, no OpenClaw secret: passes gateway auth, pairs once and chats", {
    skip: chromiumMissing,
  }, async (t) => {
    const { browser, page, failed } = await relayBrowserPage(RELAY_NAME, NETNS_ADDR!);
    try {
      // The printed link as is: no #token=, no OpenClaw secret at all; the relay's cookie is the only credential.
      await page.goto(laptop.browserUrl);
      assert.equal(new URL(page.url()).search, "", "the relay token left the address bar");
      await page.waitForSelector("text=has not seen it before", { timeout: 30_000 });
      assert.match(
        await page.evaluate(() => document.body.innerText),
        /passed Gateway auth/,
        "the vouched identity passed OpenClaw's gateway auth",
      );
      assert.equal(await approvePending(), 1, "one pairing request: the browser's");
      await page.waitForFunction(() => !document.body.innerText.includes("has not seen it before"), undefined, {
        timeout: 30_000,
      });
      const composer = page.getByRole("textbox", { name: "Chat composer" });
      await composer.waitFor({ timeout: 30_000 });
      // The main session may already show the TUI's exchange: wait for a reply more than before.
      const replies = () => page.evaluate(() => document.body.innerText.split("Hello, world").length - 1);
      const before = await replies();
      await composer.fill("hello from the browser with one token");
      await composer.press("Enter");
      // The message reached the host's model through the relay and the vouching link (history may still be loading on the page).
      const sent = () =>
        model!.requests.some((r) => /hello from the browser with one token/.test(JSON.stringify(r.messages)));
      for (const deadline = Date.now() + 90_000; !sent() && Date.now() < deadline; )
        await new Promise((r) => setTimeout(r, 200));
      assert.ok(sent(), `the host's model never got the message; gateway log:\n${gwLog().slice(-2000)}`);
      await page
        .waitForFunction((n) => document.body.innerText.split("Hello, world").length - 1 > n, before, {
          timeout: 90_000,
        })
        .catch(async (e: Error) => {
          throw new Error(
            `${e.message}\n--- page:\n${(await page.evaluate(() => document.body.innerText)).slice(-1500)}\n--- gateway log:\n${gwLog().slice(-2000)}`,
          );
        });
      // The link vouches for WebSockets only (the relay forwards no token on plain HTTP), so OpenClaw's
      // authenticated HTTP routes answer 401 through it: its UI config, avatars, workspace icons (see README).
      // Anything else failing is a failure of this path.
      const unvouchedHttp =
        /^(?:401 |(?:GET|HEAD) )https:\/\/[^/]+\/(?:control-ui-config\.json|api\/users\/[^/]+\/avatar|__openclaw__\/workspace-icon\/)\S*(?: net::ERR_ABORTED)?$/;
      const other = failed.filter((f) => !unvouchedHttp.test(f));
      t.diagnostic(`OpenClaw HTTP routes refused for want of a vouch: ${failed.length - other.length}`);
      assert.deepEqual(other, [], "no other request failed");
    } finally {
      await browser.close();
    }
  });
});
