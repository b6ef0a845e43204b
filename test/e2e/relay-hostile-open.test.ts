/**
 * Hostile requests and a hostile relay, end to end:
 * - raw requests that used to drop a host's link (an encoded host id, a long
 *   path or query, M-SEARCH, an oversized header) are refused by the Node and
 *   the Workers relay with a clear status, reach nothing, and the host's
 *   clients keep working on the same link;
 * - a fake relay speaking the link protocol straight to the host's connector
 *   sends bad OPENs (each fails its stream with 1008, the link stays) and an
 *   OPEN without forwarding headers to an `auth: none` gateway, which must not
 *   take it for a local client.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";
import { LinkMux } from "../../shared/link/mux.ts";
import { FrameType, MAX_FRAME_BYTES } from "../../shared/link/codec.ts";
import { LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";
import { LinkConnector } from "../../agent/link/connector.ts";
import { generateKeyPair, exportJWK, type CryptoKey } from "jose";
import {
  hostIdFromJwk,
  checkHostPublicJwk,
  signLinkToken,
  mintClientToken,
  relayAudience,
} from "../../shared/tokens.ts";
import type { HostIdentity } from "../../agent/identity.ts";
import { createLogger } from "../../agent/log/logger.ts";
import { startGateway, tempDir } from "../helpers/proc.ts";
import { createServer as createHttpsServer } from "node:https";
import { loadOrCreateRelayCert } from "../../relay/node/certificate.ts";
import { TestClient } from "../helpers/ws-client.ts";
import { echoOnce, hostKeys, rawHttps } from "../helpers/relay-client.ts";
import {
  startRelay,
  makeHost,
  startLinkedGateway,
  startEchoRig,
  mintToken,
  RELAY_KINDS,
  skipUnlessRunnable,
  type RelayProc,
  type EchoUpstream,
  type Host,
} from "../helpers/relay.ts";
import type { Proc } from "../helpers/proc.ts";

async function freshIdentity(): Promise<HostIdentity> {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = checkHostPublicJwk(await exportJWK(publicKey));
  return { hostId: await hostIdFromJwk(publicJwk), privateKey: privateKey as CryptoKey, publicJwk };
}

type GwFrame = {
  type?: string;
  event?: string;
  id?: string;
  ok?: boolean;
  payload?: { auth?: { scopes?: string[] } };
  error?: { details?: { code?: string } };
};
const CONNECT_ADMIN = JSON.stringify({
  type: "req",
  id: "c1",
  method: "connect",
  params: {
    minProtocol: 4,
    maxProtocol: 4,
    client: { id: "test", version: "0.0.0", platform: "linux", mode: "test" },
    role: "operator",
    scopes: ["operator.admin"],
    auth: {},
  },
});

/** As a relay: opens a stream (by default with no forwarding headers) and asks the gateway for admin with no credential. */
async function connectThrough(
  mux: LinkMux,
  headers: Record<string, string> = {},
  clientAddr = "127.0.0.1",
): Promise<GwFrame> {
  const stream = mux.openStream({ kind: "ws", path: "/", headers, clientAddr });
  const frames: GwFrame[] = [];
  stream.onMessage = (d, _b, release) => {
    frames.push(JSON.parse(String(d)) as GwFrame);
    release();
  };
  const waitFor = async (pred: (f: GwFrame) => boolean) => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const f = frames.find(pred);
      if (f) return f;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("timed out; got " + JSON.stringify(frames).slice(0, 500));
  };
  await waitFor((f) => f.event === "connect.challenge");
  stream.sendMessage(CONNECT_ADMIN);
  return waitFor((f) => f.id === "c1");
}

for (const kind of RELAY_KINDS) {
  describe(
    `requests that used to drop a host's link, at the ${kind} relay`,
    skipUnlessRunnable(kind, "the hostile-request run"),
    () => {
      let relay: RelayProc;
      let host: Host;
      let echo: EchoUpstream;
      let link: Proc;
      let token: string;
      const caps =
        kind === "node"
          ? ["--max-streams-per-token", "3", "--max-streams-per-addr", "5"]
          : ["--var", "MAX_STREAMS_PER_TOKEN:3", "--var", "MAX_STREAMS_PER_ADDR:5"];
      before(async () => {
        ({ relay, host, echo, link, token } = await startEchoRig(kind, caps));
      });
      after(async () => {
        await link?.kill();
        await relay?.kill();
        await echo?.close();
      });

      test("each is refused with a clear status and the link stays up for everyone", async () => {
        const id = host.hostId;
        const encodedId =
          id.slice(0, -1) +
          "%" +
          id
            .charCodeAt(id.length - 1)
            .toString(16)
            .toUpperCase();
        const auth = `Authorization: Bearer ${token}\r\n`;
        const req = (method: string, target: string, extra = "") =>
          `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\nConnection: close\r\n${auth}${extra}\r\n`;
        const upgrade =
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        const opensBefore = echo.opens.length;
        const cases: [string, string, number[]][] = [
          ["encoded host id (HTTP)", req("GET", `/h/${encodedId}/x`), [400]],
          ["encoded host id (WebSocket)", req("GET", `/h/${encodedId}`, upgrade), [400]],
          ["path over 4096 bytes", req("GET", `/h/${id}/${"p".repeat(5000)}`), [414]],
          ["query over 8192 bytes", req("GET", `/h/${id}/x?q=${"q".repeat(9000)}`), [414]],
          // Under wrangler dev the local proxy answers an unknown method itself (501) before the Worker sees it.
          ["method M-SEARCH", req("M-SEARCH", `/h/${id}/x`), kind === "workers" ? [405, 501] : [405]],
          ["oversized header", req("GET", `/h/${id}/x`, `User-Agent: ${"u".repeat(5000)}\r\n`), [431]],
        ];
        for (const [name, head, want] of cases) {
          for (let i = 0; i < 3; i++) {
            const r = await rawHttps(relay, head);
            assert.ok(want.includes(r.status), `${name}: got ${r.status} ${r.body.trim()}, wanted ${want.join("/")}`);
          }
        }
        assert.equal(echo.opens.length, opensBefore, "none of them reached the host's gateway");
        assert.equal(await echoOnce(relay, id, token, "still here?"), "still here?", "the host is still reachable");
        const lines = [...link.stderr, ...link.stdout].join("\n");
        assert.doesNotMatch(lines, /malformed frame|relay link backoff/, "the host's link never dropped");
        assert.equal(lines.match(/relay link linked/g)?.length, 1, "linked once, never again");
      });

      test("one token, or one address, cannot take every stream slot of a host", async () => {
        const open = async (tok: string) => {
          let ws;
          try {
            ws = await openWebSocket(`${relay.url}/h/${host.hostId}`, {
              pins: [relay.pin],
              headers: { authorization: `Bearer ${tok}` },
              timeoutMs: 10_000,
            });
          } catch (e) {
            // Over a cap: refused before the upgrade (429, the reason in the body).
            const d = (e as { details?: { status?: number; body?: string } }).details;
            return { ws: undefined, outcome: `refused ${d?.status} ${String(d?.body ?? (e as Error).message)}` };
          }
          // An accepted stream echoes; a refused one is closed by the relay right after the upgrade.
          const outcome = await new Promise<string>((resolve) => {
            ws.once("message", (d) => resolve(`echo ${String(d)}`));
            ws.once("close", (code, reason) => resolve(`closed ${code} ${String(reason)}`));
            ws.send("hi");
          });
          return { ws, outcome };
        };
        const second = (await mintToken(host, relay)).token;
        const third = (await mintToken(host, relay)).token;
        const held = [];
        for (let i = 0; i < 3; i++) held.push(await open(token));
        assert.deepEqual(
          held.map((h) => h.outcome),
          ["echo hi", "echo hi", "echo hi"],
        );
        const over = await open(token);
        assert.match(over.outcome, /^refused 429 .*too many streams for this token/);
        // Another token from the same address still gets in, up to the address cap (5).
        for (let i = 0; i < 2; i++) held.push(await open(second));
        assert.deepEqual(
          held.slice(3).map((h) => h.outcome),
          ["echo hi", "echo hi"],
        );
        const overAddr = await open(third);
        assert.match(overAddr.outcome, /^refused 429 .*too many streams from this address/);
        // Slots come back when streams close.
        held[0]!.ws!.close();
        await new Promise((r) => setTimeout(r, 300));
        const again = await open(third);
        assert.equal(again.outcome, "echo hi");
        for (const h of [...held, again]) h.ws?.close();
      });

      // Last: it replaces the host's link once (the real one relinks by itself).
      test("audiences come from configuration, not Host; a link token links once", async () => {
        const { privateKey: key, publicJwk } = await hostKeys(host);
        const pub = checkHostPublicJwk(publicJwk);
        const elsewhere = "https://relay-b.example:8443";
        // A client token for another relay, sent with that relay's name as Host.
        const forB = (
          await mintClientToken(key, host.hostId, { audience: elsewhere, ttlSec: 600, scopes: ["operator.read"] })
        ).token;
        const spoof = await rawHttps(
          relay,
          `GET /h/${host.hostId}/ HTTP/1.1\r\nHost: relay-b.example:8443\r\nConnection: close\r\nAuthorization: Bearer ${forB}\r\n\r\n`,
        );
        assert.equal(spoof.status, 403, `a token for another relay: ${spoof.status} ${spoof.body.trim()}`);
        // A link token for another relay, with that Host: refused.
        const linkForB = await signLinkToken(key, pub, host.hostId, elsewhere);
        const linkSpoof = await rawHttps(
          relay,
          `GET /link HTTP/1.1\r\nHost: relay-b.example:8443\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${linkForB}\r\n\r\n`,
        );
        assert.equal(
          linkSpoof.status,
          401,
          `a link token for another relay: ${linkSpoof.status} ${linkSpoof.body.trim()}`,
        );
        // A good link token works once; its replay is refused.
        const lt = await signLinkToken(key, pub, host.hostId, relayAudience(relay.url));
        const first = await openWebSocket(`${relay.url}/link`, {
          pins: [relay.pin],
          headers: { authorization: `Bearer ${lt}` },
          timeoutMs: 10_000,
        });
        first.close();
        const replay = await openWebSocket(`${relay.url}/link`, {
          pins: [relay.pin],
          headers: { authorization: `Bearer ${lt}` },
          timeoutMs: 10_000,
        }).then(
          (ws) => (ws.close(), "open"),
          (e: { details?: { status?: number } }) => e.details?.status,
        );
        assert.equal(replay, 401, "the replayed link token is refused");
      });
    },
  );
}

describe("a hostile relay speaking straight to the host's connector", () => {
  let wss: WebSocketServer;
  let relaySide: Promise<{ ws: WsSocket; mux: LinkMux; closed: Promise<number> }>;
  let connector: LinkConnector;
  let gw: Awaited<ReturnType<typeof startGateway>>;
  before(async () => {
    gw = await startGateway({ args: ["--auth", "none"] });
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    const port = (wss.address() as { port: number }).port;
    relaySide = new Promise((resolve) => {
      wss.once("connection", (ws) => {
        const mux = new LinkMux({ role: "relay", send: (f) => ws.send(f) });
        const closed = new Promise<number>((r) => ws.once("close", (c) => r(c)));
        ws.on("message", (d, isBinary) => {
          if (!isBinary) return String(d) === LINK_PING_TEXT ? ws.send(LINK_PONG_TEXT) : undefined;
          const b = d as Buffer;
          mux.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
        });
        resolve({ ws, mux, closed });
      });
    });
    // A relay URL without TLS is only possible in-process (loopgate link refuses it): this is the fake relay.
    connector = new LinkConnector({
      relayUrl: `ws://127.0.0.1:${port}`,
      pins: [],
      upstream: `ws://127.0.0.1:${gw.port}`,
      identity: await freshIdentity(),
      log: createLogger({ json: true, write: () => {} }),
    });
    connector.start();
    const deadline = Date.now() + 10_000;
    while (connector.state !== "linked" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(connector.state, "linked");
    // The connector pushes its revocation list once linked: then it is surely listening.
    await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    await connector?.stop();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    await gw?.kill();
  });

  test("bad OPENs fail their own streams with 1008; the link stays", async () => {
    const { ws, mux, closed } = await relaySide;
    let linkClosed = false;
    void closed.then(() => (linkClosed = true));
    const rawOpen = (id: number, meta: unknown) => {
      const body = Buffer.from(JSON.stringify(meta));
      const b = Buffer.alloc(5 + body.length);
      b[0] = FrameType.OPEN;
      b.writeUInt32BE(id, 1);
      body.copy(b, 5);
      ws.send(b);
    };
    // Stream ids far from the ones the mux will allocate.
    const bad = [
      { kind: "http", method: "M-SEARCH", path: "/", headers: {}, clientAddr: "203.0.113.7" },
      { kind: "http", path: "/" + "p".repeat(5000), headers: {}, clientAddr: "203.0.113.7" },
      { kind: "http", path: "/", query: "q".repeat(9000), headers: {}, clientAddr: "203.0.113.7" },
      { kind: "ws", path: "Q/x", headers: {}, clientAddr: "203.0.113.7" },
      { kind: "ws", path: "/", headers: { "user-agent": "\u0001" }, clientAddr: "203.0.113.7" },
    ];
    const codes = new Map<number, number>();
    const wanted = bad.map((_, i) => 1000 + i);
    for (const id of wanted) mux.restoreStream(id).onClose = (code) => codes.set(id, code);
    bad.forEach((m, i) => rawOpen(1000 + i, m));
    const deadline = Date.now() + 5000;
    while (codes.size < wanted.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      [...codes.values()],
      wanted.map(() => 1008),
      "each bad OPEN was refused on its own stream",
    );
    assert.equal(linkClosed, false, "the link is still up");
    assert.equal(connector.state, "linked");
  });

  test("an OPEN without forwarding headers does not get local trust at an auth-none gateway", async () => {
    const { mux } = await relaySide;
    const res = await connectThrough(mux);
    assert.ok(
      !res.ok || !(res.payload?.auth?.scopes ?? []).includes("operator.admin"),
      `a relayed stream got local trust: ${JSON.stringify(res).slice(0, 300)}`,
    );
    assert.equal(res.ok, false);
    assert.equal(res.error?.details?.code, "AUTH_REQUIRED");
  });

  // Last here: it ends the link (the connector then retries, unanswered).
  test("a message larger than any link frame closes the link with 1009, at its header", async () => {
    const { ws, closed } = await relaySide;
    ws.send(Buffer.alloc(MAX_FRAME_BYTES + 64 * 1024));
    assert.equal(await closed, 1009);
  });
});

describe("a hostile relay linked by the gateway's own in-process link", () => {
  test("a header-less OPEN is not local at an auth-none gateway; a bad OPEN fails only its stream", async () => {
    const dir = tempDir("loopgate-fake-relay-");
    const cert = await loadOrCreateRelayCert(dir);
    const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem });
    const wss = new WebSocketServer({ server });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const linked = new Promise<{ mux: LinkMux; closed: () => boolean }>((resolve) => {
      wss.once("connection", (ws) => {
        let closed = false;
        ws.once("close", () => (closed = true));
        const mux = new LinkMux({ role: "relay", send: (f) => ws.send(f) });
        ws.on("message", (d, isBinary) => {
          if (!isBinary) return String(d) === LINK_PING_TEXT ? ws.send(LINK_PONG_TEXT) : undefined;
          const b = d as Buffer;
          mux.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
        });
        resolve({ mux, closed: () => closed });
      });
    });
    const host = await makeHost();
    const gw = await startLinkedGateway(host, { url: `wss://127.0.0.1:${port}`, pin: cert.pin }, ["--auth", "none"]);
    try {
      const { mux, closed } = await linked;
      await new Promise((r) => setTimeout(r, 100));
      // As a hostile relay: a raw OPEN (the relay's own mux would never send it) on an id far from its own.
      let badCode = 0;
      mux.restoreStream(1000).onClose = (code) => (badCode = code);
      const body = Buffer.from(
        JSON.stringify({ kind: "http", method: "M-SEARCH", path: "/", headers: {}, clientAddr: "203.0.113.7" }),
      );
      const frame = Buffer.alloc(5 + body.length);
      frame[0] = FrameType.OPEN;
      frame.writeUInt32BE(1000, 1);
      body.copy(frame, 5);
      for (const c of wss.clients) c.send(frame);
      const deadline = Date.now() + 5000;
      while (badCode !== 1008 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(badCode, 1008, "the bad OPEN was refused on its own stream");
      const res = await connectThrough(mux);
      assert.equal(res.ok, false, `a relayed stream got local trust: ${JSON.stringify(res).slice(0, 300)}`);
      assert.equal(res.error?.details?.code, "AUTH_REQUIRED");
      // Every header a relay could use to look local or proxied, and a loopback client address: still not local.
      const forged = {
        "x-loopgate-relay": "0",
        "x-forwarded-for": "127.0.0.1",
        "x-real-ip": "127.0.0.1",
        forwarded: "for=127.0.0.1",
        "x-forwarded-proto": "http",
        "tailscale-user-login": "owner@example.com",
      };
      for (const addr of ["127.0.0.1", "::1", "localhost"]) {
        const forgedRes = await connectThrough(mux, forged, addr);
        assert.equal(
          forgedRes.ok,
          false,
          `forged headers from ${addr} got local trust: ${JSON.stringify(forgedRes).slice(0, 300)}`,
        );
        assert.equal(forgedRes.error?.details?.code, "AUTH_REQUIRED");
      }
      // A browser Origin that is neither the gateway's nor the relay host the stream names: refused before any frame.
      const evil = mux.openStream({
        kind: "ws",
        path: "/",
        headers: { origin: "https://evil.example", "x-forwarded-host": "relay.example" },
        clientAddr: "203.0.113.7",
      });
      let evilCode = 0;
      let evilFrames = 0;
      evil.onMessage = (_d, _b, release) => (evilFrames++, release());
      evil.onClose = (code) => (evilCode = code);
      const until = Date.now() + 5000;
      while (evilCode === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(evilCode, 1008, "a foreign Origin is refused on its stream");
      assert.equal(evilFrames, 0, "and it never saw the gateway's challenge");
      // A relay passing a read-only client token with forged headers, while connect asks for admin: never more than the token's scopes.
      const readOnly = (
        await mintToken(host, { url: `wss://127.0.0.1:${port}`, pin: cert.pin }, ["--scopes", "operator.read"])
      ).token;
      const scoped = await connectThrough(mux, { "x-loopgate-client-token": readOnly, ...forged }, "127.0.0.1");
      assert.equal(scoped.ok, true, JSON.stringify(scoped).slice(0, 300));
      // connect asked for operator.admin only; the token allows operator.read only: nothing of both.
      assert.deepEqual(scoped.payload?.auth?.scopes, []);
      assert.equal(closed(), false, "the link is still up");
    } finally {
      await gw.kill();
      wss.close();
      server.close();
      server.closeAllConnections();
    }
  });
});

describe("a gateway linked to a relay accepts client tokens for that relay only", () => {
  test("a token minted for another relay is refused at the gateway, even on loopback", async () => {
    const host = await makeHost();
    const relay = await startRelay("node", { allowHosts: [host.hostId] });
    const gw = await startLinkedGateway(host, relay);
    try {
      const ours = await mintToken(host, relay);
      // Minted by the same host for a relay it is not linked to (no contact with it is needed).
      const theirs = await mintToken(host, { url: "wss://relay-b.example:8443", pin: relay.pin });
      const connect = async (token: string) => {
        const c = new TestClient(`ws://127.0.0.1:${gw.port}`);
        await c.opened();
        await c.waitFor((f) => f.event === "connect.challenge");
        const r = await c.connect({ token }, { scopes: ["operator.read"] });
        c.close();
        return r;
      };
      assert.equal((await connect(ours.token)).ok, true, "the linked relay's token works");
      const r = await connect(theirs.token);
      assert.equal(r.ok, false, "a token for another relay is refused");
    } finally {
      await gw.kill();
      await relay.kill();
    }
  });
});
