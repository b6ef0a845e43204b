/**
 * Revoking a client token closes the gateway connections that authenticated
 * with it directly (say through `ssh -L`), not only its relayed streams.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, cli, tempDir, type GatewayProc } from "../helpers/proc.ts";
import { TestClient, connectedClient } from "../helpers/ws-client.ts";

const GATEWAY_TOKEN = "revoke-test-gateway-token-0123";

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref()),
  ]);
}

describe("gateway: token revocation reaches direct connections", () => {
  let gw: GatewayProc;
  let env: Record<string, string>;
  let minted: { id: string; token: string };
  before(async () => {
    const dir = tempDir();
    env = { LOOPGATE_STATE_DIR: dir, HOME: dir, LOOPGATE_CONFIG: "" };
    const r = await cli(["token", "create", "--relay", "wss://relay.test:8443", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    minted = JSON.parse(r.stdout) as { id: string; token: string };
    gw = await startGateway({ args: ["--token", GATEWAY_TOKEN], env: { LOOPGATE_STATE_DIR: dir, HOME: dir } });
  });
  after(async () => {
    await gw?.kill();
  });

  test("token revoke closes its open connection with 4401; others stay; it cannot connect again", async () => {
    const url = `ws://127.0.0.1:${gw.port}`;
    const byClientToken = await connectedClient(url, { token: minted.token });
    const byGatewayToken = await connectedClient(url, { token: GATEWAY_TOKEN });
    const r = await cli(["token", "revoke", minted.id, "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const closed = await within(byClientToken.closed, 5000, "the revoked token's connection was not closed");
    assert.equal(closed.code, 4401);
    assert.match(closed.reason, /revoked/);
    const health = await byGatewayToken.request("health");
    assert.equal(health.ok, true, "a connection with another credential is untouched");
    byGatewayToken.close();
    const again = new TestClient(url);
    await again.opened();
    const res = await again.connect({ token: minted.token });
    assert.equal(res.ok, false);
    again.close();
  });
});
