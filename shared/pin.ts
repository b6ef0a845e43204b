/**
 * TLS pins: the SHA-256 of the server's DER certificate, 64 hex digits.
 * Accepted: upper or lower case, with or without colons, with or without a
 * `sha256:` prefix. Stored and compared as 64 lowercase hex digits; shown as
 * `sha256:AB:CD:…` (the form `loopgate relay fingerprint` prints).
 */
import { LoopgateError, ErrorCodes } from "./errors.ts";

export function normalizePin(input: string): string {
  let s = input.trim();
  if (/^sha-?256[:/]/i.test(s)) s = s.replace(/^sha-?256[:/]/i, "");
  const hex = s.replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex) || (s.includes(":") && !/^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(s))) {
    const shape = input.length > 100 ? `${input.length} characters` : JSON.stringify(input);
    throw new LoopgateError(ErrorCodes.PIN_INVALID, `not a SHA-256 certificate pin: ${shape}`, {
      hint: "a pin is 64 hex digits (colons and a sha256: prefix are optional); `loopgate relay fingerprint` prints the relay's",
    });
  }
  return hex;
}

/** Parses one pin, a comma-separated list, or an array (several pins allow a certificate rotation). */
export function parsePins(input: string | readonly string[] | undefined): string[] {
  if (input === undefined) return [];
  const parts = typeof input === "string" ? input.split(/[,\s]+/) : [...input];
  const pins = parts
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .map(normalizePin);
  return [...new Set(pins)];
}

/** `sha256:AB:CD:…` */
export function formatPin(pin: string): string {
  const hex = normalizePin(pin).toUpperCase();
  return `sha256:${hex.match(/../g)!.join(":")}`;
}

export function pinMatches(certSha256: string, pins: readonly string[]): boolean {
  const actual = normalizePin(certSha256);
  // Pins are public values: a plain comparison leaks nothing secret.
  return pins.some((p) => normalizePin(p) === actual);
}
