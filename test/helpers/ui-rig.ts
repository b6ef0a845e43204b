/**
 * What the Control UI browser suites set up around their tests: chromium and
 * a fake model for the whole suite, and a gateway whose agent talks to that
 * model, either local or linked to a Node relay. Each piece starts in the
 * before() and stops in the after() of the describe block it is called in;
 * its fields are there once before() ran.
 */
import { before, after } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "./chromium.ts";
import { startFakeModel, type FakeModel } from "./fake-model.ts";
import { startGateway, type GatewayProc } from "./proc.ts";
import { makeHost, startLinkedGateway, startRelay, type Host, type RelayProc } from "./relay.ts";

/** Chromium and a fake model for the suite. */
export function browserAndModelForSuite(): { browser: Browser; model: FakeModel } {
  const ui = {} as { browser: Browser; model: FakeModel };
  before(async () => {
    ui.browser = await launchChromium();
    ui.model = await startFakeModel();
  });
  after(async () => {
    await ui.browser?.close();
    await ui.model?.close();
  });
  return ui;
}

/** The gateway config that points its agent at the fake model. */
function agentConfig(model: FakeModel): { agent: { provider: { baseUrl: string; model: string } } } {
  return { agent: { provider: { baseUrl: model.baseUrl, model: "fake-1" } } };
}

/** A local gateway (`args`, e.g. `--token`) whose agent uses `ui.model`. */
export function localGatewayForSuite(ui: { model: FakeModel }, args: string[]): { gw: GatewayProc } {
  const local = {} as { gw: GatewayProc };
  before(async () => {
    local.gw = await startGateway({ args, config: agentConfig(ui.model) });
  });
  after(async () => {
    await local.gw?.kill();
  });
  return local;
}

/** A host whose gateway (`args`), agent on `ui.model`, is linked to a Node relay of its own. */
export function relayedGatewayForSuite(
  ui: { model: FakeModel },
  args: string[] = [],
): { host: Host; relay: RelayProc; gw: GatewayProc } {
  const rig = {} as { host: Host; relay: RelayProc; gw: GatewayProc };
  before(async () => {
    rig.host = await makeHost();
    rig.relay = await startRelay("node", { allowHosts: [rig.host.hostId] });
    rig.gw = await startLinkedGateway(rig.host, rig.relay, args, agentConfig(ui.model));
  });
  after(async () => {
    await rig.gw?.kill();
    await rig.relay?.kill();
  });
  return rig;
}

/** Types a message into the UI's composer and sends it. */
export async function chat(page: Page, text: string): Promise<void> {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}
