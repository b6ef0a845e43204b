import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizePin, parsePins, formatPin, pinMatches } from "../../shared/pin.ts";

const HEX = "ab".repeat(16) + "0123456789abcdef".repeat(2);

test("every accepted pin form normalises to 64 lowercase hex digits", () => {
  const colon = HEX.toUpperCase().match(/../g)!.join(":");
  for (const form of [
    HEX,
    HEX.toUpperCase(),
    colon,
    colon.toLowerCase(),
    `sha256:${HEX}`,
    `SHA256:${colon}`,
    `sha-256:${HEX}`,
    `  ${HEX}  `,
  ]) {
    assert.equal(normalizePin(form), HEX, form);
  }
});

test("malformed pins are refused without echoing huge input", () => {
  for (const bad of ["", "abc", HEX.slice(1), HEX + "0", "zz" + HEX.slice(2), "md5:" + HEX, "a:b" + HEX.slice(3)]) {
    assert.throws(() => normalizePin(bad), /PIN_INVALID|not a SHA-256 certificate pin/, bad);
  }
  assert.throws(
    () => normalizePin("x".repeat(5000)),
    (e: Error) => e.message.includes("5000 characters") && e.message.length < 200,
  );
});

test("lists: comma-separated or arrays, deduplicated; formatting and matching", () => {
  const other = "cd".repeat(32);
  assert.deepEqual(parsePins(`${HEX}, sha256:${other}`), [HEX, other]);
  assert.deepEqual(parsePins([HEX, HEX.toUpperCase()]), [HEX]);
  assert.deepEqual(parsePins(undefined), []);
  assert.equal(formatPin(HEX), "sha256:" + HEX.toUpperCase().match(/../g)!.join(":"));
  assert.ok(pinMatches(formatPin(HEX), [other, HEX]));
  assert.ok(!pinMatches(other, [HEX]));
});
