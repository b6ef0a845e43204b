/** Canonical session keys (agent:main:<key>) and the migration of files stored under short keys. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  canonicalSessionKey,
  isCanonicalSessionKey,
  shortSessionKey,
  MAIN_SESSION_KEY,
} from "../../agent/sessions/keys.ts";
import { SessionStore, checkSessionKey } from "../../agent/sessions/store.ts";
import { tempDir } from "../helpers/proc.ts";

test("short keys are aliases of agent:main:<key>; canonical keys stay as they are", () => {
  assert.equal(canonicalSessionKey("main"), MAIN_SESSION_KEY);
  assert.equal(canonicalSessionKey("foo"), "agent:main:foo");
  assert.equal(canonicalSessionKey("agent:main:main"), "agent:main:main");
  assert.equal(canonicalSessionKey("agent:main:foo:bar"), "agent:main:foo:bar");
  assert.equal(canonicalSessionKey("agent:MAIN:x"), "agent:main:x");
  assert.equal(canonicalSessionKey("agent:main"), MAIN_SESSION_KEY);
  assert.equal(canonicalSessionKey("foo", "main"), "agent:main:foo");
  assert.equal(isCanonicalSessionKey("agent:main:x"), true);
  assert.equal(isCanonicalSessionKey("main"), false);
  assert.equal(shortSessionKey("agent:main:foo"), "foo");
  assert.equal(checkSessionKey("main"), "agent:main:main");
});

test("another agent's keys are refused with what to use instead", () => {
  assert.throws(
    () => canonicalSessionKey("agent:ops:main"),
    (e: Error & { hint?: string }) => /unknown agent "ops"/.test(e.message) && /agent:main:<key>/.test(e.hint ?? ""),
  );
  assert.throws(() => canonicalSessionKey("main", "ops"), /unknown agent/);
  assert.throws(() => checkSessionKey("../etc"), /invalid session key/);
});

test("one conversation is one session whichever form names it", () => {
  const store = new SessionStore(tempDir("loopgate-keys-"));
  store.append("main", { kind: "user", text: "from the TUI" });
  store.append("agent:main:main", { kind: "assistant", text: "reply" });
  assert.deepEqual(
    store.history("main").map((e) => e.text),
    ["from the TUI", "reply"],
  );
  assert.deepEqual(
    store.list().map((s) => s.key),
    ["agent:main:main"],
  );
});

test("files stored under short keys migrate on load; when both forms exist their entries merge by time", () => {
  const dir = tempDir("loopgate-migrate-");
  mkdirSync(dir, { recursive: true });
  const line = (seq: number, ts: number, text: string) => JSON.stringify({ seq, ts, kind: "user", text }) + "\n";
  writeFileSync(join(dir, "notes.jsonl"), line(0, 100, "old notes"));
  writeFileSync(join(dir, "main.jsonl"), line(0, 100, "short 1") + line(1, 300, "short 2"));
  writeFileSync(join(dir, "agent~main~main.jsonl"), line(0, 200, "canonical 1"));
  writeFileSync(join(dir, "agent~ops~x.jsonl"), line(0, 100, "another agent"));
  const store = new SessionStore(dir);
  assert.deepEqual(
    store.history("agent:main:notes").map((e) => e.text),
    ["old notes"],
  );
  const main = store.history("main");
  assert.deepEqual(
    main.map((e) => e.text),
    ["short 1", "canonical 1", "short 2"],
  );
  assert.deepEqual(
    main.map((e) => e.seq),
    [0, 1, 2],
    "merged entries are renumbered",
  );
  assert.deepEqual(
    readdirSync(dir).sort(),
    ["agent~main~main.jsonl", "agent~main~notes.jsonl", "agent~ops~x.jsonl"],
    "another agent's file is left alone",
  );
  // New entries continue the sequence, and the migrated store reopens the same.
  store.append("main", { kind: "assistant", text: "after" });
  assert.equal(new SessionStore(dir).history("agent:main:main").at(-1)!.seq, 3);
  assert.ok(readFileSync(join(dir, "agent~main~main.jsonl"), "utf8").endsWith("\n"));
});
