/**
 * The Control UI as a chat client and as the admin's token panel, in
 * Debian's chromium (playwright-core): Markdown replies (and hostile ones
 * staying inert), tool calls as blocks, Stop aborting a streaming reply; an
 * admin minting a token whose QR code decodes to the shown link, that link
 * opening a read-only session without the panel, the methods refusing that
 * token, and revoking it. LOOPGATE_SCREENSHOTS=1 also writes README shots.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumSkip } from "../helpers/chromium.ts";
import { browserAndModelForSuite, chat, localGatewayForSuite, relayedGatewayForSuite } from "../helpers/ui-rig.ts";
import type { Browser, Page } from "playwright-core";
import { ROOT } from "../helpers/proc.ts";
import { connectedClient } from "../helpers/ws-client.ts";
import { jsQR } from "../helpers/qr.ts";

const skip = chromiumSkip("browser UI admin tests");

const TOKEN = "ui-admin-test-token-0123456789";
const SHOTS = process.env.LOOPGATE_SCREENSHOTS === "1" ? join(ROOT, "docs", "screenshots") : undefined;

async function openUi(
  browser: Browser,
  url: string,
  opts: { ignoreHTTPSErrors?: boolean } = {},
): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
  return { page, errors, close: () => context.close() };
}

/** Draws the QR <img> onto a canvas in the page and decodes its pixels with jsqr. */
async function decodeQr(page: Page): Promise<string | undefined> {
  const { w, h, bits } = await page.evaluate(async () => {
    const img = document.getElementById("token-qr") as HTMLImageElement;
    await img.decode();
    // Whole pixels per module (the SVG draws each module 4 units wide): a sharp image decodes quickly.
    const units = Number(/viewBox="0 0 (\d+)/.exec(decodeURIComponent(img.src))?.[1] ?? 400);
    const size = (units / 4) * 5;
    const c = document.createElement("canvas");
    c.width = c.height = size;
    const g = c.getContext("2d")!;
    g.imageSmoothingEnabled = false;
    g.fillStyle = "#fff";
    g.fillRect(0, 0, size, size);
    g.drawImage(img, 0, 0, size, size);
    // One character per pixel ("1" dark): a compact way out of the page.
    const d = g.getImageData(0, 0, size, size).data;
    let bits = "";
    for (let i = 0; i < d.length; i += 4) bits += d[i]! < 128 ? "1" : "0";
    return { w: size, h: size, bits };
  });
  const px = new Uint8ClampedArray(w * h * 4).fill(255);
  for (let i = 0; i < bits.length; i++) if (bits[i] === "1") px[i * 4] = px[i * 4 + 1] = px[i * 4 + 2] = 0;
  return jsQR(px, w, h)?.data;
}

describe("Control UI: chat and token admin in chromium", { skip }, () => {
  const suite = browserAndModelForSuite();

  describe("chat", () => {
    const local = localGatewayForSuite(suite, ["--token", TOKEN]);

    test("a reply renders as Markdown, and a hostile one stays inert text", async () => {
      const ui = await openUi(suite.browser, `http://127.0.0.1:${local.gw.port}/#token=${TOKEN}`);
      const { page } = ui;
      const reply = [
        "Here is **bold**, *italic* and `inline code`.",
        "",
        "```js",
        "const x = '<b>not bold</b>';",
        "```",
        "",
        "- first",
        "- second",
        "",
        "See [the docs](https://example.com/docs).",
        "",
        "<script>window.__pwned = 'script'</script>",
        "<img src=x onerror=\"window.__pwned = 'img'\">",
        "[click me](javascript:window.__pwned='link')",
        "[data](data:text/html,<script>alert(1)</script>)",
      ].join("\n");
      await chat(page, `say ${reply}`);
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll("#messages li.assistant")].some(
            (li) => li.textContent!.includes("click me") && !li.classList.contains("streaming"),
          ),
        null,
        { timeout: 15_000 },
      );
      const li = page.locator("#messages li.assistant").last();
      assert.equal(await li.locator(".md strong").first().textContent(), "bold");
      assert.equal(await li.locator(".md em").first().textContent(), "italic");
      assert.equal(await li.locator(".md p code").first().textContent(), "inline code");
      assert.equal(await li.locator(".md pre code").textContent(), "const x = '<b>not bold</b>';");
      assert.equal(await li.locator(".md pre code").getAttribute("class"), "language-js");
      assert.deepEqual(await li.locator(".md ul li").allTextContents(), ["first", "second"]);
      const links = await li.locator("a").evaluateAll((as) =>
        as.map((a) => ({
          href: a.getAttribute("href"),
          rel: a.getAttribute("rel"),
          target: a.getAttribute("target"),
          text: a.textContent,
        })),
      );
      assert.deepEqual(links, [
        { href: "https://example.com/docs", rel: "noopener noreferrer nofollow", target: "_blank", text: "the docs" },
      ]);
      // The hostile parts are visible as text and nothing of them is live.
      const text = (await li.textContent())!;
      assert.ok(
        text.includes("<script>window.__pwned = 'script'</script>") &&
          text.includes("<img src=x") &&
          text.includes("[click me](javascript:"),
      );
      assert.equal(
        await page.locator("#messages script, #messages img, #messages iframe, #messages [onerror]").count(),
        0,
      );
      await li.getByText("[click me](javascript:", { exact: false }).click();
      assert.equal(
        await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned),
        undefined,
        "no hostile code ran",
      );
      // After a reload the same reply comes from history, rendered the same way.
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await page.waitForSelector("#messages li.assistant .md pre code");
      assert.equal(await page.locator("#messages script, #messages img").count(), 0);
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned), undefined);
      // This gateway has no relay: the admin's token panel says how to set one up and mints nothing.
      assert.ok(await page.isVisible("#tokens-card"));
      assert.match((await page.textContent("#tokens-relay"))!, /No relay is configured.*gateway\.relay\.url/);
      assert.ok(await page.isDisabled("#token-mint"));
      assert.deepEqual(ui.errors, [], "no console errors (CSP violations included)");
      await ui.close();
    });

    test("a tool call shows as a collapsible block with name, arguments and result, live and after a reload", async () => {
      const ui = await openUi(suite.browser, `http://127.0.0.1:${local.gw.port}/#token=${TOKEN}`);
      const { page } = ui;
      await page.click("#sessions-card #new-key");
      await page.fill("#new-key", "tools");
      await page.press("#new-key", "Enter");
      await page.waitForFunction(() => document.getElementById("chat-session")!.textContent === "tools");
      await chat(page, 'use tool read_file {"path":"notes.txt"}');
      const block = page.locator("#messages li.tool").last();
      await block.locator(".tool-state", { hasText: "failed" }).waitFor({ timeout: 15_000 });
      await page.waitForFunction(() =>
        [...document.querySelectorAll("#messages li.assistant")].some((li) => li.textContent!.startsWith("tool said:")),
      );
      const check = async () => {
        assert.equal(await block.locator(".tool-name").textContent(), "read_file");
        assert.equal(await block.locator("details").getAttribute("open"), null, "collapsed at first");
        await block.locator("summary").click();
        assert.equal(JSON.parse((await block.locator(".tool-args").textContent())!).path, "notes.txt");
        assert.ok(await block.locator(".tool-result").isVisible());
        assert.match((await block.locator(".tool-result").textContent())!, /notes\.txt/);
      };
      await check();
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await block.waitFor();
      assert.equal(await block.getAttribute("data-state"), "failed");
      await check();
      assert.deepEqual(ui.errors, []);
      await ui.close();
    });

    test("Stop aborts a streaming reply and the UI shows it stopped", async () => {
      const ui = await openUi(suite.browser, `http://127.0.0.1:${local.gw.port}/#token=${TOKEN}`);
      const { page } = ui;
      await page.fill("#new-key", "stop");
      await page.press("#new-key", "Enter");
      await page.waitForFunction(() => document.getElementById("chat-session")!.textContent === "stop");
      await chat(page, "stall");
      await page.waitForSelector("#messages li.assistant.streaming", { timeout: 15_000 });
      assert.equal(await page.textContent("#messages li.assistant.streaming"), "partial");
      // The Stop button and the disabled Send follow the streaming reply's first render.
      await page.waitForSelector("#abort", { state: "visible", timeout: 5_000 });
      await page.waitForSelector("#send:disabled", { timeout: 5_000 });
      await page.click("#abort");
      await page.waitForSelector("#messages li.system", { timeout: 10_000 });
      assert.equal(await page.textContent("#messages li.system"), "stopped");
      assert.equal(await page.locator("#messages li.streaming").count(), 0);
      assert.ok(
        await page.locator("#messages li.assistant.incomplete").isVisible(),
        "the cut-off reply is marked incomplete",
      );
      assert.ok(await page.isHidden("#abort"));
      assert.ok(await page.isEnabled("#send"));
      // The gateway agrees: the turn is over and history says so.
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await page.waitForSelector("#messages li.system");
      assert.deepEqual(
        await page.locator("#messages li").evaluateAll((ls) => ls.map((l) => `${l.className}:${l.textContent}`)),
        ["user:stall", "assistant incomplete:partial", "system:stopped"],
      );
      assert.ok(await page.isEnabled("#send"));
      if (SHOTS) {
        // One picture of it all: Markdown, a tool call (opened), a stopped turn.
        await page.fill("#new-key", "demo");
        await page.press("#new-key", "Enter");
        await page.waitForFunction(() => document.getElementById("chat-session")!.textContent === "demo");
        writeFileSync(
          join(local.gw.stateDir, "workspace", "todo.md"),
          "- mint a token for the phone\n- try the relay\n",
        );
        await chat(page, 'use tool read_file {"path":"todo.md"}');
        await page.waitForFunction(() =>
          [...document.querySelectorAll("#messages li.assistant")].some((li) =>
            li.textContent!.startsWith("tool said:"),
          ),
        );
        await chat(
          page,
          "say Two things on your list. For the **phone**, mint a token:\n\n```sh\nnpx loopgate token create --name phone --ttl 30d\n```\n\n- scan its QR code in *Client tokens*\n- or paste the printed config\n\nMore in [the README](https://example.com/loopgate#readme).",
        );
        await page.waitForFunction(() =>
          [...document.querySelectorAll("#messages li.assistant")].some((li) => li.textContent!.includes("More in")),
        );
        await page.locator("#messages li.tool summary").last().click();
        mkdirSync(SHOTS, { recursive: true });
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(SHOTS, "ui-chat.png") });
      }
      assert.deepEqual(ui.errors, []);
      await ui.close();
    });
  });

  describe("token admin, through the Node relay", () => {
    const relayed = relayedGatewayForSuite(suite, ["--token", TOKEN]);

    test("an admin mints a read-only token shown once with a QR code of its link; that link opens a session without the panel; the methods refuse it; revoke ends it", async () => {
      const admin = await openUi(suite.browser, `http://127.0.0.1:${relayed.gw.port}/#token=${TOKEN}`);
      const { page } = admin;
      await page.waitForSelector("#tokens-card:not([hidden])");
      await page.waitForFunction(() => document.getElementById("tokens-relay")!.dataset.state === "ok");
      assert.ok((await page.textContent("#tokens-relay"))!.includes(relayed.relay.url));
      await page.fill("#token-name", "phone");
      await page.selectOption("#token-access", "read");
      await page.selectOption("#token-ttl", "7d");
      await page.click("#token-mint");
      await page.waitForSelector("#token-once:not([hidden])");
      const link = await page.inputValue("#token-link");
      const m = new RegExp(
        `^https://127\\.0\\.0\\.1:${relayed.relay.port}/h/${relayed.host.hostId}/\\?token=([A-Za-z0-9_.-]+)$`,
      ).exec(link);
      assert.ok(m, `the link opens the UI through the relay (${link.replace(/token=.*/, "token=…")})`);
      const token = m[1]!;
      // The QR holds a single-use exchange code (60 s) the in-process link pushed to the relay, not the token.
      const scanned = await decodeQr(page);
      assert.match(
        scanned ?? "",
        new RegExp(
          `^https://127\\.0\\.0\\.1:${relayed.relay.port}/h/${relayed.host.hostId}/\\?code=[A-Za-z0-9_-]{20,}$`,
        ),
        "the QR code decodes to a single-use sign-in link",
      );
      assert.ok(!scanned!.includes(token), "the QR code does not carry the token");
      assert.ok(await page.isVisible("#token-qr-once"), "the page says the QR works once within 60 s");
      const config = JSON.parse((await page.textContent("#token-config"))!) as {
        gateway: { remote: { url: string; token: string } };
      };
      assert.deepEqual(
        [config.gateway.remote.url, config.gateway.remote.token],
        [`wss://127.0.0.1:${relayed.relay.port}/h/${relayed.host.hostId}`, token],
      );
      const row = page.locator("#tokens tr[data-state]", { hasText: "phone" });
      assert.deepEqual(
        (await row.locator("td").allTextContents()).filter((_, i) => i !== 1 && i !== 3),
        ["phone", "read", "active", "Revoke"],
      );
      if (SHOTS)
        await page.locator("#tokens-card").screenshot({
          path: join(SHOTS, "ui-tokens.png"),
          mask: [page.locator("#token-link")],
          maskColor: "#98a2b3",
        });
      // Shown once: after "Done" (or a reload) the token is nowhere on the page.
      await page.click("#token-done");
      assert.ok(await page.isHidden("#token-once"));
      assert.equal(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), token), false);
      await page.reload();
      await page.waitForSelector('#conn[data-state="connected"]');
      await row.waitFor();
      assert.equal(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), token), false);

      // The QR on a "phone": a read-only session through the relay, with no token panel and no composer.
      // The code is spent by the first scan: a second browser opening it is refused.
      const phone = await openUi(suite.browser, scanned!, { ignoreHTTPSErrors: true });
      const again = await suite.browser.newContext({ ignoreHTTPSErrors: true });
      const replay = await (await again.newPage()).goto(scanned!);
      assert.equal(replay?.status(), 401, "an exchange code signs in once");
      await again.close();
      assert.equal(await phone.page.textContent("#conn"), "connected via relay");
      await phone.page.waitForFunction(() => document.getElementById("s-version")!.textContent !== "–");
      assert.ok(await phone.page.isHidden("#tokens-card"), "no token panel without operator.admin");
      assert.ok(await phone.page.isDisabled("#input"));
      assert.deepEqual(phone.errors, []);

      // The methods refuse the read-only token (here straight to the gateway, as over ssh -L).
      // It asks for everything, as the Control UI does, and is granted what the token carries.
      const ro = await connectedClient(
        `ws://127.0.0.1:${relayed.gw.port}/`,
        { token },
        { scopes: ["operator.admin", "operator.read", "operator.write"] },
      );
      const hello = ro.frames.find((f) => f.type === "res" && f.ok) as { payload: { auth: { scopes: string[] } } };
      assert.deepEqual(hello.payload.auth.scopes, ["operator.read"]);
      for (const [method, params] of [
        ["loopgate.tokens.list", {}],
        ["loopgate.tokens.create", { access: "read-write" }],
        ["loopgate.tokens.revoke", { id: "abcdef" }],
      ] as const) {
        const res = await ro.request(method, params);
        assert.equal(res.ok, false, `${method} refuses a read-only token`);
        assert.match(JSON.stringify(res.error), /operator\.admin/);
      }

      // Revoke (two clicks): the row says revoked, and the token's connection is closed.
      await row.locator("button.revoke").click();
      assert.equal(await row.locator("button.revoke").textContent(), "Confirm revoke");
      await row.locator("button.revoke").click();
      await page.waitForSelector("#tokens tr[data-state='revoked']");
      assert.equal(await page.locator("#tokens tr[data-state='revoked'] td.state").textContent(), "revoked");
      assert.equal(await page.locator("#tokens tr[data-state='revoked'] button").count(), 0);
      assert.equal((await ro.closed).code, 4401);
      await phone.page.waitForFunction(() => document.getElementById("conn")!.dataset.state !== "connected", null, {
        timeout: 15_000,
      });
      assert.deepEqual(admin.errors, []);
      for (const l of [...relayed.relay.logs(), ...relayed.gw.stderr, ...relayed.gw.stdout])
        assert.ok(!l.includes(token), "the token never appears in logs");
      await phone.close();
      await admin.close();
    });
  });
});
