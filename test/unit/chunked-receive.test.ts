// receiveInChunks: a WebSocket's data frames reach the sink piece by piece, unmasked, with message
// boundaries kept, whatever the reads' boundaries; control frames, the close handshake and the
// size limit stay ws's; a message's first bytes are handed over before its last arrive.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import * as wsModule from "ws";
import WebSocket, { WebSocketServer } from "ws";
import { receiveInChunks, unmaskAt } from "../../relay/node/chunked-receive.ts";

type Piece = { chunk: Buffer; isBinary: boolean; fin: boolean };

/** One frame as a client sends it: FIN, opcode, masked with `key`. */
function frame(opcode: number, fin: boolean, payload: Buffer, key: Buffer | undefined): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (key ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (key ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const body = Buffer.from(payload);
  if (key) {
    key.copy(head, 2 + ext);
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  }
  return Buffer.concat([head, body]);
}

/** ws's Receiver (server side) behind a stand-in WebSocket, fed bytes by hand. */
function receiver(opts: { maxPayload?: number; maxFragments?: number } = {}) {
  // The runtime exports Receiver; its types do not.
  const Receiver = (wsModule as unknown as { Receiver: new (o: object) => NodeJS.WritableStream & NodeJS.EventEmitter })
    .Receiver;
  const r = new Receiver({ isServer: true, maxPayload: opts.maxPayload ?? 0, maxFragments: opts.maxFragments ?? 0 });
  const pieces: Piece[] = [];
  const events: string[] = [];
  r.on("message", () => events.push("message"));
  r.on("ping", (d: Buffer) => events.push(`ping:${d.toString()}`));
  r.on("conclude", (code: number) => events.push(`close:${code}`));
  r.on("error", (e: Error & { code?: string }) => events.push(`error:${e.code}`));
  const ok = receiveInChunks({ _receiver: r } as unknown as WebSocket, (chunk, isBinary, fin) => {
    pieces.push({ chunk: Buffer.from(chunk), isBinary, fin });
  });
  return { r, ok, pieces, events };
}

/** The pieces joined back into messages. */
function messages(pieces: Piece[]): { data: Buffer; isBinary: boolean }[] {
  const out: { data: Buffer; isBinary: boolean }[] = [];
  let cur: Buffer[] = [];
  let kind: boolean | undefined;
  for (const p of pieces) {
    if (kind === undefined) kind = p.isBinary;
    assert.equal(p.isBinary, kind, "every piece of a message has the message's type");
    cur.push(p.chunk);
    if (p.fin) {
      out.push({ data: Buffer.concat(cur), isBinary: kind });
      cur = [];
      kind = undefined;
    }
  }
  assert.equal(cur.length, 0, "no piece after the last message's end");
  return out;
}

/** Feeds `bytes` in reads of random sizes (1 byte to 40 KiB). */
function feedRandomly(r: NodeJS.WritableStream, bytes: Buffer, seed: number): void {
  let x = seed;
  let at = 0;
  while (at < bytes.length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (x % (x % 3 === 0 ? 16 : 40 * 1024));
    r.write(bytes.subarray(at, at + n));
    at += n;
  }
}

test("frames split across reads at any byte come out as the messages sent, unmasked", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const { r, ok, pieces, events } = receiver();
    assert.equal(ok, true, "ws's Receiver is the one receiveInChunks was written for");
    const sent: { data: Buffer; isBinary: boolean }[] = [];
    const wire: Buffer[] = [];
    const sizes = [0, 1, 3, 125, 126, 65_535, 65_536, 70_001, 300_000];
    for (const [i, size] of sizes.entries()) {
      const data = randomBytes(size);
      const isBinary = i % 2 === 0;
      sent.push({ data, isBinary });
      if (size > 1000 && seed % 2 === 0) {
        // Fragmented by the sender: three frames, a ping between the first two.
        const a = Math.floor(size / 3);
        wire.push(frame(isBinary ? 2 : 1, false, data.subarray(0, a), randomBytes(4)));
        wire.push(frame(9, true, Buffer.from(`p${i}`), randomBytes(4)));
        wire.push(frame(0, false, data.subarray(a, 2 * a), randomBytes(4)));
        wire.push(frame(0, true, data.subarray(2 * a), randomBytes(4)));
      } else wire.push(frame(isBinary ? 2 : 1, true, data, seed % 5 === 0 ? Buffer.alloc(4) : randomBytes(4)));
    }
    feedRandomly(r, Buffer.concat(wire), seed);
    const got = messages(pieces);
    assert.equal(got.length, sent.length, `seed ${seed}: every message, none more`);
    for (const [i, m] of got.entries()) {
      assert.equal(m.isBinary, sent[i]?.isBinary, `seed ${seed}: message ${i}'s type`);
      assert.ok(m.data.equals(sent[i]?.data as Buffer), `seed ${seed}: message ${i}'s bytes`);
    }
    assert.ok(!events.includes("message"), "no whole-message events for data frames");
    if (seed % 2 === 0) assert.ok(events.includes("ping:p5"), "a ping between fragments is still ws's");
    assert.ok(!events.some((e) => e.startsWith("error")), `seed ${seed}: no error: ${events.join(",")}`);
  }
});

test("a large frame's first bytes are handed over before its last arrive; small reads wait for more", () => {
  const { r, pieces } = receiver();
  const data = randomBytes(200_000);
  const wire = frame(2, true, data, randomBytes(4));
  r.write(wire.subarray(0, 100));
  assert.equal(pieces.length, 0, "under the minimum piece: waits");
  r.write(wire.subarray(100, 50_000));
  assert.ok(pieces.length > 0, "past it: handed over");
  assert.ok(
    pieces.every((p) => !p.fin),
    "not the end yet",
  );
  r.write(wire.subarray(50_000));
  assert.ok(pieces.at(-1)?.fin);
  assert.ok(Buffer.concat(pieces.map((p) => p.chunk)).equals(data));
});

test("the message size limit is still ws's, counted across a message's frames", async () => {
  const { r, pieces, events } = receiver({ maxPayload: 1000 });
  r.write(frame(2, false, randomBytes(600), randomBytes(4)));
  r.write(frame(0, true, randomBytes(600), randomBytes(4)));
  await new Promise(setImmediate);
  assert.deepEqual(events, ["error:WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"]);
  assert.equal(Buffer.concat(pieces.map((p) => p.chunk)).length, 600, "nothing past the limit is handed over");
  // After a whole message the count starts again.
  const again = receiver({ maxPayload: 1000 });
  for (let i = 0; i < 5; i++) again.r.write(frame(2, true, randomBytes(900), randomBytes(4)));
  assert.equal(messages(again.pieces).length, 5);
  await new Promise(setImmediate);
  assert.deepEqual(again.events, []);
});

test("the limit on frames per message is still ws's", async () => {
  const { r, events } = receiver({ maxFragments: 3 });
  for (let i = 0; i < 3; i++) r.write(frame(i === 0 ? 2 : 0, i === 2, randomBytes(10), randomBytes(4)));
  for (let i = 0; i < 3; i++) r.write(frame(i === 0 ? 2 : 0, i === 2, randomBytes(10), randomBytes(4)));
  await new Promise(setImmediate);
  assert.deepEqual(events, [], "three frames a message, twice: within the limit");
  for (let i = 0; i < 4; i++) r.write(frame(i === 0 ? 2 : 0, i === 3, randomBytes(10), randomBytes(4)));
  await new Promise(setImmediate);
  assert.deepEqual(events, ["error:WS_ERR_TOO_MANY_BUFFERED_PARTS"]);
});

test("a client's unmasked frame is refused, as by ws", async () => {
  const { r, pieces, events } = receiver();
  r.write(frame(2, true, randomBytes(10), undefined));
  await new Promise(setImmediate);
  assert.deepEqual(events, ["error:WS_ERR_EXPECTED_MASK"]);
  assert.equal(pieces.length, 0);
});

test("unmaskAt applies the key at any phase", () => {
  const key = randomBytes(4);
  const data = randomBytes(1000);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (key[i & 3] as number);
  for (const cut of [0, 1, 2, 3, 5, 31, 32, 33, 999]) {
    const a = Buffer.from(masked.subarray(0, cut));
    const b = Buffer.from(masked.subarray(cut));
    unmaskAt(a, key, 0);
    unmaskAt(b, key, cut);
    assert.ok(Buffer.concat([a, b]).equals(data), `cut at ${cut}`);
  }
});

test("over real sockets: messages both ways, a ping and the close handshake work as before", {
  timeout: 10_000,
}, async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 1 << 22 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const pieces: Piece[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    wss.once("connection", (ws) => {
      assert.equal(
        receiveInChunks(ws, (chunk, isBinary, fin) => {
          pieces.push({ chunk: Buffer.from(chunk), isBinary, fin });
          if (fin) ws.send(Buffer.concat(pieces.splice(0).map((p) => p.chunk)), { binary: isBinary });
        }),
        true,
      );
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    }),
  );
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise<void>((r, j) => (client.once("open", () => r()), client.once("error", j)));
  const echo = (data: Buffer | string) =>
    new Promise<{ data: Buffer; isBinary: boolean }>((r) => {
      client.once("message", (d, isBinary) => r({ data: d as Buffer, isBinary }));
      client.send(data);
    });
  const big = randomBytes(3 << 20);
  assert.ok((await echo(big)).data.equals(big));
  const text = await echo("héllo");
  assert.equal(text.isBinary, false);
  assert.equal(text.data.toString(), "héllo");
  assert.equal((await echo(Buffer.alloc(0))).data.length, 0);
  const pong = new Promise<Buffer>((r) => client.once("pong", (d) => r(d)));
  client.ping("still here");
  assert.equal((await pong).toString(), "still here");
  client.close(4001, "bye");
  assert.deepEqual(await closed, { code: 4001, reason: "bye" });
  await new Promise<void>((r) => wss.close(() => r()));
});
