/**
 * The CLI as a user runs it, against a real gateway process: local use with
 * the stored token, exit codes, remote mode through an ssh -L tunnel, and
 * wss:// through a TLS terminator with pins.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startGateway, cli, isolatedEnv, type GatewayProc } from "../helpers/proc.ts";
import { startTlsTerminator, type Terminator } from "../helpers/tls-terminator.ts";
import { startSshTunnel, sshAvailable } from "../helpers/sshd.ts";
import { formatPin } from "../../shared/pin.ts";

describe("CLI against a local gateway", () => {
  let gw: GatewayProc;
  let env: Record<string, string>;
  let token: string;
  before(async () => {
    gw = await startGateway();
    token = (await import("node:fs")).readFileSync(join(gw.stateDir, "gateway-token"), "utf8").trim();
    env = { ...gw.env, OPENCLAW_GATEWAY_PORT: String(gw.port) };
  });
  after(() => gw.kill());

  test("loopgate health finds the stored token with no flags", async () => {
    const r = await cli(["health"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ok  ws://127\\.0\\.0\\.1:${gw.port}  [\\d.]+ ms  gateway `));
  });

  test("health --json and gateway call --json are stable JSON", async () => {
    const h = JSON.parse((await cli(["health", "--json"], { env })).stdout);
    assert.equal(h.ok, true);
    assert.equal(h.url, `ws://127.0.0.1:${gw.port}`);
    assert.equal(typeof h.rttMs, "number");
    assert.equal(h.health.ok, true);
    const c = await cli(["gateway", "call", "status", "--params", "{}", "--json"], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).bind, "loopback");
  });

  test("status --deep says where everything came from and never prints the token", async () => {
    const r = await cli(["status", "--deep", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout).deep;
    assert.equal(d.mode, "local");
    assert.equal(d.target.source, "env:OPENCLAW_GATEWAY_PORT");
    assert.equal(d.credential.token.source, "state:gateway-token");
    assert.equal(d.tls.pinned, false);
    assert.equal(d.server.protocol, 4);
    assert.ok(d.methods.includes("health"));
    const human = await cli(["status", "--deep"], { env });
    assert.match(human.stdout, /credential  token from state:gateway-token/);
    assert.ok(!r.stdout.includes(token) && !human.stdout.includes(token) && !human.stderr.includes(token));
  });

  test("exit codes and one-line reasons", async () => {
    const noCreds = await cli(["health", "--url", `ws://127.0.0.1:${gw.port}`], { env });
    assert.equal(noCreds.code, 3);
    assert.match(noCreds.stderr, /^loopgate: CREDENTIALS_MISSING: --url needs explicit credentials/);
    const bad = await cli(["health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", "wrong"], { env });
    assert.equal(bad.code, 8);
    assert.match(bad.stderr, /AUTH_REFUSED/);
    assert.equal(bad.stderr.trim().split("\n").length, 1, "one line");
    const good = await cli(["health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", token], { env });
    assert.equal(good.code, 0, good.stderr);
    const down = await cli(["health", "--url", "ws://127.0.0.1:1", "--token", "x", "--json"], { env });
    assert.equal(down.code, 6);
    assert.equal(JSON.parse(down.stdout).error.code, "UNREACHABLE");
    const unknown = await cli(["gateway", "call", "no.such"], { env });
    assert.equal(unknown.code, 10);
    const badParams = await cli(["gateway", "call", "health", "--params", "{nope"], { env });
    assert.equal(badParams.code, 2);
    const pinOnWs = await cli(
      ["health", "--url", `ws://127.0.0.1:${gw.port}`, "--token", token, "--tls-fingerprint", "ab".repeat(32)],
      { env },
    );
    assert.equal(pinOnWs.code, 2);
    assert.match(pinOnWs.stderr, /PIN_INVALID: a TLS fingerprint pin needs a wss:\/\/ URL/);
    const badTimeout = await cli(["health", "--timeout", "soon"], { env });
    assert.equal(badTimeout.code, 2);
  });

  test("--help works on every command", async () => {
    for (const args of [
      ["--help"],
      ["health", "--help"],
      ["status", "--help"],
      ["gateway", "--help"],
      ["gateway", "run", "--help"],
      ["gateway", "call", "--help"],
      ["gateway", "status", "--help"],
      ["gateway", "health", "--help"],
    ]) {
      const r = await cli(args, { env });
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.stdout, /Usage: loopgate/);
    }
  });
});

describe("CLI over wss:// with TLS pinning (local TLS terminator)", () => {
  let gw: GatewayProc;
  let term: Terminator;
  const TOKEN = "pin-test-token-0123456789";
  before(async () => {
    gw = await startGateway({ args: ["--token", TOKEN] });
    term = await startTlsTerminator(gw.port);
  });
  after(async () => {
    await term.close();
    await gw.kill();
  });
  const url = () => `wss://127.0.0.1:${term.port}`;

  test("the right pin passes, in every accepted format", async () => {
    const pin = term.cert.pin;
    for (const form of [
      pin,
      pin.toUpperCase(),
      formatPin(pin),
      formatPin(pin).replace("sha256:", ""),
      `sha256:${pin}`,
    ]) {
      const r = await cli(["health", "--url", url(), "--token", TOKEN, "--tls-fingerprint", form], { env: gw.env });
      assert.equal(r.code, 0, `${form}: ${r.stderr}`);
    }
  });

  test("a wrong pin fails before any byte reaches the server, showing both pins", async () => {
    const before = term.bytesReceived();
    const conns = term.connections();
    const wrong = "0".repeat(64);
    const r = await cli(["health", "--url", url(), "--token", TOKEN, "--tls-fingerprint", wrong], { env: gw.env });
    assert.equal(r.code, 5);
    assert.match(r.stderr, /PIN_MISMATCH/);
    assert.ok(r.stderr.includes(formatPin(wrong)) && r.stderr.includes(formatPin(term.cert.pin)), r.stderr);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(term.connections() > conns, "the TLS handshake happened");
    assert.equal(term.bytesReceived(), before, "not one application byte was sent: no upgrade request, no token");
    assert.ok(!gw.stderr.join("\n").includes("auth refused"), "the gateway saw no connect frame");
  });

  test("no pin means CA verification, which a self-signed certificate fails with its pin shown", async () => {
    const r = await cli(["health", "--url", url(), "--token", TOKEN], { env: gw.env });
    assert.equal(r.code, 5);
    assert.match(r.stderr, /TLS_FAILED/);
    assert.ok(r.stderr.includes(formatPin(term.cert.pin)));
  });

  test("a pin list allows rotation; config pins apply to the configured remote URL", async () => {
    const both = `${"1".repeat(64)},${term.cert.pin}`;
    const r = await cli(["health", "--url", url(), "--token", TOKEN, "--tls-fingerprint", both], { env: gw.env });
    assert.equal(r.code, 0, r.stderr);
    const env = isolatedEnv({
      gateway: {
        mode: "remote",
        remote: { url: url(), token: TOKEN, tlsFingerprint: ["2".repeat(64), formatPin(term.cert.pin)] },
      },
    });
    const viaConfig = await cli(["status", "--deep", "--json"], { env });
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    const deep = JSON.parse(viaConfig.stdout).deep;
    assert.equal(deep.mode, "remote");
    assert.equal(deep.target.source, "config:gateway.remote.url");
    assert.equal(deep.credential.token.source, "config:gateway.remote.token");
    assert.equal(deep.tls.pinned, true);
    assert.equal(deep.tls.pinSource, "config:gateway.remote.tlsFingerprint");
  });
});

describe("CLI through a real ssh -L tunnel (the seed's universal fallback)", () => {
  const why = sshAvailable();
  if (why) console.warn(`# SKIP ssh -L tests: ${why}`);
  test("gateway.mode remote with the forwarded URL reaches the gateway", { skip: why }, async () => {
    const TOKEN = "ssh-test-token-0123456789";
    const gw = await startGateway({ args: ["--token", TOKEN] });
    const tunnel = await startSshTunnel(gw.port);
    try {
      const env = isolatedEnv({
        gateway: { mode: "remote", remote: { url: `ws://127.0.0.1:${tunnel.localPort}`, token: TOKEN } },
      });
      const r = await cli(["health", "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).url, `ws://127.0.0.1:${tunnel.localPort}`);
      const s = await cli(["status", "--deep", "--json"], { env });
      assert.equal(JSON.parse(s.stdout).deep.credential.token.source, "config:gateway.remote.token");
    } finally {
      await tunnel.close();
      await gw.kill();
    }
  });
});
