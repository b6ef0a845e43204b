/**
 * A phone scanning `token create --exchange --qr`, in chromium: the exchange
 * URL opens the Control UI signed in at the host's own origin, the code gone
 * from the address bar, and the same URL opened again (another browser
 * profile, as whoever saw the QR code later) is refused. Our gateway with its
 * in-process link behind the Node relay and the Workers relay under workerd.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromiumSkip, launchChromium } from "../helpers/chromium.ts";
import type { Browser } from "playwright-core";
import { cli, type GatewayProc } from "../helpers/proc.ts";
import { startNamedRelay } from "../helpers/named-relay.ts";
import {
  makeHost,
  startLinkedGateway,
  RELAY_KINDS,
  skipUnlessRunnable,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import { hostLabel } from "../../shared/host-label.ts";

const skip = chromiumSkip("browser exchange-code tests");

for (const kind of RELAY_KINDS)
  describe(
    `an exchange URL in chromium through the ${kind} relay`,
    skip ? { skip } : skipUnlessRunnable(kind, "the exchange-code browser suite"),
    () => {
      let browser: Browser;
      let relay: RelayProc;
      let byName: { url: string; pin: string };
      let host: Host;
      let gw: GatewayProc;
      before(async () => {
        browser = await launchChromium([
          "--ignore-certificate-errors",
          "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1",
        ]);
        host = await makeHost();
        ({ relay, byName } = await startNamedRelay(kind, [host.hostId]));
        gw = await startLinkedGateway(host, byName);
      });
      after(async () => {
        await browser?.close();
        await gw?.kill();
        await relay?.kill();
      });

      test("opening the exchange URL lands signed in at the host's origin, the code gone; a second opening is refused", async () => {
        const updates = () => relay.logs().filter((l) => l.includes("exchange codes updated")).length;
        const before = updates();
        const r = await cli(
          ["token", "create", "--relay", byName.url, "--relay-fingerprint", byName.pin, "--exchange", "--json"],
          { env: host.env },
        );
        assert.equal(r.code, 0, r.stderr);
        const { exchangeUrl } = JSON.parse(r.stdout) as { exchangeUrl: string };
        const deadline = Date.now() + 10_000;
        while (updates() === before) {
          assert.ok(Date.now() < deadline, "the gateway's link pushed the code to the relay");
          await new Promise((res) => setTimeout(res, 50));
        }
        const origin = `https://${hostLabel(host.hostId)}.localhost:${relay.port}`;
        assert.ok(exchangeUrl.startsWith(`${origin}/?code=`), exchangeUrl);

        const phone = await browser.newContext({ ignoreHTTPSErrors: true });
        const page = await phone.newPage();
        await page.goto(exchangeUrl);
        assert.equal(page.url(), `${origin}/`, "the code left the address bar");
        await page.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
        const cookie = (await phone.cookies(origin)).find((c) => c.name === "__Host-loopgate");
        assert.ok(cookie?.httpOnly && cookie.secure && cookie.sameSite === "Strict", "signed in by the host's cookie");
        await phone.close();

        const later = await browser.newContext({ ignoreHTTPSErrors: true });
        const again = await later.newPage();
        const res = await again.goto(exchangeUrl);
        assert.equal(res!.status(), 401, "the code works once");
        assert.deepEqual(
          (await later.cookies(origin)).map((c) => c.name),
          [],
          "and signs nobody in",
        );
        await later.close();
      });
    },
  );
