/**
 * A link stream as the gateway's ClientSocket (the in-process link), and the
 * peer a linked client gets: whole messages with their wire size, a message
 * cap enforced as chunks arrive, close heard once whoever closes, queued bytes
 * as bufferedAmount; forwarded and never local whatever the headers say.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkMux } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { linkStreamSocket } from "../../agent/link/stream-socket.ts";
import type { ClientSocket, InboundMessage } from "../../agent/gateway/client-socket.ts";
import { linkedPeerInfo, LINK_PEER } from "../../agent/gateway/peer.ts";

/** A relay mux and a host mux wired together in memory; every host stream becomes a ClientSocket. */
function pair(limits: { initialWindow?: number; chunkBytes?: number } = {}) {
  const sockets: ClientSocket[] = [];
  let host: LinkMux;
  const relay = new LinkMux({ role: "relay", send: (f) => host.receive(f), limits });
  host = new LinkMux({
    role: "host",
    send: (f) => relay.receive(f),
    limits,
    onOpen: (s) => void sockets.push(linkStreamSocket(s)),
  });
  const open = (): { client: LinkStream; socket: ClientSocket } => {
    const client = relay.openStream({ kind: "ws", path: "/", headers: {}, clientAddr: "192.0.2.1" });
    return { client, socket: sockets[sockets.length - 1]! };
  };
  return { relay, host, open };
}

test("messages arrive whole, with their UTF-8 size", () => {
  const { open } = pair();
  const { client, socket } = open();
  const got: InboundMessage[] = [];
  socket.onmessage = (m) => got.push(m);
  client.sendMessage("héllo");
  client.sendMessage(new Uint8Array([1, 2, 3]));
  assert.equal(got.length, 2);
  assert.equal(got[0]!.text(), "héllo");
  assert.equal(got[0]!.bytes, 6);
  assert.equal(got[0]!.binary, false);
  assert.equal(got[1]!.binary, true);
  assert.equal(got[1]!.bytes, 3);
});

test("the message cap refuses an oversize message with 1009 before it is reassembled", () => {
  const { open } = pair({ chunkBytes: 1024 });
  const { client, socket } = open();
  assert.equal(socket.limitMessageBytes(4096), true);
  let messages = 0;
  let closes = 0;
  let code = 0;
  socket.onmessage = () => messages++;
  socket.onclose = () => closes++;
  client.onClose = (c) => (code = c);
  client.sendMessage("x".repeat(4096));
  assert.equal(messages, 1, "at the cap is fine");
  client.sendMessage("x".repeat(4097));
  assert.equal(messages, 1, "over the cap never reaches the gateway");
  assert.equal(code, 1009);
  assert.equal(closes, 1);
  assert.equal(socket.open, false);
});

test("close is heard once, after our own close or the peer's", async () => {
  const { open } = pair();
  const a = open();
  let closesA = 0;
  let codeA = 0;
  a.socket.onclose = () => closesA++;
  a.client.onClose = (c) => (codeA = c);
  a.socket.close(4401, "token revoked");
  a.socket.terminate();
  await new Promise((r) => setImmediate(r));
  assert.equal(closesA, 1);
  assert.equal(codeA, 4401, "the client gets the gateway's code");
  const b = open();
  let closesB = 0;
  b.socket.onclose = () => closesB++;
  b.client.close(1000, "bye");
  await new Promise((r) => setImmediate(r));
  assert.equal(closesB, 1);
  assert.equal(b.socket.open, false);
});

test("bytes waiting for the client's credit are the socket's bufferedAmount", () => {
  const { open } = pair({ initialWindow: 1024, chunkBytes: 512 });
  const { client, socket } = open();
  // The client holds what it gets: no credit comes back for it.
  const held: (() => void)[] = [];
  client.onMessage = (_d, _b, release) => void held.push(release);
  for (let i = 0; i < 4; i++) socket.send("y".repeat(1000));
  assert.ok(socket.bufferedAmount > 0 && socket.bufferedAmount < 4000, `buffered ${socket.bufferedAmount}`);
  for (let i = 0; i < 10 && held.length > 0; i++) for (const r of held.splice(0)) r();
  assert.equal(socket.bufferedAmount, 0, "all sent once the client reads");
});

test("a linked peer is forwarded and never local, whatever headers it carries", () => {
  const forged = {
    "x-forwarded-for": "127.0.0.1",
    "x-loopgate-relay": "1",
    "x-forwarded-host": "relay.example",
    "x-loopgate-client-token": "eyJ.x.y",
    origin: "https://relay.example",
  };
  const p = linkedPeerInfo(forged);
  assert.equal(p.local, false);
  assert.equal(p.forwarded, true);
  assert.equal(p.remoteAddr, LINK_PEER);
  assert.equal(p.clientAddr, "127.0.0.1", "the relay's claim, for rate limits and logs only");
  assert.equal(p.edgeToken, "eyJ.x.y");
  assert.equal(p.relayHost, "relay.example");
  assert.equal(p.origin, "https://relay.example");
  assert.equal(linkedPeerInfo({ "x-forwarded-for": "unknown" }).clientAddr, "unknown");
  assert.equal(
    linkedPeerInfo({ "x-forwarded-host": "relay.example" }).relayHost,
    undefined,
    "a relay host only with the link's own marker",
  );
});
