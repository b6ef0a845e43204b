/**
 * The gateway as a user runs it: a real `loopgate gateway run` process on
 * 127.0.0.1 port 0, real WebSockets.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { startGateway, cli, tempDir, type GatewayProc } from "../helpers/proc.ts";
import { TestClient, connectedClient } from "../helpers/ws-client.ts";
import { validateHelloOk } from "../helpers/schema.ts";

const TOKEN = "test-token-0123456789abcdef";

describe("gateway: protocol v4 over a real process", () => {
  let gw: GatewayProc;
  let url: string;
  before(async () => {
    gw = await startGateway({ args: ["--token", TOKEN] });
    url = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw.kill();
  });

  test("handshake: challenge first, then hello-ok that matches the published schema", async () => {
    const c = new TestClient(url);
    await c.opened();
    const challenge = await c.waitFor((f) => f.type === "event");
    assert.equal(challenge.event, "connect.challenge");
    assert.equal(typeof challenge.payload.nonce, "string");
    assert.equal(typeof challenge.payload.ts, "number");
    const res = await c.connect({ token: TOKEN });
    assert.equal(res.ok, true, JSON.stringify(res.error));
    assert.equal(res.payload.type, "hello-ok");
    assert.equal(res.payload.protocol, 4);
    assert.deepEqual(
      validateHelloOk(res.payload),
      [],
      "hello-ok must validate against @openclaw/gateway-protocol's HelloOk",
    );
    assert.ok(res.payload.features.methods.includes("health"));
    assert.ok(res.payload.features.methods.includes("status"));
    assert.equal(res.payload.policy.maxPayload > 65536, true);
    const health = await c.request("health");
    assert.equal(health.ok, true);
    assert.equal(health.payload.ok, true);
    assert.equal(typeof health.payload.uptimeMs, "number");
    const status = await c.request("status", {});
    assert.equal(status.ok, true);
    assert.equal(status.payload.bind, "loopback");
    assert.equal(status.payload.port, gw.port);
    assert.equal(status.payload.auth.mode, "token");
    assert.equal(status.payload.relay.enabled, false);
    c.close();
  });

  test("a wrong token is refused with a clear error and close 1008", async () => {
    const c = new TestClient(url);
    await c.opened();
    const res = await c.connect({ token: "wrong" });
    assert.equal(res.ok, false);
    assert.equal(res.error?.code, "INVALID_REQUEST");
    assert.match(res.error?.message ?? "", /token mismatch/);
    assert.equal(res.error?.details?.code, "AUTH_TOKEN_MISMATCH");
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
  });

  test("a missing token is refused as missing", async () => {
    const c = new TestClient(url);
    await c.opened();
    const res = await c.connect({});
    assert.equal(res.error?.details?.code, "AUTH_TOKEN_MISSING");
    assert.equal((await c.closed).code, 1008);
  });

  test("the first frame must be connect", async () => {
    const c = new TestClient(url);
    await c.opened();
    const res = await c.request("health");
    assert.equal(res.ok, false);
    assert.match(res.error?.message ?? "", /first request must be connect/);
    assert.equal((await c.closed).code, 1008);
  });

  test("garbage before connect closes with 1008", async () => {
    const c = new TestClient(url);
    await c.opened();
    c.sendRaw("{not json");
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /not valid JSON/);
  });

  test("a protocol range without v4 is refused with 1002", async () => {
    const c = new TestClient(url);
    await c.opened();
    const res = await c.connect({ token: TOKEN }, { minProtocol: 1, maxProtocol: 2 });
    assert.equal(res.ok, false);
    assert.equal(res.error?.details?.code, "PROTOCOL_MISMATCH");
    assert.equal((await c.closed).code, 1002);
  });

  test("a frame over 64 KiB before auth closes with 1009", async () => {
    const c = new TestClient(url);
    await c.opened();
    c.sendRaw(JSON.stringify({ type: "req", id: "x", method: "connect", params: { pad: "x".repeat(70 * 1024) } }));
    assert.equal((await c.closed).code, 1009);
  });

  test("after auth, frames up to policy.maxPayload pass and larger ones close with 1009", async () => {
    const c = await connectedClient(url, { token: TOKEN });
    const big = await c.request("health", { pad: "y".repeat(200 * 1024) });
    assert.equal(big.ok, true, "a 200 KiB frame after auth is within maxPayload");
    const hello = c.frames.find((f) => f.payload?.type === "hello-ok");
    const max = hello?.payload.policy.maxPayload as number;
    c.sendRaw(JSON.stringify({ type: "req", id: "huge", method: "health", params: { pad: "z".repeat(max + 1) } }));
    assert.equal((await c.closed).code, 1009);
  });

  test("an unknown method gets INVALID_REQUEST and the socket stays open", async () => {
    const c = await connectedClient(url, { token: TOKEN });
    const res = await c.request("no.such.method", {});
    assert.equal(res.ok, false);
    assert.equal(res.error?.code, "INVALID_REQUEST");
    assert.match(res.error?.message ?? "", /unknown method/);
    const health = await c.request("health");
    assert.equal(health.ok, true);
    c.close();
  });

  test("a method outside the granted scopes is FORBIDDEN with missing-scope details", async () => {
    const c = await connectedClient(url, { token: TOKEN }, { scopes: ["operator.pairing"] });
    const res = await c.request("health");
    assert.equal(res.ok, false);
    assert.equal(res.error?.code, "FORBIDDEN");
    assert.equal(res.error?.details?.code, "MISSING_SCOPE");
    assert.equal(res.error?.details?.missingScope, "operator.read");
    c.close();
  });

  test("malformed req after auth answers INVALID_REQUEST", async () => {
    const c = await connectedClient(url, { token: TOKEN });
    c.sendRaw(JSON.stringify({ type: "req", id: "m1", method: 42 }));
    const res = await c.waitFor((f) => f.id === "m1");
    assert.equal(res.ok, false);
    assert.equal(res.error?.code, "INVALID_REQUEST");
    c.close();
  });

  test("a page from another origin cannot open the WebSocket", async () => {
    const c = new TestClient(url, { headers: { Origin: "https://evil.example" } });
    await assert.rejects(c.opened(), /HTTP 403/);
  });

  test("ss -ltn shows the gateway on loopback only", async (t) => {
    let out: string;
    try {
      out = execFileSync("ss", ["-ltnH"], { encoding: "utf8" });
    } catch {
      t.skip("ss (iproute2) is not installed");
      return;
    }
    const mine = out.split("\n").filter((l) => new RegExp(`:${gw.port}\\s`).test(l + " "));
    assert.ok(mine.length >= 1, `gateway port ${gw.port} not found in ss output`);
    for (const l of mine) assert.match(l, /(127\.0\.0\.1|\[::1\]):\d+/, `non-loopback listener: ${l}`);
  });
});

describe("gateway: start-up rules", () => {
  test("a LAN bind without auth refuses to start", async () => {
    const dir = tempDir();
    const r = await cli(["gateway", "run", "--port", "0", "--bind", "lan", "--auth", "none"], {
      env: { LOOPGATE_STATE_DIR: dir, HOME: dir, OPENCLAW_GATEWAY_TOKEN: "" },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /BIND_REFUSED/);
    const r2 = await cli(["gateway", "run", "--port", "0", "--bind", "lan"], {
      env: { LOOPGATE_STATE_DIR: dir, HOME: dir, OPENCLAW_GATEWAY_TOKEN: "" },
    });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /BIND_REFUSED: bind lan exposes the gateway beyond loopback/);
  });

  test("an unknown config key is an error naming the key", async () => {
    const dir = tempDir();
    const cfg = join(dir, "c.json5");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(cfg, "{ gateway: { port: 1234, bnid: 'lan' } }");
    const r = await cli(["gateway", "run", "--config", cfg], { env: { LOOPGATE_STATE_DIR: dir, HOME: dir } });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /unknown key `gateway\.bnid`/);
    writeFileSync(cfg, "{ gateway: { port: 'abc' } }");
    const r2 = await cli(["gateway", "run", "--config", cfg], { env: { LOOPGATE_STATE_DIR: dir, HOME: dir } });
    assert.match(r2.stderr, /`gateway\.port` must be integer/);
  });

  test("an unresolved secret reference fails closed and names it", async () => {
    const dir = tempDir();
    const r = await cli(["gateway", "run", "--port", "0"], {
      env: { LOOPGATE_STATE_DIR: dir, HOME: dir, LOOPGATE_CONFIG: "", OPENCLAW_GATEWAY_TOKEN: "" },
    }).then(async () => {
      const cfg = join(dir, "c.json5");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(
        cfg,
        JSON.stringify({ gateway: { auth: { token: { source: "env", id: "LOOPGATE_TEST_MISSING_VAR" } } } }),
      );
      return cli(["gateway", "run", "--port", "0", "--config", cfg], {
        env: { LOOPGATE_STATE_DIR: dir, HOME: dir, OPENCLAW_GATEWAY_TOKEN: "" },
      });
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /SECRET_UNRESOLVED: gateway\.auth\.token .*LOOPGATE_TEST_MISSING_VAR/);
  });

  test("first start generates a token, stores it 0600, and never logs it", async () => {
    const gw = await startGateway();
    try {
      const path = join(gw.stateDir, "gateway-token");
      const token = readFileSync(path, "utf8").trim();
      assert.ok(token.length >= 32);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token });
      c.close();
      const logs = gw.stderr.join("\n") + gw.stdout.join("\n");
      assert.ok(logs.includes(path), "the log says where the token is");
      assert.ok(!logs.includes(token), "the token never appears in logs");
    } finally {
      await gw.kill();
    }
  });

  test("auth none is accepted on loopback for direct clients only", async () => {
    const gw = await startGateway({ args: ["--auth", "none"] });
    try {
      const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, {});
      c.close();
      const fwd = new TestClient(`ws://127.0.0.1:${gw.port}`, { headers: { "X-Forwarded-For": "203.0.113.9" } });
      await fwd.opened();
      const res = await fwd.connect({});
      assert.equal(res.ok, false, "a forwarded connection must not inherit loopback trust");
      assert.equal(res.error?.details?.code, "AUTH_REQUIRED");
    } finally {
      await gw.kill();
    }
  });

  test("wrong tokens from the owner's own loopback CLI never lock it out (exemptLoopback default)", async () => {
    const gw = await startGateway({
      args: ["--token", TOKEN],
      config: { gateway: { auth: { rateLimit: { maxFailures: 3, windowMs: 60000, lockoutMs: 60000 } } } },
    });
    try {
      const url = `ws://127.0.0.1:${gw.port}`;
      const failOnce = async (headers: Record<string, string>) => {
        const c = new TestClient(url, { headers });
        await c.opened();
        const r = await c.connect({ token: "bad" });
        await c.closed;
        return r.error?.details?.code as string;
      };
      for (let i = 0; i < 5; i++) assert.equal(await failOnce({}), "AUTH_TOKEN_MISMATCH");
      const ok = await connectedClient(url, { token: TOKEN });
      ok.close();
      // A relayed/proxied client is limited by the real address the proxy saw…
      const fwd = { "X-Forwarded-For": "203.0.113.9" };
      for (let i = 0; i < 3; i++) assert.equal(await failOnce(fwd), "AUTH_TOKEN_MISMATCH");
      assert.equal(await failOnce(fwd), "AUTH_RATE_LIMITED");
      assert.equal(
        await failOnce({ "X-Forwarded-For": "203.0.113.10" }),
        "AUTH_TOKEN_MISMATCH",
        "another real address is not affected",
      );
      // …and a web page on loopback (a browser Origin) per page origin, so it cannot brute-force the token.
      const page = { Origin: "http://127.0.0.1:5173" };
      for (let i = 0; i < 3; i++) assert.equal(await failOnce(page), "AUTH_TOKEN_MISMATCH");
      assert.equal(await failOnce(page), "AUTH_RATE_LIMITED");
      const cli = await connectedClient(url, { token: TOKEN });
      cli.close();
    } finally {
      await gw.kill();
    }
  });

  test("repeated auth failures from one peer are rate limited (exemptLoopback false)", async () => {
    const gw = await startGateway({
      args: ["--token", TOKEN],
      config: {
        gateway: { auth: { rateLimit: { maxFailures: 3, windowMs: 60000, lockoutMs: 60000, exemptLoopback: false } } },
      },
    });
    try {
      const url = `ws://127.0.0.1:${gw.port}`;
      for (let i = 0; i < 3; i++) {
        const c = new TestClient(url);
        await c.opened();
        const r = await c.connect({ token: "bad" + i });
        assert.equal(r.error?.details?.code, "AUTH_TOKEN_MISMATCH");
        await c.closed;
      }
      const c = new TestClient(url);
      await c.opened();
      const r = await c.connect({ token: TOKEN });
      assert.equal(r.ok, false, "even the right token waits out the lockout");
      assert.equal(r.error?.details?.code, "AUTH_RATE_LIMITED");
      assert.ok((r.error as { retryAfterMs?: number }).retryAfterMs! > 0);
      assert.equal((await c.closed).code, 1013);
    } finally {
      await gw.kill();
    }
  });

  test("SIGTERM closes clients with 1012 and exits 0", async () => {
    const gw = await startGateway({ args: ["--token", TOKEN] });
    const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
    const code = await gw.kill("SIGTERM");
    const closed = await c.closed;
    assert.equal(closed.code, 1012);
    assert.equal(code, 0);
  });
});
