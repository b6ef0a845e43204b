/**
 * The link's side of exchange codes, against a fake relay that speaks the
 * link protocol and records CONTROL messages: pending codes go out when the
 * link comes up and when asked, each code once per process (a relay that
 * lost its memory must not get a spent code back on the next link), a code
 * minted while the link was down goes out on reconnect, and no log line
 * carries a code's token.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer, type WebSocket } from "ws";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { LinkMux } from "../../shared/link/mux.ts";
import { LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { hostIdFromJwk, checkHostPublicJwk } from "../../shared/tokens.ts";
import { LinkConnector } from "../../agent/link/connector.ts";
import { createLogger } from "../../agent/log/logger.ts";

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("pending exchange codes reach the relay once each: on link, on request, and those minted while the link was down", async () => {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  const identity = { hostId: await hostIdFromJwk(publicJwk), privateKey: privateKey as CryptoKey, publicJwk };
  const received: string[][] = [];
  const sockets: WebSocket[] = [];
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  wss.on("connection", (ws) => {
    sockets.push(ws);
    const m = new LinkMux({
      role: "relay",
      send: (f) => ws.send(f),
      onControl: (msg) => {
        if (msg.type === "exchange-codes") received.push((msg.codes as { hash: string }[]).map((c) => c.hash));
      },
    });
    ws.on("message", (d, isBinary) => {
      if (!isBinary) return String(d) === LINK_PING_TEXT ? ws.send(LINK_PONG_TEXT) : undefined;
      const b = d as Buffer;
      m.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
  });
  const pending = [{ hash: "h1", token: "secret-token-1", exp: Date.now() + 60_000 }];
  const logs: string[] = [];
  // A relay URL without TLS is only possible in-process (loopgate link refuses it): this is the fake relay.
  const connector = new LinkConnector({
    relayUrl: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    pins: [],
    upstream: "ws://127.0.0.1:9",
    identity,
    log: createLogger({ json: true, write: (l: string) => void logs.push(l) }),
    exchangeCodes: () => pending.filter((c) => c.exp > Date.now()),
    backoff: { baseMs: 20, maxMs: 50 },
  });
  try {
    connector.start();
    await until(() => received.length === 1);
    assert.deepEqual(received[0], ["h1"], "pending codes go out as the link comes up");

    pending.push({ hash: "h2", token: "secret-token-2", exp: Date.now() + 60_000 });
    connector.pushExchangeCodes();
    await until(() => received.length === 2);
    assert.deepEqual(received[1], ["h2"], "only the new one");

    // The relay side drops the link; a code is minted meanwhile; the link comes back.
    pending.push({ hash: "h3", token: "secret-token-3", exp: Date.now() + 60_000 });
    sockets[0]!.terminate();
    await until(() => sockets.length === 2 && connector.state === "linked");
    await until(() => received.length === 3);
    assert.deepEqual(received[2], ["h3"], "h1 and h2 are never sent again");
    connector.pushExchangeCodes();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received.length, 3, "nothing left to send");
    assert.ok(!logs.join("\n").includes("secret-token"), "no token in the link's logs");
    assert.ok(logs.some((l) => l.includes("exchange codes pushed")));
  } finally {
    await connector.stop();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});
