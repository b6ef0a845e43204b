/**
 * The link protocol: codec round trips and refusals, chunking and
 * reassembly, per-stream credit (a stalled stream stalls nobody else),
 * limits, close codes end to end, and a property-based fuzz of the decoder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeFrame,
  encodeOpen,
  encodeAccept,
  encodeData,
  encodeClose,
  encodeCredit,
  encodePing,
  encodeControl,
  FrameType,
} from "../../shared/link/codec.ts";
import { LinkMux, type LinkLimits } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { LoopgateError } from "../../shared/errors.ts";

const META = { kind: "ws" as const, path: "/", headers: { "x-forwarded-for": "192.0.2.1" }, clientAddr: "192.0.2.1" };

test("codec: every frame type round-trips", () => {
  assert.deepEqual(decodeFrame(encodeOpen(7, META)), { type: FrameType.OPEN, streamId: 7, meta: META });
  assert.deepEqual(decodeFrame(encodeAccept(7, { status: 200, headers: { "content-type": "text/html" } })), {
    type: FrameType.ACCEPT,
    streamId: 7,
    info: { status: 200, headers: { "content-type": "text/html" } },
  });
  const d = decodeFrame(encodeData(3, new Uint8Array([1, 2, 3]), true, true));
  assert.equal(d.type, FrameType.DATA);
  assert.ok(d.type === FrameType.DATA && d.binary && d.fin && d.data.length === 3);
  assert.deepEqual(decodeFrame(encodeClose(3, 4001, "bye ✓")), {
    type: FrameType.CLOSE,
    streamId: 3,
    code: 4001,
    reason: "bye ✓",
  });
  assert.deepEqual(decodeFrame(encodeCredit(3, 65536)), { type: FrameType.CREDIT, streamId: 3, bytes: 65536 });
  const ping = decodeFrame(encodePing(new Uint8Array(8).fill(9)));
  assert.ok(ping.type === FrameType.PING && ping.nonce.every((b) => b === 9));
  assert.deepEqual(decodeFrame(encodeControl({ type: "revoke", ids: ["a"] })), {
    type: FrameType.CONTROL,
    streamId: 0,
    message: { type: "revoke", ids: ["a"] },
  });
});

test("codec: malformed frames are refused with LINK_PROTOCOL", () => {
  const bad: [string, Uint8Array][] = [
    ["truncated", new Uint8Array([1, 0, 0])],
    ["unknown type", new Uint8Array([99, 0, 0, 0, 1])],
    ["DATA on stream 0", new Uint8Array([3, 0, 0, 0, 0, 2])],
    ["PING on a stream", new Uint8Array([6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])],
    ["DATA unknown flags", new Uint8Array([3, 0, 0, 0, 1, 8])],
    ["CLOSE 1006 on the wire", new Uint8Array([4, 0, 0, 0, 1, 0x03, 0xee])],
    ["CLOSE bad UTF-8", new Uint8Array([4, 0, 0, 0, 1, 0x03, 0xe8, 0xff])],
    ["CREDIT 0", new Uint8Array([5, 0, 0, 0, 1, 0, 0, 0, 0])],
    ["OPEN not JSON", new Uint8Array([1, 0, 0, 0, 1, 123])],
    [
      "OPEN wrong shape",
      new Uint8Array([1, 0, 0, 0, 1, ...new TextEncoder().encode('{"kind":"ftp","path":"/","clientAddr":"x"}')]),
    ],
    [
      "OPEN header injection",
      new Uint8Array([
        1,
        0,
        0,
        0,
        1,
        ...new TextEncoder().encode('{"kind":"ws","path":"/","clientAddr":"x","headers":{"a":"b\\r\\nc: d"}}'),
      ]),
    ],
  ];
  for (const [name, bytes] of bad)
    assert.throws(
      () => decodeFrame(bytes),
      (e: unknown) => e instanceof LoopgateError && e.code === "LINK_PROTOCOL",
      name,
    );
});

/** Two muxes back to back in memory, with frames delivered asynchronously like a socket. */
function pair(limits: Partial<LinkLimits> = {}) {
  const opened: LinkStream[] = [];
  let relay!: LinkMux;
  let host!: LinkMux;
  const deliver = (to: () => LinkMux) => (f: Uint8Array) => queueMicrotask(() => to().receive(f));
  relay = new LinkMux({ role: "relay", send: deliver(() => host), limits });
  host = new LinkMux({ role: "host", send: deliver(() => relay), limits, onOpen: (s) => opened.push(s) });
  return { relay, host, opened };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

test("mux: a 5 MiB message is chunked and reassembled, boundaries kept, interleaved with small ones", async () => {
  const { relay, opened } = pair();
  const a = relay.openStream(META);
  const b = relay.openStream(META);
  await tick();
  const got: Record<number, (string | Uint8Array)[]> = {};
  for (const s of opened) {
    got[s.id] = [];
    s.onMessage = (d, _bin, release) => {
      got[s.id]!.push(d);
      release();
    };
  }
  const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
  a.sendMessage(big);
  for (let i = 0; i < 100; i++) b.sendMessage(`small ${i}`);
  a.sendMessage("after");
  for (let i = 0; i < 200 && (got[a.id]!.length < 2 || got[b.id]!.length < 100); i++) await tick();
  assert.equal(got[b.id]!.length, 100);
  assert.deepEqual(got[b.id]!.slice(0, 3), ["small 0", "small 1", "small 2"]);
  assert.equal(got[a.id]!.length, 2);
  assert.deepEqual(got[a.id]![0], big);
  assert.equal(got[a.id]![1], "after");
});

test("mux: credit stops a sender at the window; a stalled stream does not block another", async () => {
  const window = 64 * 1024;
  const { relay, opened } = pair({
    initialWindow: window,
    chunkBytes: 16 * 1024,
    highWaterBytes: 256 * 1024,
    maxQueuedBytes: 4 * 1024 * 1024,
  });
  const stalled = relay.openStream(META);
  const live = relay.openStream(META);
  await tick();
  const held: (() => void)[] = [];
  let liveCount = 0;
  opened[0]!.onMessage = (_d, _b, release) => held.push(release); // never releases
  opened[1]!.onMessage = (_d, _b, release) => (liveCount++, release());
  for (let i = 0; i < 64; i++) stalled.sendMessage(new Uint8Array(8 * 1024));
  for (let i = 0; i < 300; i++) live.sendMessage(new Uint8Array(8 * 1024));
  for (let i = 0; i < 200 && liveCount < 300; i++) await tick();
  assert.equal(liveCount, 300, "the live stream got everything");
  assert.ok(stalled.queuedBytes > 0, "the stalled stream's sender is holding data");
  assert.ok(opened[0]!.heldBytes <= window, `receiver holds at most one window (${opened[0]!.heldBytes})`);
  assert.ok(stalled.sendCredit <= window);
  // Releasing resumes the flow.
  for (let i = 0; i < 400 && stalled.queuedBytes > 0; i++) {
    held.splice(0).forEach((r) => r());
    await tick();
  }
  assert.equal(stalled.queuedBytes, 0);
});

test("mux: a receive window past the initial one is granted at open; a peer with the initial window still interoperates", async () => {
  const initial = { initialWindow: 16 * 1024, chunkBytes: 4 * 1024, highWaterBytes: 1024 * 1024 };
  const cases = [
    { relayWindow: 64 * 1024, hostWindow: 64 * 1024, expectHeld: 64 * 1024 },
    // A host that knows only the initial window (an older host) holds its peer to it.
    { relayWindow: 64 * 1024, hostWindow: 16 * 1024, expectHeld: 16 * 1024 },
    { relayWindow: 16 * 1024, hostWindow: 64 * 1024, expectHeld: 64 * 1024 },
  ];
  for (const c of cases) {
    const opened: LinkStream[] = [];
    let relay!: LinkMux;
    let host!: LinkMux;
    const deliver = (to: () => LinkMux) => (f: Uint8Array) => queueMicrotask(() => to().receive(f));
    relay = new LinkMux({
      role: "relay",
      send: deliver(() => host),
      limits: { ...initial, receiveWindow: c.relayWindow },
    });
    host = new LinkMux({
      role: "host",
      send: deliver(() => relay),
      limits: { ...initial, receiveWindow: c.hostWindow },
      onOpen: (s) => opened.push(s),
    });
    const s = relay.openStream(META);
    await tick();
    const held: (() => void)[] = [];
    opened[0]!.onMessage = (_d, _b, release) => held.push(release); // holds everything
    let closed: number | undefined;
    s.onClose = (code) => (closed = code);
    for (let i = 0; i < 64; i++) s.sendMessage(new Uint8Array(4 * 1024));
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(closed, undefined, "no credit violation either way");
    assert.equal(opened[0]!.heldBytes, c.expectHeld, `window ${JSON.stringify(c)}`);
    held.splice(0).forEach((r) => r());
    for (let i = 0; i < 100 && s.queuedBytes > 0; i++) {
      await tick();
      held.splice(0).forEach((r) => r());
    }
    assert.equal(s.queuedBytes, 0, "everything crossed once released");
  }
});

test("stream: onChunk hands each chunk over as it arrives, text as bytes, under the message cap", async () => {
  const { relay, opened } = pair({ initialWindow: 16 * 1024, chunkBytes: 4 * 1024 });
  const s = relay.openStream(META);
  await tick();
  const chunks: [number, boolean, boolean][] = [];
  let text = "";
  s.onChunk = (chunk, isBinary, fin, release) => {
    chunks.push([chunk.length, isBinary, fin]);
    if (!isBinary) text += new TextDecoder().decode(chunk, { stream: !fin });
    release();
  };
  opened[0]!.sendMessage(new Uint8Array(10 * 1024));
  opened[0]!.sendMessage("é".repeat(3000)); // 6000 bytes: a chunk boundary inside a character
  for (let i = 0; i < 50 && chunks.length < 5; i++) await tick();
  assert.deepEqual(chunks, [
    [4096, true, false],
    [4096, true, false],
    [2048, true, true],
    [4096, false, false],
    [1904, false, true],
  ]);
  assert.equal(text, "é".repeat(3000));
  let code: number | undefined;
  s.onClose = (c) => (code = c);
  s.limitIncoming(6 * 1024);
  opened[0]!.sendMessage(new Uint8Array(8 * 1024));
  for (let i = 0; i < 20 && code === undefined; i++) await tick();
  assert.equal(code, 1009);
});

test("stream: sendChunk sends a message piece by piece as it arrives; the peer gets it whole; the limit counts the whole", async () => {
  const { relay, opened } = pair({ maxMessageBytes: 64 * 1024 });
  const s = relay.openStream(META);
  await tick();
  const got: [string | Uint8Array, boolean][] = [];
  opened[0]!.onMessage = (d, bin, release) => (got.push([d, bin]), release());
  const part = (n: number, v: number) => new Uint8Array(n).fill(v);
  s.sendChunk(part(1000, 1), true, false);
  s.sendChunk(part(0, 0), true, false);
  s.sendChunk(part(2000, 2), true, false);
  s.sendChunk(part(0, 0), true, true);
  s.sendChunk(new TextEncoder().encode("hé"), false, false);
  s.sendChunk(new TextEncoder().encode("llo"), false, true);
  s.sendChunk(part(0, 0), false, true);
  for (let i = 0; i < 50 && got.length < 3; i++) await tick();
  assert.equal(got.length, 3);
  assert.deepEqual(got[0], [new Uint8Array([...part(1000, 1), ...part(2000, 2)]), true]);
  assert.deepEqual(got[1], ["héllo", false]);
  assert.deepEqual(got[2], ["", false], "an empty message is a message");
  // 40 KiB + 40 KiB in pieces is past the 64 KiB limit although each piece is under it.
  let code: number | undefined;
  opened[0]!.onClose = (c) => (code = c);
  assert.equal(s.sendChunk(part(40 * 1024, 3), true, false), true);
  assert.equal(s.sendChunk(part(40 * 1024, 3), true, true), false);
  for (let i = 0; i < 20 && code === undefined; i++) await tick();
  assert.equal(code, 1009);
  assert.equal(s.open, false);
});

test("mux: a source that cannot pause is told to pause, then closed at the queue limit", async () => {
  const { relay, opened } = pair({
    initialWindow: 16 * 1024,
    chunkBytes: 16 * 1024,
    highWaterBytes: 32 * 1024,
    maxQueuedBytes: 128 * 1024,
  });
  const s = relay.openStream(META);
  await tick();
  let peerClosed: [number, string] | undefined;
  opened[0]!.onMessage = () => {}; // never releases
  opened[0]!.onClose = (c, r) => (peerClosed = [c, r]);
  let closed: [number, string] | undefined;
  s.onClose = (c, r) => (closed = [c, r]);
  let ok = true;
  for (let i = 0; i < 20 && !closed; i++) ok = s.sendMessage(new Uint8Array(16 * 1024)) && ok;
  assert.equal(ok, false, "sendMessage asked the caller to pause");
  assert.equal(closed?.[0], 1008);
  await tick();
  await tick();
  assert.equal(peerClosed?.[0], 1008, "the peer learns the code too");
});

test("mux: stream limit, close codes and reasons end to end, closeAll", async () => {
  const { relay, host, opened } = pair({ maxStreams: 2 });
  const a = relay.openStream(META);
  relay.openStream(META);
  assert.throws(() => relay.openStream(META), /LIMIT_EXCEEDED|open streams/);
  await tick();
  let closedA: [number, string] | undefined;
  a.onClose = (c, r) => (closedA = [c, r]);
  opened[0]!.close(4003, "the gateway said no");
  await tick();
  assert.deepEqual(closedA, [4003, "the gateway said no"]);
  assert.equal(relay.size, 1);
  assert.equal(host.size, 1);
  const ends: number[] = [];
  for (const s of relay.streams()) s.onClose = (c) => ends.push(c);
  relay.closeAll(1012, "link lost");
  assert.deepEqual(ends, [1012]);
  assert.equal(relay.size, 0);
});

test("mux: more OPENs than the host allows are refused with 1013", async () => {
  const relayLimits = { maxStreams: 10 };
  let relay!: LinkMux;
  const host = new LinkMux({
    role: "host",
    send: (f) => queueMicrotask(() => relay.receive(f)),
    limits: { maxStreams: 1 },
  });
  relay = new LinkMux({ role: "relay", send: (f) => queueMicrotask(() => host.receive(f)), limits: relayLimits });
  relay.openStream(META);
  const b = relay.openStream(META);
  let code = 0;
  b.onClose = (c) => (code = c);
  await tick();
  await tick();
  assert.equal(code, 1013);
});

test("mux: a malformed frame is fatal for the link", () => {
  let fatal: LoopgateError | undefined;
  const m = new LinkMux({ role: "host", send: () => {}, onFatal: (e) => (fatal = e) });
  m.receive(new Uint8Array([42, 0, 0, 0, 0]));
  assert.equal(fatal?.code, "LINK_PROTOCOL");
});

test("fuzz: decodeFrame on arbitrary bytes throws nothing but LINK_PROTOCOL errors", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        decodeFrame(bytes);
      } catch (e) {
        return e instanceof LoopgateError && e.code === "LINK_PROTOCOL";
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  // Mutations of valid frames, where the interesting bugs hide.
  const valid = [
    encodeOpen(1, META),
    encodeData(1, new Uint8Array(20), false, true),
    encodeClose(1, 1000, "x"),
    encodeControl({ a: 1 }),
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat({ max: 64 }),
      (frame, edits, cut) => {
        const b = frame.slice(0, Math.max(0, frame.length - cut));
        for (const [i, v] of edits) if (b.length) b[i % b.length] = v;
        try {
          decodeFrame(b);
        } catch (e) {
          return e instanceof LoopgateError;
        }
        return true;
      },
    ),
    { numRuns: 3000 },
  );
});

test("fuzz: any sequence of messages arrives intact and in order", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 100_000 })), { maxLength: 20 }),
      async (msgs) => {
        const { relay, opened } = pair({ initialWindow: 32 * 1024, chunkBytes: 8 * 1024 });
        const s = relay.openStream(META);
        await tick();
        const got: (string | Uint8Array)[] = [];
        opened[0]!.onMessage = (d, _b, release) => (got.push(d), release());
        for (const m of msgs) s.sendMessage(m);
        for (let i = 0; i < 500 && got.length < msgs.length; i++) await tick();
        assert.deepEqual(got, msgs);
      },
    ),
    { numRuns: 60 },
  );
});

test("stream: a transport that returns credit synchronously gets each chunk once", () => {
  // In-memory muxes answer inside send(): credit re-enters the sender's pump mid-loop.
  const limits = { initialWindow: 1024, chunkBytes: 512 };
  let host: LinkMux;
  let frames = 0;
  const opened: LinkStream[] = [];
  const relay = new LinkMux({ role: "relay", send: (f) => (frames++, host.receive(f)), limits });
  host = new LinkMux({
    role: "host",
    send: (f) => (frames++, relay.receive(f)),
    limits,
    onOpen: (s) => void opened.push(s),
  });
  const got: string[] = [];
  const s = relay.openStream(META);
  s.onMessage = (d, _b, release) => (got.push(String(d)), release());
  opened[0]!.sendMessage("z".repeat(3000));
  assert.ok(frames < 100, `bounded: ${frames} frames`);
  assert.deepEqual(
    got.map((m) => m.length),
    [3000],
  );
});

test("mux: with sendParts, DATA goes as its head and the chunk itself (no copy); the joined frame is the same bytes", () => {
  const whole: Uint8Array[] = [];
  const parts: [Uint8Array, Uint8Array][] = [];
  const relay = new LinkMux({ role: "relay", send: (f) => whole.push(f), sendParts: (h, p) => parts.push([h, p]) });
  const s = relay.openStream(META);
  const msg = new Uint8Array(150 * 1024).map((_, i) => i & 0xff);
  s.sendMessage(msg);
  // Chunks of 64 KiB within the initial 256 KiB window: three DATA frames, each a view of the message.
  assert.equal(parts.length, 3);
  let offset = 0;
  for (const [i, [head, payload]] of parts.entries()) {
    assert.equal(payload.buffer, msg.buffer, "the payload is a view of the caller's bytes");
    const fin: boolean = i === parts.length - 1;
    assert.deepEqual(
      decodeFrame(new Uint8Array([...head, ...payload])),
      decodeFrame(encodeData(s.id, msg.subarray(offset, offset + payload.length), true, fin)),
    );
    offset += payload.length;
  }
  assert.equal(offset, msg.length);
  assert.ok(
    whole.every((f) => f[0] !== FrameType.DATA),
    "no DATA frame went through send",
  );
  assert.equal(
    relay.bytesOut,
    whole.reduce((n, f) => n + f.length, 0) + parts.reduce((n, [h, p]) => n + h.length + p.length, 0),
  );
});
