/** The terminal QR code decodes back to the link it was made from. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

// jsqr is CommonJS; its types describe an ES default export.
const jsQR = createRequire(import.meta.url)("jsqr") as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
import { terminalQr } from "../../agent/cli/qr.ts";

/** Turns half-block text back into pixels (light = full block, as printed for dark terminals). */
function decodeTerminal(text: string): string | undefined {
  const rows = text.split("\n").filter((r) => r !== "");
  const width = [...rows[0]!].length;
  const scale = 4;
  const moduleRows: boolean[][] = [];
  for (const r of rows) {
    const chars = [...r];
    moduleRows.push(chars.map((c) => c === "█" || c === "▀"));
    moduleRows.push(chars.map((c) => c === "█" || c === "▄"));
  }
  // Pad with a light quiet zone, then paint: light modules white, dark black.
  const pad = 4;
  const w = (width + 2 * pad) * scale;
  const h = (moduleRows.length + 2 * pad) * scale;
  const px = new Uint8ClampedArray(w * h * 4).fill(255);
  moduleRows.forEach((row, y) =>
    row.forEach((light, x) => {
      if (light) return;
      for (let dy = 0; dy < scale; dy++)
        for (let dx = 0; dx < scale; dx++) {
          const i = (((y + pad) * scale + dy) * w + (x + pad) * scale + dx) * 4;
          px[i] = px[i + 1] = px[i + 2] = 0;
        }
    }),
  );
  return jsQR(px, w, h)?.data;
}

test("the terminal QR code of a client link decodes to that link", () => {
  const link = "https://h-abcdefghijklmnop.relay.example.com/#token=eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz";
  const qr = terminalQr(link);
  assert.ok(qr.split("\n").length > 10);
  assert.equal(decodeTerminal(qr), link);
  assert.notEqual(decodeTerminal(terminalQr(`${link}x`)), link, "a different link gives a different code");
});
