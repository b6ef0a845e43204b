/**
 * A hostile host on a shared relay, in a real browser (issue 17 item 1).
 * Two hosts link to one relay (Node, and Workers under workerd): the victim (our gateway, with its
 * Control UI) and a hostile one (`loopgate link` in front of a server that
 * serves whatever it likes, service worker included). Each is opened at its
 * own origin `https://<label>.localhost:PORT/`; chromium maps every name to
 * 127.0.0.1. The hostile page tries what worked when hosts shared one origin.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromiumSkip, launchChromium } from "../helpers/chromium.ts";
import type { Browser, BrowserContext } from "playwright-core";
import type { GatewayProc, Proc } from "../helpers/proc.ts";
import { startNamedRelay } from "../helpers/named-relay.ts";
import {
  makeHost,
  startLinkedGateway,
  startLinkProc,
  mintToken,
  RELAY_KINDS,
  skipUnlessRunnable,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import { startHttpUpstream, type HttpUpstream } from "../helpers/http-upstream.ts";
import { hostLabel } from "../../shared/host-label.ts";
import { redactUrl } from "../../shared/redact-url.ts";

const skip = chromiumSkip("browser host-origin tests");

const EVIL_PAGE = "<!doctype html><title>hostile host</title><p>nothing to see</p>";
// Would answer every request of every page it controls.
const EVIL_SW =
  "self.addEventListener('install', () => self.skipWaiting()); self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim())); self.addEventListener('fetch', (e) => e.respondWith(new Response('captured ' + e.request.url)));";

for (const kind of RELAY_KINDS)
  describe(
    `a hostile host on a shared ${kind} relay, in chromium`,
    skip ? { skip } : skipUnlessRunnable(kind, "the hostile-host browser suite"),
    () => {
      let browser: Browser;
      let ctx: BrowserContext;
      let relay: RelayProc;
      let victim: Host;
      let evil: Host;
      let gw: GatewayProc;
      let evilLink: Proc;
      let evilUp: HttpUpstream;
      let victimToken: string;
      let evilToken: string;
      let victimOrigin: string;
      let evilOrigin: string;
      before(async () => {
        // Certificate errors are ignored for this profile only (a self-signed relay); service workers need the flag too.
        browser = await launchChromium([
          "--ignore-certificate-errors",
          "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1",
        ]);
        ctx = await browser.newContext({ ignoreHTTPSErrors: true });
        victim = await makeHost();
        evil = await makeHost();
        let byName: { url: string; pin: string };
        ({ relay, byName } = await startNamedRelay(kind, [victim.hostId, evil.hostId]));
        gw = await startLinkedGateway(victim, byName);
        evilUp = await startHttpUpstream({
          pages: {
            "/": { type: "text/html", body: EVIL_PAGE },
            "/sw.js": { type: "text/javascript", body: EVIL_SW, headers: { "service-worker-allowed": "/" } },
          },
        });
        evilLink = await startLinkProc(evil, byName, evilUp.port);
        victimToken = (await mintToken(victim, byName, ["--name", "victim-browser"])).token;
        evilToken = (await mintToken(evil, byName, ["--name", "evil"])).token;
        victimOrigin = `https://${hostLabel(victim.hostId)}.localhost:${relay.port}`;
        evilOrigin = `https://${hostLabel(evil.hostId)}.localhost:${relay.port}`;
      });
      after(async () => {
        await browser?.close();
        await evilLink?.kill();
        await gw?.kill();
        await relay?.kill();
        await evilUp?.close();
      });

      test("the victim's UI works at its own origin with its cookie", async () => {
        const page = await ctx.newPage();
        await page.goto(`${victimOrigin}/?token=${victimToken}`);
        assert.equal(page.url(), `${victimOrigin}/`, "the token left the address bar");
        await page.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
        const cookies = await ctx.cookies(victimOrigin);
        const c = cookies.find((x) => x.name === "__Host-loopgate");
        assert.ok(
          c?.httpOnly &&
            c.secure &&
            c.sameSite === "Strict" &&
            c.path === "/" &&
            c.domain === new URL(victimOrigin).hostname,
          JSON.stringify(cookies.map((x) => ({ ...x, value: "…" }))),
        );
        await page.close();
      });

      test("the hostile host's page cannot open the victim's WebSocket, fetch with its cookie, or reach it through /h/", async () => {
        const page = await ctx.newPage();
        await page.goto(`${evilOrigin}/?token=${evilToken}`);
        await page.waitForSelector("text=nothing to see");
        const outcome = await page.evaluate(
          async ({ victimWs, victimHttp, pathWs }) => {
            const tryWs = (url: string) =>
              new Promise<string>((resolve) => {
                const ws = new WebSocket(url);
                ws.onopen = () => (ws.close(), resolve("open"));
                ws.onerror = () => resolve("refused");
                setTimeout(() => resolve("timeout"), 8000);
              });
            const tryFetch = async (url: string, init: RequestInit) => {
              try {
                const r = await fetch(url, init);
                return `status ${r.status}`;
              } catch {
                return "blocked";
              }
            };
            return {
              ws: await tryWs(victimWs),
              pathWs: await tryWs(pathWs),
              fetchCors: await tryFetch(victimHttp, { credentials: "include" }),
              fetchNoCors: await tryFetch(victimHttp, {
                credentials: "include",
                mode: "no-cors",
                method: "POST",
                body: "x",
              }),
            };
          },
          {
            victimWs: `${victimOrigin.replace("https:", "wss:")}/`,
            victimHttp: `${victimOrigin}/api/status`,
            pathWs: `wss://localhost:${relay.port}/h/${victim.hostId}`,
          },
        );
        assert.deepEqual(
          { ws: outcome.ws, pathWs: outcome.pathWs, fetchCors: outcome.fetchCors },
          { ws: "refused", pathWs: "refused", fetchCors: "blocked" },
        );
        // The no-cors POST is opaque to the page; the victim's credential never reached the hostile host either way.
        assert.ok(
          !JSON.stringify(evilUp.seen).includes(victimToken),
          "the victim's token never reached the hostile host",
        );
        assert.ok(!relay.logs().join("\n").includes(victimToken), "no token in relay logs");
        // Path-form browser content from a shared relay is refused outright. Only the answer's status matters
        // (not its page's load); should it never come, the relay's last log lines say whether it got the request.
        const res = await page
          .goto(`https://localhost:${relay.port}/h/${evil.hostId}/?token=${evilToken}`, { waitUntil: "commit" })
          .catch((e: Error) => {
            // Word by word: a query's value ends at the first space, not at the end of the log.
            const tail = relay
              .logs()
              .slice(-20)
              .join("\n")
              .replace(/\S+/g, (w) => redactUrl(w));
            throw new Error(`${e.message.split("\n")[0]}\nthe relay's last log lines:\n${tail}`);
          });
        assert.equal(res!.status(), 403);
        await page.close();
      });

      test("the hostile host's service worker is confined to its own origin and never controls the victim's pages", async () => {
        const page = await ctx.newPage();
        await page.goto(`${evilOrigin}/`);
        const reg = await page.evaluate(
          async ({ victimOrigin, relayOrigin }) => {
            const attempt = (script: string, scope: string) =>
              navigator.serviceWorker.register(script, { scope }).then(
                (r) => r.scope,
                (e: Error) => `error ${e.name}`,
              );
            return {
              own: await attempt("/sw.js", "/"),
              victim: await attempt(`${victimOrigin}/sw.js`, `${victimOrigin}/`),
              relay: await attempt(`${relayOrigin}/h/EVIL/sw.js`, `${relayOrigin}/`),
            };
          },
          { victimOrigin, relayOrigin: `https://localhost:${relay.port}` },
        );
        assert.equal(reg.own, `${evilOrigin}/`, "at most its own origin");
        assert.match(reg.victim, /^error/);
        assert.match(reg.relay, /^error/);
        const victimPage = await ctx.newPage();
        await victimPage.goto(`${victimOrigin}/`);
        await victimPage.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
        const controlled = await victimPage.evaluate(async () => ({
          controller: navigator.serviceWorker.controller?.scriptURL ?? null,
          regs: (await navigator.serviceWorker.getRegistrations()).map((r) => r.scope),
        }));
        assert.deepEqual(controlled, { controller: null, regs: [] });
        // The next ?token= the victim opens is not captured either.
        await victimPage.goto(`${victimOrigin}/?token=${victimToken}`);
        assert.ok(!(await victimPage.content()).includes("captured"));
        await victimPage.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
        await victimPage.close();
        await page.close();
      });
    },
  );
