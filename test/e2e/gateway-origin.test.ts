/**
 * DNS rebinding and hostile pages against a real `loopgate gateway run
 * --auth none` on loopback, with raw requests: the Host header must be a
 * name of this gateway, and a browser Origin must be one of its fixed
 * allowed origins (or a loopback page, for a direct local client).
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { startGateway, type GatewayProc } from "../helpers/proc.ts";
import { TestClient } from "../helpers/ws-client.ts";

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Opens the protocol WebSocket with these headers; resolves with hello-ok's scopes, or rejects with the HTTP status. */
async function wsConnect(port: number, headers: Record<string, string>): Promise<string[]> {
  const c = new TestClient(`ws://127.0.0.1:${port}/`, { headers });
  try {
    await c.opened();
    await c.waitFor((f) => f.event === "connect.challenge");
    const res = await c.connect({});
    if (!res.ok) throw new Error(`connect refused: ${JSON.stringify(res.error)}`);
    return res.payload.auth.scopes as string[];
  } finally {
    c.close();
  }
}

describe("gateway: Host and Origin on an auth none loopback gateway", () => {
  let gw: GatewayProc;
  before(async () => {
    gw = await startGateway({ args: ["--auth", "none"], config: { gateway: { allowedHosts: ["gw.test"] } } });
  });
  after(async () => {
    await gw?.kill();
  });

  test("a rebound name in Host is refused on HTTP (421), and the log names the key to add it to", async () => {
    const r = await get(gw.port, "/healthz", { Host: `evil.example:${gw.port}` });
    assert.equal(r.status, 421);
    assert.match(r.body, /gateway\.allowedHosts/);
    const line = await gw.waitForLine((l) => l.includes("Host not allowed"), 5000, "stderr");
    assert.match(line, /evil\.example/);
    assert.match(line, /gateway\.allowedHosts/);
  });

  test("a DNS-rebinding WebSocket upgrade (Host and Origin evil.example:PORT) gets no session", async () => {
    await assert.rejects(
      wsConnect(gw.port, { Host: `evil.example:${gw.port}`, Origin: `http://evil.example:${gw.port}` }),
      /HTTP 421/,
    );
  });

  test("an Origin that only matches a loopback Host is refused (403), and logged with the origin and key", async () => {
    await assert.rejects(wsConnect(gw.port, { Origin: `http://evil.example:${gw.port}` }), /HTTP 403/);
    const line = await gw.waitForLine((l) => l.includes("Origin not allowed"), 5000, "stderr");
    assert.match(line, /http:\/\/evil\.example/);
    assert.match(line, /gateway\.controlUi\.allowedOrigins/);
  });

  test("a page on another loopback port may connect (like OpenClaw)", async () => {
    const scopes = await wsConnect(gw.port, { Origin: "http://127.0.0.1:5173" });
    assert.ok(scopes.includes("operator.admin"));
    assert.ok((await wsConnect(gw.port, { Origin: "http://localhost:3000", Host: `localhost:${gw.port}` })).length > 0);
  });

  test("...but a *.localhost page does not get loopback trust", async () => {
    await assert.rejects(wsConnect(gw.port, { Origin: "https://somehost.localhost:8443" }), /HTTP 403/);
  });

  test("a configured name passes Host; loopback names pass on any port (ssh -L)", async () => {
    assert.equal((await get(gw.port, "/healthz", { Host: `gw.test:${gw.port}` })).status, 200);
    assert.equal((await get(gw.port, "/healthz", { Host: "127.0.0.1:9999" })).status, 200);
    assert.equal((await get(gw.port, "/healthz", { Host: "[::1]:9999" })).status, 200);
    assert.equal((await get(gw.port, "/healthz", { Host: "app.localhost" })).status, 421);
  });
});
