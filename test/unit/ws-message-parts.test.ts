// sendMessageParts: a link DATA frame written as its head and payload, unjoined, arrives as one
// binary message at a real ws peer, both ways (server unmasked, client with the link's zero mask).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { sendMessageParts } from "../../relay/node/ws-message-parts.ts";
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
  test(`a DATA frame sent in parts from the ${side} arrives whole and decodes`, async () => {
    const { server, client, close } = await pair();
    try {
      const from = side === "server" ? server : client;
      const to = side === "server" ? client : server;
      for (const n of SIZES) {
        const payload = Buffer.alloc(n);
        for (let i = 0; i < n; i++) payload[i] = (i * 31 + n) & 0xff;
        const got = nextMessage(to);
        const fast = sendMessageParts(from, encodeDataHead(7, n, true, n % 2 === 0), payload, side === "client");
        assert.equal(fast, true, `${n} bytes went by ws's frame writer, not the joined fallback`);
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
        sendMessageParts(from, Buffer.from([i * 2 + 1]), Buffer.alloc(3000), side === "client");
      }
      await all;
      assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
    } finally {
      await close();
    }
  });
}

test("a socket that is not open takes nothing", async () => {
  const { client, close } = await pair();
  client.close();
  assert.equal(sendMessageParts(client, encodeDataHead(1, 1, true, true), Buffer.from([1]), true), false);
  await close();
});
