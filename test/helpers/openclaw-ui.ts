/**
 * OpenClaw's own Control UI (the prebuilt `dist/control-ui` of the openclaw
 * package) served by a tiny static server on its own loopback port, opened
 * in Debian's chromium with `?gatewayUrl=…#token=…`, as a user would open it
 * against a gateway that does not serve it. Collects console errors, page
 * errors and failed requests so a test can fail on the gateway-caused ones.
 */
import { createServer, type Server } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { ensureOpenclaw } from "./openclaw.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".wasm": "application/wasm",
};

export interface StaticUi {
  origin: string;
  port: number;
  /** Paths requested that did not exist (a missing asset is the package's fault, not the gateway's). */
  missing: string[];
  close(): Promise<void>;
}

/** Serves the package's Control UI; unknown paths without an extension get index.html (client-side routes like /chat/main). */
export async function serveControlUi(): Promise<StaticUi> {
  const root = join(dirname(ensureOpenclaw()), "dist", "control-ui");
  const missing: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      let file = normalize(join(root, path));
      if (!file.startsWith(root)) return void res.writeHead(403).end();
      const isFile = (f: string) =>
        stat(f).then(
          (s) => s.isFile(),
          () => false,
        );
      let ok = await isFile(file);
      // index.html loads "./assets/…": under a client-side route like /chat/main that asks for /chat/assets/….
      for (let parts = path.split("/").filter(Boolean); !ok && extname(path) !== "" && parts.length > 1; ) {
        parts = parts.slice(1);
        file = normalize(join(root, ...parts));
        ok = file.startsWith(root) && (await isFile(file));
      }
      if (!ok && extname(path) === "") {
        file = join(root, "index.html");
        ok = true;
      }
      if (!ok) {
        missing.push(path);
        return void res.writeHead(404).end();
      }
      const body = await readFile(file);
      res
        .writeHead(200, {
          "content-type": TYPES[extname(file)] ?? "application/octet-stream",
          "cache-control": "no-store",
        })
        .end(body);
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    missing,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Tokens in URLs (the relay token rides in the gateway URL) never reach a test's output. */
function mask(text: string): string {
  return text
    .replace(/([?&#]token=)[^&#\s'"]+/g, "$1[redacted]")
    .replace(/\beyJ[\w-]+\.[\w-]+\.[\w-]+/g, "[redacted-jwt]");
}

export interface UiSession {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught page errors, in order. */
  errors: string[];
  /** Requests that failed or answered >= 400, with their URL. */
  failedRequests: string[];
  close(): Promise<void>;
}

/**
 * Opens the UI at `path` with the gateway URL and token in the address, and
 * accepts its one-time "Switch to a different Gateway?" prompt if it shows.
 */
export async function openControlUi(
  browser: Browser,
  ui: StaticUi,
  gatewayUrl: string,
  token: string,
  opts: { path?: string; viewport?: { width: number; height: number }; colorScheme?: "light" | "dark" } = {},
): Promise<UiSession> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? "light",
    serviceWorkers: "block",
  });
  const page = await context.newPage();
  const errors: string[] = [];
  const failedRequests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(mask(m.text()));
  });
  page.on("pageerror", (e) => errors.push(mask(`pageerror: ${e.message}`)));
  page.on("requestfailed", (r) => failedRequests.push(mask(`${r.url()} ${r.failure()?.errorText ?? ""}`)));
  page.on("response", (r) => {
    if (r.status() >= 400) failedRequests.push(mask(`${r.url()} HTTP ${r.status()}`));
  });
  await page.goto(
    `${ui.origin}${opts.path ?? "/"}?gatewayUrl=${encodeURIComponent(gatewayUrl)}#token=${encodeURIComponent(token)}`,
  );
  await acceptGatewaySwitch(page);
  return { context, page, errors, failedRequests, close: () => context.close() };
}

/** Clicks through the "Switch to a different Gateway?" confirmation when the UI shows it. */
export async function acceptGatewaySwitch(page: Page, timeoutMs = 5000): Promise<boolean> {
  const dialog = page.getByText("Switch to a different Gateway?");
  try {
    await dialog.waitFor({ timeout: timeoutMs });
  } catch {
    return false;
  }
  await page
    .locator(".gateway-switch__actions")
    .getByRole("button", { name: /^Switch to / })
    .click();
  return true;
}

/**
 * The errors a test must fail on: those the gateway caused. Left out, each for
 * a stated reason: the static server's own noise (the UI first probes its own
 * origin for a gateway and asks it for control-ui-config.json, which only a
 * gateway serving the UI has), Chromium's URL-less "Failed to load resource"
 * lines (the same failures are in failedRequests with their URL), and the
 * owner-avatar fetch that a gateway on another origin refuses by CORS (OpenClaw's
 * own gateway refuses it the same way when its UI is served elsewhere).
 */
export function gatewayCausedErrors(s: UiSession, ui: StaticUi): string[] {
  const uiHost = new URL(ui.origin).host;
  const avatar = /\/api\/users\/[^/]+\/avatar/;
  const fromErrors = s.errors.filter(
    (e) => !e.includes(uiHost) && !e.startsWith("Failed to load resource") && !avatar.test(e),
  );
  const fromRequests = s.failedRequests.filter((r) => !r.includes(uiHost) && !avatar.test(r));
  return [...fromErrors, ...fromRequests];
}
