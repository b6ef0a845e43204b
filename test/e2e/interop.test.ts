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
