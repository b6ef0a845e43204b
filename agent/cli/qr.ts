/**
 * QR codes of client links, for phones: `token create --qr` prints one in the
 * terminal. Half-block characters, two modules per character row, light
 * modules drawn as full blocks so it scans on the usual dark terminal, with
 * the quiet zone the spec asks for.
 */
import { renderUnicodeCompact } from "uqr";

export function terminalQr(text: string): string {
  // ECC level L keeps a long token link small enough to scan from a screen.
  return renderUnicodeCompact(text, { ecc: "L", border: 2 });
}
