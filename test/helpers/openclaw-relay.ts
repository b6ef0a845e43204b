/**
 * The pieces the "real OpenClaw behind the relay" interop suites share
 * (openclaw-behind-relay, openclaw-vouch), run inside their network
 * namespace: a host linked through a named Node relay to the port an
 * OpenClaw gateway will listen on, the fake model as that gateway's agent,
 * a client HOME holding a printed openclaw.json, and chromium that resolves
 * the relay's name and its hosts' origins to the namespace's address and
 * records every failed request; and the outer half of such a suite, which
 * re-runs its file inside a namespace of its own.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { CHROMIUM, launchChromium } from "./chromium.ts";
import { NETNS_ADDR, namespaceUnavailable, runInNamespace } from "./netns.ts";
import { openclawUnavailable, startOpenclawGateway } from "./openclaw.ts";
import { startFakeModel, type FakeModel } from "./fake-model.ts";
import { tmuxUnavailable, type Tui } from "./openclaw-tui.ts";
import { startNamedRelay } from "./named-relay.ts";
import { tempDir, type Proc } from "./proc.ts";
import { makeHost, startLinkProc, type Host, type RelayProc } from "./relay.ts";
import { freePort } from "./free-port.ts";

/**
 * A host and a free port for its OpenClaw gateway, a Node relay reached by
 * `name` and listening on `listen`, and `loopgate link` (with `linkArgs`)
 * from the relay to that port. `byName` is the relay as clients name it.
 */
export async function linkToOpenclawPort(opts: { name: string; listen: string; linkArgs?: string[] }): Promise<{
  port: number;
  host: Host;
  relay: RelayProc;
  byName: { url: string; pin: string };
  link: Proc;
}> {
  const port = await freePort();
  const host = await makeHost();
  // The relay by its name (its configured public URL); each host's browser origin is one label below it.
  const { relay, byName } = await startNamedRelay("node", [host.hostId], { name: opts.name, listen: opts.listen });
  const link = await startLinkProc(host, byName, port, opts.linkArgs ?? []);
  return { port, host, relay, byName, link };
}

/** OpenClaw settings that make the fake model (test/helpers/fake-model.ts at `baseUrl`) its agent's model. */
function fakeModelAgentConfig(baseUrl: string): Record<string, unknown> {
  const fake = {
    id: "fake-1",
    name: "Fake",
    reasoning: false,
    input: ["text"],
    cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    contextWindow: 32000,
    maxTokens: 1024,
  };
  return {
    agents: { defaults: { model: { primary: "fake/fake-1" } } },
    models: {
      mode: "merge",
      providers: { fake: { baseUrl, apiKey: "sk-fake", api: "openai-completions", models: [fake] } },
    },
  };
}

/**
 * A real OpenClaw gateway on `port` with the host-side settings `hostConfig` (what `token create`
 * printed, plus the owner's additions) and the fake model as its agent's model. `stop` ends both.
 */
export async function startOpenclawWithFakeModel(
  port: number,
  token: string | undefined,
  hostConfig: Record<string, unknown>,
): Promise<{ model: FakeModel; log: () => string; stop: () => Promise<void> }> {
  const model = await startFakeModel();
  const gw = await startOpenclawGateway(port, token, { ...hostConfig, ...fakeModelAgentConfig(model.baseUrl) });
  return {
    model,
    log: gw.log,
    stop: async () => {
      await model.close();
      await gw.stop();
    },
  };
}

/** The TUI's status line when it is connected and waiting for input. */
export const tuiIdle = (screen: string): boolean => /connected \| idle/.test(screen);

/**
 * Waits for the TUI to connect through the relay. If OpenClaw asks to pair it first, `approve`
 * (the owner, on the host) lets it in and the TUI reconnects by itself. Says whether it asked.
 */
export async function tuiConnected(tui: Tui, approve: () => Promise<number>): Promise<boolean> {
  const first = await tui.waitFor((s) => tuiIdle(s) || /pair/i.test(s), 60_000);
  if (tuiIdle(first)) return false;
  assert.ok((await approve()) >= 1, `the TUI asked to pair but the host has no request:\n${first}`);
  await tui.waitFor(tuiIdle, 60_000);
  return true;
}

/** Sends `text` from the TUI: it reaches the host's (fake) model, and the model's reply shows, the TUI idle again. */
export async function tuiChat(tui: Tui, model: FakeModel, text: string, replyTimeoutMs: number): Promise<void> {
  await tui.submit(text);
  // The session may already show an earlier reply (history): first the message reaches the host's model, then its reply shows.
  const sent = () => model.requests.some((r) => JSON.stringify(r.messages).includes(text));
  for (const deadline = Date.now() + 60_000; !sent() && Date.now() < deadline; )
    await new Promise((r) => setTimeout(r, 200));
  assert.ok(sent(), "the host's model got the TUI's message");
  await tui.waitFor((s) => s.includes(text) && s.includes("Hello, world") && tuiIdle(s), replyTimeoutMs);
}

/** A fresh HOME whose ~/.openclaw/openclaw.json is `config`, written as is. */
export function openclawHome(config: unknown, prefix = "loopgate-ochome-"): string {
  const home = tempDir(prefix);
  mkdirSync(join(home, ".openclaw"), { recursive: true });
  writeFileSync(join(home, ".openclaw", "openclaw.json"), JSON.stringify(config));
  return home;
}

/**
 * Chromium mapping `relayName` and `*.relayName` to `addr`, one page in a
 * context that accepts the relay's self-signed certificate (this test profile
 * only), and every failed request or 4xx/5xx response as a line in `failed`.
 * The caller closes `browser`.
 */
export async function relayBrowserPage(
  relayName: string,
  addr: string,
): Promise<{ browser: Browser; page: Page; failed: string[] }> {
  const browser = await launchChromium([`--host-resolver-rules=MAP ${relayName} ${addr}, MAP *.${relayName} ${addr}`]);
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const failed: string[] = [];
    page.on("requestfailed", (q) => failed.push(`${q.method()} ${q.url()} ${q.failure()?.errorText}`));
    page.on("response", (res) => res.status() >= 400 && failed.push(`${res.status()} ${res.url()}`));
    return { browser, page, failed };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/**
 * What of a namespaced OpenClaw suite can run here, said loudly once (outside
 * the namespace): `skip` for the whole suite (no OpenClaw, no namespace), and
 * the browser and TUI cases on their own.
 */
export function namespacedSuiteSkips(
  title: string,
  addr: string,
): { skip: string | undefined; chromiumMissing: string | undefined; tmuxMissing: string | undefined } {
  const chromiumMissing = CHROMIUM
    ? undefined
    : "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)";
  const tmuxMissing = tmuxUnavailable();
  const skip = openclawUnavailable() ?? (NETNS_ADDR ? undefined : namespaceUnavailable(addr));
  if (skip) console.warn(`\n*** SKIPPING ${title}: ${skip} ***\n`);
  else if (!NETNS_ADDR)
    for (const why of [chromiumMissing, tmuxMissing])
      if (why) console.warn(`\n*** SKIPPING part of ${title}: ${why} ***\n`);
  return { skip, chromiumMissing, tmuxMissing };
}

/**
 * The suite's outer half: one test that re-runs `file` in a network namespace
 * at `addr` (where `names` resolve to it) and wants exactly `passes` passing
 * tests and no failure. Inside the namespace it skips itself.
 */
export function describeNamespaceRun(
  title: string,
  opts: {
    file: string;
    addr: string;
    names: string[];
    testTimeoutMs: number;
    passes: number;
    skip: string | undefined;
  },
): void {
  describe(title, { skip: opts.skip }, () => {
    test("runs in a network namespace of its own", {
      skip: NETNS_ADDR ? "already inside the namespace" : false,
      timeout: 480_000,
    }, () => {
      const r = runInNamespace(opts.file, opts.addr, {
        names: opts.names,
        testTimeoutMs: opts.testTimeoutMs,
        timeoutMs: 450_000,
      });
      assert.equal(r.status, 0, `the namespaced run failed:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`# pass ${opts.passes}\\b`), r.stdout);
      assert.match(r.stdout, /# fail 0/);
    });
  });
}
