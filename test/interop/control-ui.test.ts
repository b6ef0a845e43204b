/**
 * OpenClaw's own Control UI (from the installed package, unmodified) in
 * chromium against loopgate's gateway, locally and through the Node relay.
 * The UI is served by a static server on another loopback port and pointed
 * at the gateway with ?gatewayUrl=…#token=…, as a user opens it against a
 * gateway that does not serve it. Connect, the sessions sidebar, send, a
 * streamed reply from the fake model, reload and history, abort; fails on
 * gateway-caused console errors, failed requests and failed gateway calls.
 * LOOPGATE_SCREENSHOTS=1 also writes docs/screenshots/openclaw-ui-*.png.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.ts";
import { openclawUnavailable } from "../helpers/openclaw.ts";
import {
  serveControlUi,
  openControlUi,
  gatewayCausedErrors,
  type StaticUi,
  type UiSession,
} from "../helpers/openclaw-ui.ts";
import { ROUTES, startRig, describeFailures, frameSchemaErrors, type InteropRig } from "../helpers/openclaw-rig.ts";
import { connectedClient } from "../helpers/ws-client.ts";
import { ROOT } from "../helpers/proc.ts";

const skip = openclawUnavailable() ?? (chromiumSkip("OpenClaw's Control UI suite") || undefined);
if (skip) console.warn(`\n*** SKIPPING the OpenClaw Control UI interop suite: ${skip} ***\n`);

const COMPOSER = 'textarea[aria-label="Chat composer"]';
/** A browser cannot set headers on a WebSocket: through the relay the relay token rides in the URL, on the upgrade. */
const gatewayUrlFor = (rig: InteropRig) => (rig.relay ? `${rig.url}?token=${rig.relay.clientToken}` : rig.url);
let screenshotsTaken = false;
const bubble = (role: "user" | "assistant", text: string) => `.chat-group.${role} [data-message-text="${text}"]`;

describe("OpenClaw Control UI in chromium against loopgate", { skip }, () => {
  let browser: Browser;
  let ui: StaticUi;
  before(async () => {
    browser = await launchChromium();
    ui = await serveControlUi();
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
  });

  for (const route of ROUTES) {
    describe(route, () => {
      let rig: InteropRig;
      let s: UiSession | undefined;
      let connected = false;
      const page = () => {
        assert.ok(s && connected, "the UI never connected (see the first failure)");
        return s.page;
      };
      before(async () => {
        // Through the relay the page's origin is a loopback port of the user's own machine, which means
        // nothing to the host: the gateway admits it because the user listed it, as anyone hosting the UI would.
        rig = await startRig(
          route,
          route === "relay" ? { gateway: { gateway: { controlUi: { allowedOrigins: [ui.origin] } } } } : {},
        );
      });
      after(async () => {
        await s?.close();
        await rig?.stop();
      });

      test("connects and renders the chat pane with its composer", async () => {
        s = await openControlUi(browser, ui, gatewayUrlFor(rig), rig.token);
        await s.page.waitForSelector(COMPOSER, { timeout: 30_000 }).catch((e: Error) => {
          const refused = s!.errors.some((x) => x.includes("Unexpected response code: 403"))
            ? "\n(the gateway refused the upgrade with 403: the page's Origin was not accepted)"
            : "";
          throw new Error(
            `${e.message}${refused}\n--- page errors:\n${s!.errors.slice(0, 10).join("\n")}\n--- gateway failures:\n${describeFailures(rig)}`,
          );
        });
        connected = true;
      });

      test("the sessions sidebar shows a session another client starts", async () => {
        const p = page();
        const c = await connectedClient(`ws://127.0.0.1:${rig.gw.port}`, { token: rig.token });
        try {
          const res = await c.request("chat.send", {
            sessionKey: "agent:main:side",
            message: "a side conversation",
            idempotencyKey: `side-${route}`,
          });
          assert.equal(res.ok, true, JSON.stringify(res.error));
          await c.waitFor((f) => f.event === "chat" && f.payload?.state === "final", 20_000);
        } finally {
          c.close();
        }
        await p.waitForFunction(
          () =>
            [...document.querySelectorAll(".sidebar-recent-sessions a, .sidebar-recent-sessions button")].some((el) =>
              /side/i.test(`${el.textContent ?? ""} ${el.getAttribute("href") ?? ""}`),
            ),
          undefined,
          { timeout: 15_000 },
        );
      });

      test("sends a message and shows the streamed reply", async () => {
        const p = page();
        await p.fill(COMPOSER, "hello from the openclaw ui");
        await p.press(COMPOSER, "Enter");
        await p.waitForSelector(bubble("user", "hello from the openclaw ui"), { timeout: 15_000 });
        await p.waitForSelector(bubble("assistant", "Hello, world"), { timeout: 20_000 });
        assert.ok(rig.tap.chatEvents("delta").length >= 1, "the reply arrived as chat deltas");
        assert.match(rig.model.requests.at(-1)?.messages.at(-1)?.content ?? "", /hello from the openclaw ui/);
      });

      test("after a reload the history is still there", async () => {
        const p = page();
        await p.reload();
        await p.waitForSelector(COMPOSER, { timeout: 30_000 });
        await p.waitForSelector(bubble("user", "hello from the openclaw ui"), { timeout: 15_000 });
        await p.waitForSelector(bubble("assistant", "Hello, world"), { timeout: 15_000 });
        if (process.env.LOOPGATE_SCREENSHOTS === "1" && !screenshotsTaken) {
          screenshotsTaken = true;
          const dir = join(ROOT, "docs", "screenshots");
          mkdirSync(dir, { recursive: true });
          await p.screenshot({ path: join(dir, "openclaw-ui-desktop.png") });
          const phone = await openControlUi(browser, ui, gatewayUrlFor(rig), rig.token, {
            viewport: { width: 390, height: 844 },
            colorScheme: "dark",
          });
          try {
            await phone.page.waitForSelector(bubble("assistant", "Hello, world"), { timeout: 30_000 });
            await phone.page.screenshot({ path: join(dir, "openclaw-ui-phone-dark.png") });
          } finally {
            await phone.close();
          }
        }
      });

      test("the stop button aborts a running turn", async () => {
        const p = page();
        await p.fill(COMPOSER, "stall");
        await p.press(COMPOSER, "Enter");
        await p.waitForFunction(
          () => document.querySelector("main")?.textContent?.includes("partial") ?? false,
          undefined,
          { timeout: 20_000 },
        );
        await p.click(".chat-send-btn--stop", { timeout: 10_000 });
        await p.waitForSelector(".chat-send-btn--stop", { state: "detached", timeout: 15_000 });
        const abort = rig.tap.frames.find(
          (f) => f.dir === "in" && (f.frame.method === "chat.abort" || f.frame.method === "sessions.abort"),
        );
        assert.ok(abort, "the UI called chat.abort or sessions.abort");
        const res = rig.tap.frames.find(
          (f) => f.dir === "out" && f.frame.type === "res" && f.frame.id === abort.frame.id && f.conn === abort.conn,
        );
        assert.equal(res?.frame.ok, true, JSON.stringify(res?.frame.error));
        assert.ok(rig.tap.chatEvents("aborted").length >= 1, "the run ended as aborted");
      });

      test("no gateway-caused console errors, failed requests or failed gateway calls", () => {
        assert.ok(s, "the UI was opened");
        assert.deepEqual(gatewayCausedErrors(s, ui), [], "console errors and failed requests");
        const unknown = rig.tap.failures().filter((f) => /unknown method/i.test(f.message));
        assert.deepEqual(
          unknown.map((f) => f.method),
          [],
          "unknown methods",
        );
        assert.equal(describeFailures(rig), "", "failed requests");
      });

      test("every frame the gateway sent the UI validates against the published schema", (t) => {
        assert.ok(rig.tap.frames.length > 0);
        t.diagnostic(`methods called: ${[...new Set(rig.tap.methods())].join(", ")}`);
        t.diagnostic(`events sent: ${[...new Set(rig.tap.events())].join(", ")}`);
        assert.deepEqual(frameSchemaErrors(rig), []);
      });
    });
  }
});
