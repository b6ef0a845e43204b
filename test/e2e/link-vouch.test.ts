/**
 * The standalone link's vouch header end to end (`loopgate link
 * --vouch-header`), against a fake relay speaking the link protocol straight
 * to the host's connector and an echo upstream that records what it got:
 * a stream whose token verifies with the host key reaches the upstream named
 * by its token id, whatever copy of the header the relay sent; a stream
 * whose token does not verify never reaches the upstream (CLOSE 1008); what
 * the client sends while its token is checked arrives, in order.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer } from "ws";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import { LinkMux } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { hostIdFromJwk, checkHostPublicJwk, mintClientToken, relayAudience } from "../../shared/tokens.ts";
import { LinkConnector } from "../../agent/link/connector.ts";
import { Voucher } from "../../agent/link/vouch.ts";
import type { HostIdentity } from "../../agent/identity.ts";
import { createLogger } from "../../agent/log/logger.ts";
import { startEchoUpstream } from "../helpers/relay.ts";

const VOUCH = "x-loopgate-user";

async function freshIdentity(): Promise<HostIdentity> {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { hostId: await hostIdFromJwk(publicJwk), privateKey: privateKey as CryptoKey, publicJwk };
}

async function until<T>(what: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("the link vouches only for clients whose token the host key verifies", () => {
  let wss: WebSocketServer;
  let mux: Promise<LinkMux>;
  let connector: LinkConnector;
  let echo: Awaited<ReturnType<typeof startEchoUpstream>>;
  let host: HostIdentity;
  let relayUrl = "";
  const revoked = new Set<string>();
  before(async () => {
    echo = await startEchoUpstream();
    host = await freshIdentity();
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    relayUrl = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    mux = new Promise((resolve) => {
      wss.once("connection", (ws) => {
        const m = new LinkMux({ role: "relay", send: (f) => ws.send(f) });
        ws.on("message", (d, isBinary) => {
          if (!isBinary) return String(d) === LINK_PING_TEXT ? ws.send(LINK_PONG_TEXT) : undefined;
          const b = d as Buffer;
          m.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
        });
        resolve(m);
      });
    });
    // A relay URL without TLS is only possible in-process (loopgate link refuses it): this is the fake relay.
    const vouch = new Voucher({
      header: VOUCH,
      hostId: host.hostId,
      hostKey: host.publicJwk,
      relayUrl,
      isRevoked: (id) => revoked.has(id),
    });
    connector = new LinkConnector({
      relayUrl,
      pins: [],
      upstream: `ws://127.0.0.1:${echo.port}`,
      identity: host,
      log: createLogger({ json: true, write: () => {} }),
      vouch,
    });
    connector.start();
    await until(() => (connector.state === "linked" ? true : undefined));
  });
  after(async () => {
    await connector?.stop();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    await echo?.close();
  });

  const openWs = async (
    headers: Record<string, string>,
  ): Promise<{ stream: LinkStream; got: string[]; closed: () => number | undefined }> => {
    const stream = (await mux).openStream({ kind: "ws", path: "/", headers, clientAddr: "203.0.113.9" });
    const got: string[] = [];
    let code: number | undefined;
    stream.onMessage = (d, _b, release) => {
      got.push(String(d));
      release();
    };
    stream.onClose = (c) => (code = c);
    return { stream, got, closed: () => code };
  };
  const mint = async (key = host, audience = relayAudience(relayUrl)) =>
    mintClientToken(key.privateKey, key.hostId, { audience, ttlSec: 600, scopes: ["operator.read"] });

  test("a verified token: the upstream sees its id in the vouch header, never the relay's copy; early messages arrive in order", async () => {
    const { token, id } = await mint();
    const before = echo.opens.length;
    const { stream, got } = await openWs({ "x-loopgate-client-token": token, [VOUCH]: "admin@example.com" });
    // Sent at once, while the link is still verifying the token: held, then delivered.
    stream.sendMessage("first");
    stream.sendMessage("second");
    await until(() => (got.length >= 2 ? true : undefined));
    assert.deepEqual(got, ["first", "second"]);
    assert.equal(echo.opens.length, before + 1);
    assert.equal(echo.opens.at(-1)!.headers[VOUCH], id);
    assert.equal(echo.opens.at(-1)!.headers["x-loopgate-client-token"], undefined, "the relay token stops at the link");
    stream.close(1000, "done");
  });

  test("no token: the upstream gets no vouch header, whatever the relay sent", async () => {
    const before = echo.opens.length;
    const { stream, got } = await openWs({ [VOUCH]: "admin@example.com" });
    stream.sendMessage("hi");
    await until(() => (got.length >= 1 ? true : undefined));
    assert.equal(echo.opens.length, before + 1);
    assert.equal(echo.opens.at(-1)!.headers[VOUCH], undefined);
    stream.close(1000, "done");
  });

  test("another host's, another relay's or a revoked token: CLOSE 1008 and the upstream sees nothing", async () => {
    const revokedToken = await mint();
    revoked.add(revokedToken.id);
    const tokens = [
      (await mint(await freshIdentity())).token,
      (await mint(host, "https://other-relay.example.com")).token,
      revokedToken.token,
    ];
    const before = echo.opens.length;
    for (const token of tokens) {
      const { closed } = await openWs({ "x-loopgate-client-token": token, [VOUCH]: "admin@example.com" });
      assert.equal(await until(closed), 1008);
    }
    assert.equal(echo.opens.length, before, "no refused stream reached the upstream");
    assert.equal(connector.state, "linked", "the link stays up");
  });

  test("a plain HTTP request (no token, nothing reads a body) is answered and the link stays up", async () => {
    const stream = (await mux).openStream({
      kind: "http",
      method: "GET",
      path: "/",
      headers: { [VOUCH]: "admin@example.com" },
      clientAddr: "203.0.113.9",
    });
    let status: number | undefined;
    let closed: number | undefined;
    stream.onAccept = (info) => (status = info.status);
    stream.onClose = (c) => (closed = c);
    // The echo upstream speaks only WebSocket: any HTTP status shows the request went through.
    assert.equal(typeof (await until(() => status)), "number");
    await until(() => closed);
    assert.equal(connector.state, "linked");
  });
});
