/**
 * Interop with the real OpenClaw CLI (opt-in: LOOPGATE_INTEROP=1): the
 * `openclaw` package's own CLI talks to our gateway over protocol v4.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type GatewayProc } from "../helpers/proc.ts";
import { interopEnabled, ensureOpenclaw, openclaw, lastJson } from "../helpers/openclaw.ts";

const skip = interopEnabled();
if (skip) console.warn(`# SKIP interop: ${skip}`);

describe("interop: the real openclaw CLI against loopgate's gateway", { skip }, () => {
  const TOKEN = "interop-token-0123456789";
  let gw: GatewayProc;
  before(async () => {
    ensureOpenclaw();
    gw = await startGateway({ args: ["--token", TOKEN] });
  });
  after(async () => {
    await gw?.kill();
  });

  test("openclaw gateway call health --url … --token … --json succeeds", async () => {
    const r = await openclaw(["gateway", "call", "health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", TOKEN, "--json"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const payload = lastJson(r.stdout);
    assert.equal(payload.ok, true);
    assert.equal(typeof payload.uptimeMs, "number");
  });

  test("openclaw gateway health with a wrong token fails", async () => {
    const r = await openclaw(["gateway", "call", "health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", "wrong", "--json"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /token mismatch|unauthorized/i);
  });
});

describe("interop: loopgate's CLI against the real openclaw gateway", { skip }, () => {
  const TOKEN = "real-gateway-token-0123456789";
  let stop: (() => Promise<void>) | undefined;
  let port = 0;
  before(async () => {
    const { freePort } = await import("../helpers/sshd.ts");
    const { startOpenclawGateway } = await import("../helpers/openclaw.ts");
    port = await freePort();
    stop = (await startOpenclawGateway(port, TOKEN)).stop;
  });
  after(async () => {
    await stop?.();
  });

  test("loopgate health, status --deep and gateway call work against it", async () => {
    const { cli, tempDir } = await import("../helpers/proc.ts");
    const dir = tempDir();
    const env = { HOME: dir, LOOPGATE_STATE_DIR: dir, LOOPGATE_CONFIG: "", OPENCLAW_GATEWAY_TOKEN: "" };
    const url = `ws://127.0.0.1:${port}`;
    const h = await cli(["health", "--url", url, "--token", TOKEN, "--timeout", "30000", "--json"], { env, timeoutMs: 40_000 });
    assert.equal(h.code, 0, h.stderr);
    const s = await cli(["status", "--deep", "--url", url, "--token", TOKEN, "--json"], { env });
    assert.equal(s.code, 0, s.stderr);
    const deep = JSON.parse(s.stdout).deep;
    assert.equal(deep.server.protocol, 4);
    assert.ok(deep.methods.includes("health"));
    const c = await cli(["gateway", "call", "health", "--url", url, "--token", TOKEN, "--json"], { env });
    assert.equal(c.code, 0, c.stderr);
    const bad = await cli(["health", "--url", url, "--token", "wrong"], { env });
    assert.equal(bad.code, 8, bad.stderr);
  });
});
