// What a client's large message costs the Node relay while it arrives. The relay forwards it piece
// by piece as credit allows and stops reading past its per-stream buffer, so a client (any token
// holder) who sends messages up to the size limit into a host that does not read cannot make the
// relay hold them whole: a few such clients must not cost the relay their messages' size.
// A host's link, whose messages are link frames the relay holds whole until decoded, may send none
// larger than the largest frame. (The Workers runtime hands a Worker whole messages up to its own
// limit; its memory is the platform's.)
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";
import { makeHost, startRelay, startLinkProc, mintToken, type RelayProc, type Host } from "../helpers/relay.ts";
import { hostKeys, relayWebSocket } from "../helpers/relay-client.ts";
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";
import { linkUrl } from "../../agent/link/connector.ts";
import { signLinkToken, relayAudience } from "../../shared/tokens.ts";
import { MAX_FRAME_BYTES } from "../../shared/link/codec.ts";
import type { Proc } from "../helpers/proc.ts";

const CLIENTS = 4;
const MESSAGE = 24 * 1024 * 1024;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** A masked binary frame header for `len` bytes with an all-zero key, so the payload goes as it is. */
function frameHead(len: number): Buffer {
  const h = Buffer.alloc(14);
  h[0] = 0x82;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(len), 2);
  return h; // bytes 10-13: the zero mask key
}

describe("Node relay: a client's message in progress", { skip: process.platform !== "linux" && "reads /proc" }, () => {
  let relay: RelayProc;
  let host: Host;
  /** Allowed on the relay, with no link of its own: the tests below link it by hand. */
  let rogue: Host;
  let link: Proc;
  let token: string;
  let upstream: WebSocketServer;
  let upstreamBytes = 0;
  before(async () => {
    // The host's gateway: accepts, then never reads.
    upstream = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((r) => upstream.once("listening", () => r()));
    upstream.on("connection", (ws: WebSocket) => {
      const sock = (ws as unknown as { _socket: import("node:net").Socket })._socket;
      sock.once("data", (d: Buffer) => {
        upstreamBytes += d.length;
        sock.pause();
      });
    });
    host = await makeHost();
    rogue = await makeHost();
    relay = await startRelay("node", { allowHosts: [host.hostId, rogue.hostId] });
    link = await startLinkProc(host, relay, (upstream.address() as AddressInfo).port);
    token = (await mintToken(host, relay)).token;
  });
  after(async () => {
    await link?.kill();
    await relay?.kill();
    for (const ws of upstream.clients) ws.terminate();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  test(`${CLIENTS} clients sending ${MESSAGE >> 20} MiB each into a host that does not read cost the relay a bounded amount`, {
    timeout: 60_000,
  }, async (t) => {
    const pid = relay.child.pid as number;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => relayWebSocket(relay, host.hostId, token)));
    const before = rssMiB(pid);
    const payload = Buffer.alloc(1024 * 1024, 7);
    for (const ws of clients) {
      const sock = (ws as unknown as { _socket: import("node:net").Socket })._socket;
      sock.write(frameHead(MESSAGE));
      for (let i = 0; i < MESSAGE / payload.length; i++) sock.write(payload);
    }
    // Long enough for the relay to read all it will: it either holds the messages or has stopped reading.
    let peak = before;
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rssMiB(pid));
    }
    const grew = peak - before;
    t.diagnostic(`relay resident memory grew ${grew.toFixed(1)} MiB; the host received ${upstreamBytes} bytes`);
    assert.ok(upstreamBytes > 0, "the messages' first bytes reached the host before their last were sent");
    // Each client may cost the relay its stream's buffer and window and read buffers not yet collected (~7 MiB here);
    // holding the messages whole cost it ~195 MiB.
    assert.ok(grew < 16 * CLIENTS, `the relay grew by ${grew.toFixed(0)} MiB for ${CLIENTS} messages in progress`);
    for (const ws of clients) ws.terminate();
  });

  test("a host's link that sends a message larger than any link frame is closed with 1009", {
    timeout: 20_000,
  }, async () => {
    const { privateKey, publicJwk } = await hostKeys(rogue);
    const token = await signLinkToken(privateKey, publicJwk, rogue.hostId, relayAudience(relay.url));
    const ws = await openWebSocket(linkUrl(relay.url), {
      pins: [relay.pin],
      headers: { authorization: `Bearer ${token}` },
      zeroMask: true,
    });
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send(Buffer.alloc(MAX_FRAME_BYTES + 64 * 1024));
    assert.equal(await closed, 1009);
  });
});
