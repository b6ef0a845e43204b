/**
 * The gateway's own in-process link hands each relayed WebSocket straight to
 * the gateway: no loopback socket per relayed client (counted in the kernel's
 * table of established TCP connections), and each relayed client gets exactly
 * its token's scopes, never a local client's trust.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { writeFileSync } from "node:fs";
import {
  startRelay,
  makeHost,
  startLinkedGateway,
  mintToken,
  waitForLog,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import { TestClient, connectedClient } from "../helpers/ws-client.ts";
import { startGateway, type GatewayProc } from "../helpers/proc.ts";
import { Agent, request as undiciRequest } from "undici";

const CLIENTS = 20;

/** Established TCP connections whose local port is `port` (the accepted ends of a server's connections), from /proc/net/tcp{,6}. */
function acceptedConnections(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port, f[3] state (01 = ESTABLISHED)
      if (f.length > 3 && f[1]!.endsWith(`:${hexPort}`) && f[3] === "01") n++;
    }
  }
  return n;
}

function relayed(relay: RelayProc, host: Host, token: string): TestClient {
  // The relay's self-signed certificate: pinning is tested elsewhere; here only the path matters.
  return new TestClient(`${relay.url}/h/${host.hostId}`, {
    rejectUnauthorized: false,
    headers: { authorization: `Bearer ${token}` },
  });
}

describe("the gateway's in-process link", {
  skip: existsSync("/proc/net/tcp") ? false : "needs /proc/net/tcp to count sockets",
}, () => {
  let relay: RelayProc;
  let host: Host;
  let gw: GatewayProc;
  let readOnly: string;
  before(async () => {
    host = await makeHost();
    relay = await startRelay("node", { allowHosts: [host.hostId] });
    gw = await startLinkedGateway(host, relay);
    readOnly = (await mintToken(host, relay, ["--scopes", "operator.read"])).token;
  });
  after(async () => {
    await gw?.kill();
    await relay?.kill();
  });

  test(`${CLIENTS} relayed clients open no socket to the gateway, and get exactly their token's scopes`, async () => {
    const before = acceptedConnections(gw.port);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) {
        const c = relayed(relay, host, readOnly);
        clients.push(c);
        await c.opened();
        await c.waitFor((f) => f.event === "connect.challenge");
        // Asks for everything; a relayed client may only have what its token grants.
        const hello = await c.connect(
          { token: readOnly },
          { scopes: ["operator.admin", "operator.write", "operator.read"] },
        );
        assert.equal(hello.ok, true, JSON.stringify(hello.error));
        assert.deepEqual(hello.payload.auth.scopes, ["operator.read"]);
      }
      assert.equal(acceptedConnections(gw.port), before, "no loopback connection per relayed client");
      // They are all in the gateway, relayed: its own status says so to a local admin.
      const token = readFileSync(String(gw.ready.tokenPath), "utf8").trim();
      const admin = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token });
      try {
        const status = await admin.request("status");
        assert.equal(status.payload.connections.ready, CLIENTS + 1);
      } finally {
        admin.close();
      }
      const c = clients[0]!;
      assert.equal((await c.request("health")).ok, true, "a read method works");
      const denied = await c.request("loopgate.tokens.list");
      assert.equal(denied.ok, false, "an admin method is refused to a read-only token");
      assert.match(JSON.stringify(denied.error), /operator\.admin/);
    } finally {
      for (const c of clients) c.close();
    }
    // Closing relayed clients closes their gateway connections (no socket involved either way).
    const token = readFileSync(String(gw.ready.tokenPath), "utf8").trim();
    const admin = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token });
    try {
      let ready = -1;
      for (let i = 0; i < 100 && ready !== 1; i++) {
        ready = (await admin.request("status")).payload.connections.ready as number;
        if (ready !== 1) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(ready, 1, "only the local admin is left");
    } finally {
      admin.close();
    }
  });

  test("relayed HTTP is answered in the gateway: no loopback socket, the same bytes as direct, never local trust", async () => {
    const base = relay.url.replace(/^wss:/, "https:");
    const agent = new Agent({ connect: { rejectUnauthorized: false }, connections: 8 });
    const auth = { authorization: `Bearer ${readOnly}` };
    try {
      const paths = ["/", "/app.js", "/app.css"];
      const direct = new Map<string, { type: string | null; body: Buffer }>();
      for (const path of paths) {
        const r = await fetch(`http://127.0.0.1:${gw.port}${path}`);
        direct.set(path, { type: r.headers.get("content-type"), body: Buffer.from(await r.arrayBuffer()) });
      }
      // Counted after the direct requests: their kept-alive connection stays open.
      const before = acceptedConnections(gw.port);
      for (const path of paths) {
        const viaRelay = await undiciRequest(`${base}/h/${host.hostId}${path}`, { dispatcher: agent, headers: auth });
        assert.equal(viaRelay.statusCode, 200, path);
        assert.equal(viaRelay.headers["content-type"], direct.get(path)?.type, path);
        assert.deepEqual(
          Buffer.from(await viaRelay.body.arrayBuffer()),
          direct.get(path)?.body,
          `${path} byte for byte`,
        );
      }
      const head = await undiciRequest(`${base}/h/${host.hostId}/app.js`, {
        dispatcher: agent,
        method: "HEAD",
        headers: auth,
      });
      assert.equal(head.statusCode, 200);
      assert.equal((await head.body.arrayBuffer()).byteLength, 0, "HEAD has no body");
      // Eight at once: a loopback forwarder would need several connections to the gateway for them.
      const burst = await Promise.all(
        Array.from({ length: 8 }, () =>
          undiciRequest(`${base}/h/${host.hostId}/app.js`, { dispatcher: agent, headers: auth }).then(async (r) => {
            await r.body.arrayBuffer();
            return r.statusCode;
          }),
        ),
      );
      assert.deepEqual(burst, Array(8).fill(200));
      assert.equal(acceptedConnections(gw.port), before, "no loopback connection per relayed request");
      // The HTTP API: a relayed request is forwarded, never local, so it needs a token the gateway accepts.
      const status = await undiciRequest(`${base}/h/${host.hostId}/api/status`, { dispatcher: agent, headers: auth });
      assert.equal(status.statusCode, 401, "the relay's token is not the gateway's bearer, and relayed is not local");
      await status.body.arrayBuffer();
      const token = readFileSync(String(gw.ready.tokenPath), "utf8").trim();
      const local = await fetch(`http://127.0.0.1:${gw.port}/api/status`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(local.status, 200, "the same endpoint answers a local request with the gateway's token");
      await local.arrayBuffer();
    } finally {
      await agent.close();
    }
  });

  test("a relayed WebSocket to another path than / is refused before any frame, as an upgrade there is", async () => {
    const c = new TestClient(`${relay.url}/h/${host.hostId}/elsewhere`, {
      rejectUnauthorized: false,
      headers: { authorization: `Bearer ${readOnly}` },
    });
    const closed = await Promise.race([
      c.closed,
      new Promise<{ code: number; reason: string }>((r) =>
        setTimeout(() => r({ code: 0, reason: "still open after 10 s" }), 10_000).unref(),
      ),
    ]);
    assert.equal(closed.code, 1008, `closed ${closed.code} ${closed.reason}`);
    assert.equal(c.frames.length, 0, "no challenge");
  });

  test("a relayed first message over the pre-auth cap is refused with 1009", async () => {
    const c = relayed(relay, host, readOnly);
    await c.opened();
    await c.waitFor((f) => f.event === "connect.challenge");
    c.sendRaw("x".repeat(70 * 1024));
    const closed = await Promise.race([
      c.closed,
      new Promise<{ code: number; reason: string }>((r) =>
        setTimeout(() => r({ code: 0, reason: "still open after 10 s" }), 10_000).unref(),
      ),
    ]);
    assert.equal(closed.code, 1009);
  });

  test("a relayed text message that is not UTF-8 closes its stream with 1007 (the relay passes text on in pieces)", async () => {
    const c = relayed(relay, host, readOnly);
    await c.opened();
    await c.waitFor((f) => f.event === "connect.challenge");
    c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const closed = await Promise.race([
      c.closed,
      new Promise<{ code: number; reason: string }>((r) =>
        setTimeout(() => r({ code: 0, reason: "still open after 10 s" }), 10_000).unref(),
      ),
    ]);
    assert.equal(closed.code, 1007, closed.reason);
  });
});

describe("the gateway's in-process link at its connection cap", () => {
  test("a relayed client over gateway.limits.maxConnections is closed with 1013; the others keep working", async () => {
    const host = await makeHost();
    const relay = await startRelay("node", { allowHosts: [host.hostId] });
    const config = {
      gateway: { limits: { maxConnections: 3 }, relay: { enabled: true, url: relay.url, tlsFingerprint: relay.pin } },
    };
    writeFileSync(host.env.LOOPGATE_CONFIG!, JSON.stringify(config));
    const gw = await startGateway({ env: host.env, config });
    const clients: TestClient[] = [];
    try {
      await waitForLog(gw, /relay link linked/);
      const token = (await mintToken(host, relay)).token;
      for (let i = 0; i < 3; i++) {
        const c = relayed(relay, host, token);
        clients.push(c);
        await c.opened();
        await c.waitFor((f) => f.event === "connect.challenge");
      }
      const over = relayed(relay, host, token);
      clients.push(over);
      const closed = await Promise.race([
        over.closed,
        new Promise<{ code: number; reason: string }>((r) =>
          setTimeout(() => r({ code: 0, reason: "still open after 10 s" }), 10_000).unref(),
        ),
      ]);
      assert.equal(closed.code, 1013, `closed ${closed.code} ${closed.reason}`);
      assert.match(closed.reason, /too many connections/);
      assert.equal(over.frames.length, 0, "it never saw the gateway's challenge");
      const first = clients[0]!;
      assert.equal(
        (await first.connect({ token }, { scopes: ["operator.read"] })).ok,
        true,
        "the ones inside still work",
      );
    } finally {
      for (const c of clients) c.close();
      await gw.kill();
      await relay.kill();
    }
  });
});
