/**
 * The Node relay's fair inbox (relay/node/fair-inbox.ts): messages keep their
 * order, a host spends at most its budget per turn and the rest waits for
 * the next one, hosts' budgets are independent, a full inbox pauses its
 * socket until it drains, and a close still delivers what came before it;
 * a host alone on the relay gets the larger share until another host is
 * busy. Turns are counted, not timed; contention runs on a fake clock.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Contention, Inbox, PauseGate, TurnBudget } from "../../relay/node/fair-inbox.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));
const limits = { turnBytes: 100, turnMessages: 1000, highWaterBytes: 250, soloTurnBytes: 400, soloTurnMessages: 1000 };

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

test("a host alone gets the larger share per turn; another host's message brings back the smaller one", () => {
  let now = 1000;
  const contention = new Contention(500, () => now);
  // A fresh budget (and inbox) per phase: each starts a turn of its own.
  const pushTwelve = () => {
    const got: number[] = [];
    const inbox = new Inbox(
      new TurnBudget(limits, contention),
      socket(),
      () => 40,
      (n: number) => got.push(n),
    );
    for (let i = 0; i < 12; i++) inbox.push(i);
    return got.length;
  };
  assert.equal(pushTwelve(), 10, "alone: 400 bytes a turn, ten 40-byte messages");
  new TurnBudget(limits, contention).spend(10); // another host
  assert.equal(pushTwelve(), 3, "another host was busy just now: 100 bytes a turn");
  now += 501;
  assert.equal(pushTwelve(), 10, "the other host quiet for longer than the window: the larger share again");
});

test("contention: a host is contended while another spent within the window, never by itself", () => {
  let now = 0;
  const c = new Contention(100, () => now);
  const a = {};
  const b = {};
  c.note(a);
  assert.equal(c.contended(a), false, "only a so far");
  assert.equal(c.contended(b), true, "a is busy: b shares the relay with it");
  now = 50;
  c.note(b);
  c.note(b);
  assert.equal(c.contended(a), true, "b spent just now");
  assert.equal(c.contended(b), true, "a spent 50 ms ago");
  now = 151;
  assert.equal(c.contended(b), false, "a quiet for 151 ms");
  assert.equal(c.contended(a), false, "b quiet for 101 ms");
});
