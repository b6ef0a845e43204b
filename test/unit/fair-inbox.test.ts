/**
 * The Node relay's fair inbox (relay/node/fair-inbox.ts): messages keep their
 * order, a host spends at most its budget per turn and the rest waits for
 * the next one, hosts' budgets are independent, a full inbox pauses its
 * socket until it drains, and a close still delivers what came before it.
 * Turns are counted, not timed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Inbox, PauseGate, TurnBudget } from "../../relay/node/fair-inbox.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));
const limits = { turnBytes: 100, turnMessages: 1000, highWaterBytes: 250 };

function socket() {
  const log: string[] = [];
  return { log, pause: () => log.push("pause"), resume: () => log.push("resume") };
}

test("within the budget, messages are handled at once and in order", () => {
  const got: number[] = [];
  const inbox = new Inbox(
    new TurnBudget(limits),
    socket(),
    () => 10,
    (n: number) => got.push(n),
  );
  for (let i = 0; i < 5; i++) inbox.push(i);
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
});

test("past the budget, the rest waits for later turns, in order", async () => {
  const got: number[] = [];
  const inbox = new Inbox(
    new TurnBudget(limits),
    socket(),
    () => 40,
    (n: number) => got.push(n),
  );
  for (let i = 0; i < 7; i++) inbox.push(i);
  assert.deepEqual(got, [0, 1, 2], "100 bytes a turn: three 40-byte messages start it");
  await turn();
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  await turn();
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6]);
});

test("one host over its budget does not hold another host's messages", () => {
  const flood = new TurnBudget(limits);
  const calm = new TurnBudget(limits);
  const got: string[] = [];
  const a = new Inbox(
    flood,
    socket(),
    () => 60,
    (s: string) => got.push(s),
  );
  const b = new Inbox(
    calm,
    socket(),
    () => 10,
    (s: string) => got.push(s),
  );
  for (let i = 0; i < 10; i++) a.push(`a${i}`);
  b.push("b0");
  assert.deepEqual(got, ["a0", "a1", "b0"]);
});

test("a host's inboxes share its budget and are served round-robin", async () => {
  const budget = new TurnBudget({ ...limits, turnBytes: 20 });
  const got: string[] = [];
  const a = new Inbox(
    budget,
    socket(),
    () => 10,
    (s: string) => got.push(s),
  );
  const b = new Inbox(
    budget,
    socket(),
    () => 10,
    (s: string) => got.push(s),
  );
  for (let i = 0; i < 4; i++) a.push(`a${i}`);
  for (let i = 0; i < 2; i++) b.push(`b${i}`);
  assert.deepEqual(got, ["a0", "a1"]);
  await turn();
  await turn();
  await turn();
  assert.deepEqual(got.slice(0, 2), ["a0", "a1"]);
  assert.deepEqual(
    got.filter((s) => s.startsWith("b")),
    ["b0", "b1"],
  );
  assert.ok(got.indexOf("b0") < got.indexOf("a3"), `b waited behind all of a: ${got.join(",")}`);
});

test("an inbox past its high-water mark pauses its socket and resumes it once drained", async () => {
  const sock = socket();
  const got: number[] = [];
  const inbox = new Inbox(
    new TurnBudget(limits),
    sock,
    () => 50,
    (n: number) => got.push(n),
  );
  for (let i = 0; i < 8; i++) inbox.push(i);
  assert.deepEqual(sock.log, ["pause"], "6 messages (300 bytes) queued: over 250");
  while (got.length < 8) await turn();
  assert.deepEqual(sock.log, ["pause", "resume"]);
});

test("close delivers what was queued, then nothing more", () => {
  const got: number[] = [];
  const inbox = new Inbox(
    new TurnBudget(limits),
    socket(),
    () => 60,
    (n: number) => got.push(n),
  );
  for (let i = 0; i < 4; i++) inbox.push(i);
  inbox.close();
  inbox.push(9);
  assert.deepEqual(got, [0, 1, 2, 3]);
});

test("a socket paused for two reasons reads again only when both are gone", () => {
  const sock = socket();
  const gate = new PauseGate(sock);
  const inbox = gate.inboxSide();
  gate.pauseCredit();
  inbox.pause();
  gate.resumeCredit();
  assert.deepEqual(sock.log, ["pause", "pause"]);
  inbox.resume();
  assert.deepEqual(sock.log, ["pause", "pause", "resume"]);
});
