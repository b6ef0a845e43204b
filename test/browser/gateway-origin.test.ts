/**
 * Hostile and friendly web pages against an `auth: none` loopback gateway,
 * in Debian's chromium (playwright-core, never a downloaded browser):
 * - a page served from another loopback port connects (as with OpenClaw);
 * - a DNS-rebinding page gets nothing. chromium resolves evil.example to
 *   127.0.0.1 (--host-resolver-rules), and the page's first load is served
 *   by the "attacker" (a route), exactly as before a rebind: its same-origin
 *   requests then reach the gateway with Host and Origin evil.example:PORT.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { chromiumSkip, launchChromium } from "../helpers/chromium.ts";
import type { Browser, Page } from "playwright-core";
import { startGateway, type GatewayProc } from "../helpers/proc.ts";

const skip = chromiumSkip("browser origin tests");

type Outcome =
  | { state: "ok"; scopes: string[] }
  | { state: "refused"; error: unknown }
  | { state: "failed"; code: number };

/** A page that speaks protocol v4 with no credential and records what happened in window.__result. */
function probePage(wsUrl: string): string {
  return `<!doctype html><meta charset="utf-8"><title>probe</title><script>
window.__result = undefined;
window.__health = undefined;
fetch("/healthz").then((r) => (window.__health = r.status), () => (window.__health = -1));
const ws = new WebSocket(${JSON.stringify(wsUrl)});
ws.onmessage = (e) => {
  const f = JSON.parse(e.data);
  if (f.type === "event" && f.event === "connect.challenge") {
    ws.send(JSON.stringify({ type: "req", id: "c1", method: "connect", params: { minProtocol: 4, maxProtocol: 4, client: { id: "test", version: "0.0.0", platform: "web", mode: "test" }, role: "operator", scopes: ["operator.admin"], auth: {} } }));
  } else if (f.type === "res" && f.id === "c1") {
    window.__result = f.ok ? { state: "ok", scopes: f.payload.auth.scopes } : { state: "refused", error: f.error };
  }
};
ws.onclose = (e) => { if (window.__result === undefined) window.__result = { state: "failed", code: e.code }; };
</script>`;
}

async function outcome(page: Page): Promise<{ ws: Outcome; health: number }> {
  await page.waitForFunction(
    () =>
      (window as unknown as { __result?: unknown; __health?: unknown }).__result !== undefined &&
      (window as unknown as { __health?: unknown }).__health !== undefined,
    undefined,
    { timeout: 15_000 },
  );
  return page.evaluate(() => ({
    ws: (window as unknown as { __result: Outcome }).__result,
    health: (window as unknown as { __health: number }).__health,
  }));
}

describe("gateway Origin and Host rules in chromium", { skip }, () => {
  let browser: Browser;
  let gw: GatewayProc;
  let pages: Server;
  let pagesPort: number;
  before(async () => {
    browser = await launchChromium([
      "--host-resolver-rules=MAP evil.example 127.0.0.1",
      // chromium's own local-network checks would stop the rebinding page before it reaches the gateway;
      // turn them off (as in browsers without them) so the test shows the gateway refusing by itself.
      "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks",
    ]);
    gw = await startGateway({ args: ["--auth", "none"] });
    // Another local web app on its own loopback port (say OpenClaw's Control UI served by a dev server).
    pages = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(probePage(`ws://127.0.0.1:${gw.port}/`));
    });
    await new Promise<void>((r) => pages.listen(0, "127.0.0.1", r));
    pagesPort = (pages.address() as { port: number }).port;
  });
  after(async () => {
    await browser?.close();
    await gw?.kill();
    pages?.close();
  });

  test("a page on another loopback port connects to the auth-none gateway", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${pagesPort}/`);
      const r = await outcome(page);
      assert.equal(r.ws.state, "ok", JSON.stringify(r.ws));
      assert.ok(r.ws.state === "ok" && r.ws.scopes.includes("operator.admin"));
    } finally {
      await page.close();
    }
  });

  test("a DNS-rebinding page (evil.example -> 127.0.0.1) gets no WebSocket and no HTTP answer", async () => {
    const page = await browser.newPage();
    try {
      const evil = `http://evil.example:${gw.port}`;
      // The attacker's server answers the first load; everything after goes to 127.0.0.1 (the rebind).
      await page.route(`${evil}/`, (route) =>
        route.fulfill({
          status: 200,
          contentType: "text/html; charset=utf-8",
          body: probePage(`ws://evil.example:${gw.port}/`),
        }),
      );
      await page.goto(`${evil}/`);
      const r = await outcome(page);
      assert.equal(r.ws.state, "failed", `the rebinding page must not get a session: ${JSON.stringify(r.ws)}`);
      assert.equal(r.health, 421, "same-origin HTTP to the gateway is refused by Host");
      await gw.waitForLine((l) => l.includes("Host not allowed") && l.includes("evil.example"), 5000, "stderr");
    } finally {
      await page.close();
    }
  });

  test("a page elsewhere (evil.example on another port) cannot open the gateway's WebSocket", async () => {
    const page = await browser.newPage();
    try {
      await page.route(`http://evil.example:${pagesPort}/`, (route) =>
        route.fulfill({
          status: 200,
          contentType: "text/html; charset=utf-8",
          body: probePage(`ws://127.0.0.1:${gw.port}/`),
        }),
      );
      await page.goto(`http://evil.example:${pagesPort}/`);
      const r = await outcome(page);
      assert.equal(r.ws.state, "failed", JSON.stringify(r.ws));
    } finally {
      await page.close();
    }
  });
});
