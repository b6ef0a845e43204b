/** Decodes QR codes in tests: terminal half-block text back to pixels, then jsqr. */
import { createRequire } from "node:module";

// jsqr is CommonJS; its types describe an ES default export.
export const jsQR = createRequire(import.meta.url)("jsqr") as (
  data: Uint8ClampedArray,
  width: number,
  height: number,
) => { data: string } | null;

/** Turns half-block text back into pixels (light = full block, as printed for dark terminals). */
export function decodeTerminal(text: string): string | undefined {
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
