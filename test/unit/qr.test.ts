/** The terminal QR code decodes back to the link it was made from. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { terminalQr } from "../../agent/cli/qr.ts";
import { decodeTerminal } from "../helpers/qr.ts";

test("the terminal QR code of a client link decodes to that link", () => {
  const link =
    "https://h-abcdefghijklmnop.relay.example.com/#token=eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz";
  const qr = terminalQr(link);
  assert.ok(qr.split("\n").length > 10);
  assert.equal(decodeTerminal(qr), link);
  assert.notEqual(decodeTerminal(terminalQr(`${link}x`)), link, "a different link gives a different code");
});
