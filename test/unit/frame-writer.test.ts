// FrameWriter: frames written through ws's frame writer arrive at a real ws peer as the messages
// they stand for, both ways (server unmasked, client with the link's zero mask): link DATA frames
// from a head and a payload, unjoined; fragments of text and binary messages; order with ws.send.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { FrameWriter } from "../../relay/node/frame-writer.ts";
import { zeroMask } from "../../agent/tls/pinned-connect.ts";
import { encodeData, encodeDataHead, decodeFrame, FrameType } from "../../shared/link/codec.ts";

async function pair(): Promise<{ server: WebSocket; client: WebSocket; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 1 << 20 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const accepted = new Promise<WebSocket>((r) => wss.once("connection", (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, {
    generateMask: zeroMask,
    maxPayload: 1 << 20,
  });
  await new Promise<void>((r, j) => (client.once("open", () => r()), client.once("error", j)));
  const server = await accepted;
  return {
    server,
    client,
    close: async () => {
      client.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((r) => ws.once("message", (data, isBinary) => r({ data: data as Buffer, isBinary })));
}

// Lengths across every WebSocket length form (7-bit, 16-bit, 64-bit) and the joined/unjoined split.
const SIZES = [0, 1, 119, 120, 121, 2042, 2048, 2049, 65_529, 65_530, 65_536, 256 * 1024];

for (const side of ["server", "client"] as const) {
  test(`a DATA frame sent in parts from the ${side} arrives whole and decodes`, { timeout: 10_000 }, async () => {
    const { server, client, close } = await pair();
    try {
      const from = side === "server" ? server : client;
      const to = side === "server" ? client : server;
      const writer = new FrameWriter(from, side === "client");
      assert.equal(writer.direct, true, "frames go by ws's frame writer, not the ws.send fallback");
      for (const n of SIZES) {
        const payload = Buffer.alloc(n);
        for (let i = 0; i < n; i++) payload[i] = (i * 31 + n) & 0xff;
        const got = nextMessage(to);
        writer.writeParts(encodeDataHead(7, n, true, n % 2 === 0), payload);
        const m = await got;
        assert.equal(m.isBinary, true);
        assert.deepEqual(new Uint8Array(m.data), encodeData(7, payload, true, n % 2 === 0), `${n} bytes`);
        const f = decodeFrame(new Uint8Array(m.data));
        assert.equal(f.type, FrameType.DATA);
        if (f.type === FrameType.DATA) assert.equal(f.data.length, n);
      }
      // Interleaved with ordinary sends, order holds.
      const seen: number[] = [];
      const all = new Promise<void>((r) =>
        to.on("message", (d: Buffer) => {
          seen.push(d[0] as number);
          if (seen.length === 6) r();
        }),
      );
      for (let i = 0; i < 3; i++) {
        from.send(Buffer.from([i * 2]));
        writer.writeParts(Buffer.from([i * 2 + 1]), Buffer.alloc(3000));
      }
      await all;
      assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
    } finally {
      await close();
    }
  });
}

for (const side of ["server", "client"] as const) {
  test(`fragments from the ${side}: text and binary messages in pieces arrive whole, ping in between`, {
    timeout: 10_000,
  }, async () => {
    const { server, client, close } = await pair();
    try {
      const from = side === "server" ? server : client;
      const to = side === "server" ? client : server;
      const writer = new FrameWriter(from, side === "client");
      const text = "héllo wörld, ünïcode ✓ ".repeat(400);
      const bytes = Buffer.from(text);
      const got: { data: Buffer; isBinary: boolean }[] = [];
      const all = new Promise<void>((r) =>
        to.on("message", (data: Buffer, isBinary) => {
          got.push({ data, isBinary });
          if (got.length === 3) r();
        }),
      );
      // Cut inside a multi-byte character: the receiver checks the whole message's UTF-8.
      const cuts = [0, 1, 2049, 5000, bytes.length];
      for (let i = 0; i + 1 < cuts.length; i++)
        writer.writeFrame(bytes.subarray(cuts[i], cuts[i + 1]), false, i + 2 === cuts.length);
      const bin = Buffer.alloc(70_000, 9);
      writer.writeFrame(bin.subarray(0, 100), true, false);
      from.ping();
      writer.writeFrame(bin.subarray(100), true, true);
      const done = new Promise<Error | null | undefined>((r) => writer.writeFrame(Buffer.from("x"), false, true, r));
      await all;
      assert.ok(!(await done), "done runs without an error once written");
      assert.equal(got[0]?.isBinary, false);
      assert.equal(got[0]?.data.toString(), text);
      assert.equal(got[1]?.isBinary, true);
      assert.deepEqual(got[1]?.data, bin);
      assert.equal(got[2]?.data.toString(), "x");
    } finally {
      await close();
    }
  });
}

test("a socket that is not open takes nothing, and says so to the caller", async () => {
  const { client, close } = await pair();
  client.close();
  const err = await new Promise<Error | null | undefined>((r) =>
    new FrameWriter(client, true).writeFrame(Buffer.from([1]), true, true, r),
  );
  assert.ok(err instanceof Error);
  await close();
});
