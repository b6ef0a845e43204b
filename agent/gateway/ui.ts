/**
 * The Control UI and WebChat on the gateway's own port: a few static files
 * (agent/ui/), read once at start, served with a strict Content-Security-
 * Policy (scripts, styles and connections to this origin only, no inline
 * code), no framing, no referrer and no caching of stale builds. The page
 * speaks protocol v4 over the same port's WebSocket.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Hono } from "hono";

const DIR = fileURLToPath(new URL("../ui/", import.meta.url));

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
  "/markdown.js": { file: "markdown.js", type: "text/javascript; charset=utf-8" },
  "/tokens.js": { file: "tokens.js", type: "text/javascript; charset=utf-8" },
};

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export const UI_HEADERS: Record<string, string> = {
  "content-security-policy": UI_CSP,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-cache",
};

export function mountControlUi(app: Hono): void {
  const bodies = new Map<string, { body: string; type: string }>();
  for (const [path, f] of Object.entries(FILES))
    bodies.set(path, { body: readFileSync(DIR + f.file, "utf8"), type: f.type });
  for (const [path, f] of bodies) {
    app.get(path, (c) => c.body(f.body, 200, { ...UI_HEADERS, "content-type": f.type }));
  }
}
