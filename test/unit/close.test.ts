import { test } from "node:test";
import assert from "node:assert/strict";
import { clampCloseReason, MAX_CLOSE_REASON_BYTES, sendableClose, sendableCloseCode } from "../../shared/close.ts";
import { decodeFrame, encodeClose } from "../../shared/link/codec.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

test("close codes that may not be sent become sendable ones", () => {
  for (const ok of [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1012, 1013, 1014, 3000, 4000, 4999])
    assert.equal(sendableCloseCode(ok), ok, String(ok));
  assert.equal(sendableCloseCode(1005), 1000);
  for (const bad of [1004, 1006, 1015, 0, 999, 1016, 2999, 5000, -1, 65535, Number.NaN])
    assert.equal(sendableCloseCode(bad), 1011, String(bad));
});

test("a reason within 123 bytes is kept as is", () => {
  for (const r of ["", "bye", "é".repeat(61), "a".repeat(MAX_CLOSE_REASON_BYTES)]) assert.equal(clampCloseReason(r), r);
});

test("a long reason is cut to 123 UTF-8 bytes, never inside a character", () => {
  // 122 ASCII bytes, then a 2-byte, 3-byte and 4-byte character each straddling the edge.
  for (const ch of ["é", "€", "😀"]) {
    const r = "a".repeat(122) + ch + "tail";
    const out = clampCloseReason(r);
    assert.equal(out, "a".repeat(122), ch);
  }
  // A character ending exactly on the edge is kept.
  assert.equal(clampCloseReason("a".repeat(121) + "é" + "z"), "a".repeat(121) + "é");
  assert.equal(clampCloseReason("a".repeat(120) + "€" + "z"), "a".repeat(120) + "€");
  assert.equal(clampCloseReason("a".repeat(119) + "😀" + "z"), "a".repeat(119) + "😀");
  // All multi-byte: 41 three-byte characters are exactly 123 bytes.
  assert.equal(clampCloseReason("€".repeat(50)), "€".repeat(41));
  assert.equal(clampCloseReason("😀".repeat(40)), "😀".repeat(30));
  for (const r of ["x".repeat(500), "é".repeat(300), "😀€é".repeat(50)]) {
    const out = clampCloseReason(r);
    assert.ok(bytes(out) <= MAX_CLOSE_REASON_BYTES);
    assert.ok(bytes(out) > MAX_CLOSE_REASON_BYTES - 4, "cut no more than one character short");
    assert.ok(r.startsWith(out));
    assert.ok(!out.includes("\uFFFD"));
  }
});

test("sendableClose applies both; the link's CLOSE frame uses the same rules", () => {
  assert.deepEqual(sendableClose(1006, "é".repeat(70)), { code: 1011, reason: "é".repeat(61) });
  const frame = decodeFrame(encodeClose(1, 1005, "€".repeat(50)));
  assert.deepEqual(frame, { type: 4, streamId: 1, code: 1000, reason: "€".repeat(41) });
});
