/**
 * The Control UI in a real browser: Debian's chromium driven by
 * playwright-core (never a downloaded browser), locally and through the Node
 * relay. Skips loudly when chromium is not installed (.ci/run installs it).
 * LOOPGATE_SCREENSHOTS=1 also writes the README screenshots.
 */
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromiumSkip } from "../helpers/chromium.ts";
import { browserAndModelForSuite, chat, localGatewayForSuite, relayedGatewayForSuite } from "../helpers/ui-rig.ts";
import type { Page } from "playwright-core";
import { ROOT } from "../helpers/proc.ts";
import { mintToken } from "../helpers/relay.ts";

const skip = chromiumSkip("browser tests");

const TOKEN = "browser-test-token-0123456789";

async function lastAssistant(page: Page, want: string): Promise<void> {
  await page.waitForFunction(
    (w) =>
      [...document.querySelectorAll("#messages li.assistant")].some(
        (li) => li.textContent === w && !li.classList.contains("streaming"),
      ),
    want,
    { timeout: 15_000 },
  );
}

describe("Control UI in chromium", { skip }, () => {
  const suite = browserAndModelForSuite();

  describe("locally", () => {
    const local = localGatewayForSuite(suite, ["--token", TOKEN]);

    test("loads with a strict policy, signs in from the fragment and drops it, shows status", async () => {
      const page = await suite.browser.newPage();
      const res = await page.goto(`http://127.0.0.1:${local.gw.port}/#token=${TOKEN}`);
      const h = res!.headers();
      assert.match(
        h["content-security-policy"] ?? "",
        /default-src 'none'.*script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/,
      );
      assert.equal(h["x-frame-options"], "DENY");
      await page.waitForSelector('#conn[data-state="connected"]');
      assert.ok(!page.url().includes(TOKEN), "the token left the address bar");
      await page.waitForFunction(() => document.getElementById("s-version")!.textContent !== "–");
      assert.equal(await page.textContent("#s-model"), "127.0.0.1:" + new URL(suite.model.baseUrl).port + "/fake-1");
      await page.close();
    });

    test("chat streams the reply, and history survives a reload", async () => {
      const context = await suite.browser.newContext();
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(`http://127.0.0.1:${local.gw.port}/#token=${TOKEN}`);
      await page.waitForSelector('#conn[data-state="connected"]');
      await chat(page, "hello from the browser");
      await lastAssistant(page, "Hello, world");
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await page.waitForFunction(() =>
        [...document.querySelectorAll("#messages li.user")].some((li) => li.textContent === "hello from the browser"),
      );
      await lastAssistant(page, "Hello, world");
      assert.deepEqual(errors, [], "no console errors (CSP violations included)");
      if (process.env.LOOPGATE_SCREENSHOTS === "1") {
        const dir = join(ROOT, "docs", "screenshots");
        mkdirSync(dir, { recursive: true });
        await page.setViewportSize({ width: 1280, height: 800 });
        await page.screenshot({ path: join(dir, "ui-desktop.png") });
        await page.emulateMedia({ colorScheme: "dark" });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.screenshot({ path: join(dir, "ui-phone-dark.png") });
      }
      await context.close();
    });

    test("a page on another loopback port may open the WebSocket (as with OpenClaw) but gets no session without the token", async () => {
      // Pages from other sites are refused by Origin and Host: test/browser/gateway-origin.test.ts.
      const other: Server = createServer((_q, r) =>
        r.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>elsewhere</title>"),
      );
      await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
      const port = (other.address() as { port: number }).port;
      const page = await suite.browser.newPage();
      try {
        await page.goto(`http://127.0.0.1:${port}/`);
        const outcome = await page.evaluate(
          (url) =>
            new Promise<string>((resolve) => {
              const ws = new WebSocket(url);
              ws.onmessage = (e) => {
                const f = JSON.parse(String(e.data)) as {
                  type: string;
                  event?: string;
                  id?: string;
                  ok?: boolean;
                  error?: { details?: { code?: string } };
                };
                if (f.event === "connect.challenge") {
                  ws.send(
                    JSON.stringify({
                      type: "req",
                      id: "c",
                      method: "connect",
                      params: {
                        minProtocol: 4,
                        maxProtocol: 4,
                        client: { id: "test", version: "0", platform: "web", mode: "test" },
                        role: "operator",
                        scopes: ["operator.admin"],
                        auth: {},
                      },
                    }),
                  );
                } else if (f.id === "c") resolve(f.ok ? "session" : `refused ${f.error?.details?.code ?? ""}`);
              };
              ws.onerror = () => resolve("upgrade refused");
              setTimeout(() => resolve("timeout"), 5000);
            }),
          `ws://127.0.0.1:${local.gw.port}/`,
        );
        assert.equal(outcome, "refused AUTH_TOKEN_MISSING");
      } finally {
        await page.close();
        other.close();
      }
    });
  });

  describe("through the Node relay", () => {
    const relayed = relayedGatewayForSuite(suite);
    let clientToken: string;
    before(async () => {
      clientToken = (await mintToken(relayed.host, relayed.relay, ["--name", "phone"])).token;
    });

    test("the relay URL with the token opens the UI, the token leaves the URL, chat works and survives a reload", async () => {
      // The self-signed relay certificate is accepted for this test profile only.
      const context = await suite.browser.newContext({
        ignoreHTTPSErrors: true,
        viewport: { width: 390, height: 844 },
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(`https://127.0.0.1:${relayed.relay.port}/h/${relayed.host.hostId}/?token=${clientToken}`);
      assert.equal(
        page.url(),
        `https://127.0.0.1:${relayed.relay.port}/h/${relayed.host.hostId}/`,
        "the token is gone from the address bar",
      );
      await page.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
      assert.equal(await page.textContent("#conn"), "connected via relay");
      await chat(page, "hi via the relay");
      await lastAssistant(page, "Hello, world");
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await page.waitForFunction(() =>
        [...document.querySelectorAll("#messages li.user")].some((li) => li.textContent === "hi via the relay"),
      );
      assert.deepEqual(errors, []);
      for (const l of relayed.relay.logs())
        assert.ok(!l.includes(clientToken), "the token never appears in relay logs");
      const cookies = await context.cookies();
      const c = cookies.find((x) => x.name.startsWith("lg_"));
      assert.ok(c?.httpOnly && c.secure && c.sameSite === "Strict" && c.path === `/h/${relayed.host.hostId}`);
      await context.close();
    });
  });
});
