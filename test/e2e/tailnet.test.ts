/**
 * Tailnet use without a tailnet: a fake `tailscale` executable on the PATH
 * answers `ip` and `whois --json` from a fixture, and a fake interface list
 * feeds the address lookup. Everything connects to 127.0.0.1 only; the
 * "Tailscale Serve" side is a client that sends the headers Serve adds.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, startGateway, tempDir, type GatewayProc } from "../helpers/proc.ts";
import { TestClient } from "../helpers/ws-client.ts";
import { findTailnetAddress } from "../../agent/gateway/bind.ts";
import { tailscaleIdentity, trustedProxyIdentity } from "../../agent/gateway/identity-proxy.ts";

/** A fake tailscale: `ip -4` prints IP (or nothing), `whois --json 100.64.0.7` names alice. */
function fakeTailscale(ip: string): string {
  const dir = tempDir("loopgate-fakets-");
  const bin = join(dir, "tailscale");
  writeFileSync(
    bin,
    `#!/bin/sh
case "$1" in
  ip) [ -n "${ip}" ] && echo "${ip}"; exit 0 ;;
  whois)
    if [ "$3" = "100.64.0.7" ]; then echo '{"Node":{"Name":"laptop"},"UserProfile":{"LoginName":"alice@example.com","DisplayName":"Alice"}}'; exit 0; fi
    echo "no match for IP $3" >&2; exit 1 ;;
esac
exit 2
`,
  );
  chmodSync(bin, 0o755);
  return dir;
}

const TOKEN = "tailnet-test-token-0123456789";

async function connectWith(
  port: number,
  headers: Record<string, string>,
  auth: { token?: string } = {},
): Promise<{ ok: boolean; error?: string; frames: TestClient["frames"] }> {
  const c = new TestClient(`ws://127.0.0.1:${port}/`, { headers });
  await c.opened();
  await c.waitFor((f) => f.event === "connect.challenge");
  const res = await c.connect(auth);
  c.close();
  return { ok: res.ok === true, ...(res.error ? { error: res.error.message } : {}), frames: c.frames };
}

const serve = (login: string, addr: string) => ({
  "tailscale-user-login": login,
  "tailscale-user-name": "Alice",
  "x-forwarded-for": addr,
  "x-forwarded-proto": "https",
  "x-forwarded-host": "gw.tailnet.ts.net",
});

describe("tailnet bind", () => {
  test("picks the address on a tailscale* interface, prefers IPv4, ignores other interfaces", async () => {
    const ifs = {
      eth0: [{ address: "100.64.0.50", family: "IPv4", internal: false }],
      tailscale0: [
        { address: "fd7a:115c:a1e0::1234", family: "IPv6", internal: false },
        { address: "100.101.102.103", family: "IPv4", internal: false },
      ],
    } as unknown as NodeJS.Dict<import("node:os").NetworkInterfaceInfo[]>;
    assert.equal(await findTailnetAddress({ interfaces: ifs, tailscaleBin: "/nonexistent" }), "100.101.102.103");
    const v6only = {
      tailscale0: [{ address: "fd7a:115c:a1e0::1234", family: "IPv6", internal: false }],
    } as unknown as NodeJS.Dict<import("node:os").NetworkInterfaceInfo[]>;
    assert.equal(
      await findTailnetAddress({ interfaces: v6only, tailscaleBin: "/nonexistent" }),
      "fd7a:115c:a1e0::1234",
    );
  });

  test("falls back to `tailscale ip`, and finds nothing when neither has a tailnet address", async () => {
    const withIp = fakeTailscale("100.90.1.2");
    assert.equal(await findTailnetAddress({ interfaces: {}, tailscaleBin: join(withIp, "tailscale") }), "100.90.1.2");
    const wrongRange = fakeTailscale("192.168.1.9");
    assert.equal(await findTailnetAddress({ interfaces: {}, tailscaleBin: join(wrongRange, "tailscale") }), undefined);
  });

  test("gateway run --bind tailnet refuses to start without a tailnet address, and never falls back", async () => {
    const dir = fakeTailscale("");
    const r = await cli(["gateway", "run", "--bind", "tailnet", "--port", "0", "--token", TOKEN], {
      env: { PATH: `${dir}:${process.env.PATH}`, LOOPGATE_STATE_DIR: tempDir(), LOOPGATE_CONFIG: "" },
    });
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /BIND_FAILED: bind tailnet: no Tailscale address/);
  });

  test("bind tailnet without token or password auth refuses to start", async () => {
    const r = await cli(["gateway", "run", "--bind", "tailnet", "--port", "0", "--auth", "none"], {
      env: { LOOPGATE_STATE_DIR: tempDir(), LOOPGATE_CONFIG: "" },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /BIND_REFUSED/);
  });
});

describe("gateway.auth.allowTailscale: Tailscale Serve identity", () => {
  let gw: GatewayProc;
  let off: GatewayProc;
  before(async () => {
    const dir = fakeTailscale("");
    const env = { PATH: `${dir}:${process.env.PATH}` };
    gw = await startGateway({ args: ["--token", TOKEN], config: { gateway: { auth: { allowTailscale: true } } }, env });
    off = await startGateway({
      args: ["--token", TOKEN],
      config: { gateway: { auth: { allowTailscale: false } } },
      env,
    });
  });
  after(async () => {
    await gw?.kill();
    await off?.kill();
  });

  test("Serve's headers from loopback with a matching whois authenticate without a token", async () => {
    const r = await connectWith(gw.port, serve("alice@example.com", "100.64.0.7"));
    assert.equal(r.ok, true, r.error);
    await gw.waitForLine((l) => l.includes('"authMethod":"tailscale"') && l.includes("forwarded"), 5000, "stderr");
  });

  test("a login that whois does not confirm, an unknown address, or no forwarded address is refused", async () => {
    assert.equal((await connectWith(gw.port, serve("mallory@example.com", "100.64.0.7"))).ok, false);
    assert.equal((await connectWith(gw.port, serve("alice@example.com", "100.64.0.9"))).ok, false);
    assert.equal((await connectWith(gw.port, { "tailscale-user-login": "alice@example.com" })).ok, false);
  });

  test("the same headers through the relay link are ignored", async () => {
    const r = await connectWith(gw.port, { ...serve("alice@example.com", "100.64.0.7"), "x-loopgate-relay": "1" });
    assert.equal(r.ok, false);
  });

  test("with allowTailscale false the headers count for nothing; tokens still work", async () => {
    assert.equal((await connectWith(off.port, serve("alice@example.com", "100.64.0.7"))).ok, false);
    assert.equal((await connectWith(off.port, serve("alice@example.com", "100.64.0.7"), { token: TOKEN })).ok, true);
  });

  test("the HTTP API still demands a token, Serve headers or not", async () => {
    const url = `http://127.0.0.1:${gw.port}/api/status`;
    const no = await fetch(url, { headers: serve("alice@example.com", "100.64.0.7") });
    assert.equal(no.status, 401);
    const yes = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(yes.status, 200);
    const body = (await yes.json()) as { auth: { mode: string; allowTailscale: boolean } };
    assert.deepEqual([body.auth.mode, body.auth.allowTailscale], ["token", true]);
  });

  test("status --deep shows the auth mode in use", async () => {
    const r = await cli(["status", "--deep", "--json", "--url", `ws://127.0.0.1:${gw.port}`, "--token", TOKEN], {
      env: { LOOPGATE_CONFIG: "" },
    });
    assert.equal(r.code, 0, r.stderr);
    const { status } = JSON.parse(r.stdout);
    assert.equal(status.auth.allowTailscale, true);
  });

  test("headers from a peer that is not loopback are never trusted (checked on the identity rule itself)", async () => {
    const whois = async () => "alice@example.com";
    const h = serve("alice@example.com", "100.64.0.7");
    assert.equal(await tailscaleIdentity("192.168.1.5", h, whois), undefined);
    assert.deepEqual(await tailscaleIdentity("::ffff:127.0.0.1", h, whois), {
      user: "alice@example.com",
      via: "tailscale",
    });
  });
});

describe("trusted-proxy auth mode", () => {
  const cfg = (proxies: string[]) => ({
    gateway: {
      auth: {
        mode: "trusted-proxy",
        trustedProxy: { userHeader: "X-Auth-User", requiredHeaders: ["X-Auth-Proxy"], allowUsers: ["alice"], proxies },
      },
    },
  });

  test("identity headers from the configured proxy address authenticate allowed users only", async () => {
    const gw = await startGateway({ config: cfg(["127.0.0.1"]) });
    try {
      assert.equal(
        (await connectWith(gw.port, { "x-auth-user": "alice", "x-auth-proxy": "1", "x-forwarded-for": "203.0.113.9" }))
          .ok,
        true,
      );
      assert.equal(
        (await connectWith(gw.port, { "x-auth-user": "bob", "x-auth-proxy": "1" })).ok,
        false,
        "a user not allowed",
      );
      assert.equal((await connectWith(gw.port, { "x-auth-user": "alice" })).ok, false, "a required header missing");
      assert.equal(
        (await connectWith(gw.port, { "x-auth-user": "alice", "x-auth-proxy": "1", "x-loopgate-relay": "1" })).ok,
        false,
        "through the relay",
      );
      assert.equal((await connectWith(gw.port, {})).ok, false, "no identity at all");
    } finally {
      await gw.kill();
    }
  });

  test("the same headers from a peer that is not a configured proxy are ignored", async () => {
    const gw = await startGateway({ config: cfg(["10.9.8.7"]) });
    try {
      assert.equal((await connectWith(gw.port, { "x-auth-user": "alice", "x-auth-proxy": "1" })).ok, false);
    } finally {
      await gw.kill();
    }
    assert.equal(
      trustedProxyIdentity(
        "10.9.8.7",
        { "x-auth-user": "alice", "x-auth-proxy": "1" },
        { userHeader: "x-auth-user", requiredHeaders: ["x-auth-proxy"], allowUsers: ["alice"], proxies: ["10.9.8.7"] },
      )?.user,
      "alice",
    );
  });

  test("trusted-proxy without its settings is a config error that says what to add", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "c.json5"), JSON.stringify({ gateway: { auth: { mode: "trusted-proxy" } } }));
    const bad = await cli(["gateway", "run", "--port", "0"], {
      env: { LOOPGATE_STATE_DIR: dir, LOOPGATE_CONFIG: join(dir, "c.json5") },
    });
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /needs gateway\.auth\.trustedProxy/);
  });
});
