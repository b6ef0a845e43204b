import { test } from "node:test";
import assert from "node:assert/strict";
import { setBounded } from "../../shared/bounded-map.ts";

test("setBounded: past the bound the oldest entry goes; replacing a key evicts nothing", () => {
  const m = new Map<string, number>();
  for (const [i, k] of ["a", "b", "c"].entries()) setBounded(m, k, i, 3);
  setBounded(m, "b", 9, 3);
  assert.deepEqual(
    [...m],
    [
      ["a", 0],
      ["b", 9],
      ["c", 2],
    ],
  );
  setBounded(m, "d", 3, 3);
  assert.deepEqual([...m.keys()], ["b", "c", "d"]);
});
