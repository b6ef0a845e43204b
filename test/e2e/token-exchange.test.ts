/**
 * Exchange codes end to end, with real processes on the Node relay and the
 * Workers relay under workerd: `token create --exchange --json` on the host,
 * the running `loopgate link` pushes the code, a WebSocket client dials the
 * printed URL (as `openclaw tui --url '…?code=…'` would): it works once, a
 * second dial is refused like a bad token, and a code past its life is
 * refused too. The relay is reached by name, so the URL is the host's own
 * origin (`<label>.localhost`, resolved to 127.0.0.1 by the test).
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import type { LookupFunction } from "node:net";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import {
  RELAY_KINDS,
  skipUnlessRunnable,
  makeHost,
  startLinkProc,
  startEchoUpstream,
  type RelayProc,
  type Host,
  type EchoUpstream,
} from "../helpers/relay.ts";
import { startNamedRelay } from "../helpers/named-relay.ts";
import { cli, isolatedEnv, type Proc } from "../helpers/proc.ts";
import { decodeTerminal } from "../helpers/qr.ts";
import { hostLabel } from "../../shared/host-label.ts";

const toLoopback: LookupFunction = (_host, opts, cb) => {
  if ((opts as { all?: boolean }).all)
    (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
};

/** Dials `url`; resolves the echo of one message, or the HTTP status the upgrade was refused with. */
function dial(url: string): Promise<string | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      lookup: toLoopback,
      // The relay's self-signed certificate (as in host-origin.test.ts; pinning is tested elsewhere).
      rejectUnauthorized: false,
      handshakeTimeout: 10_000,
    });
    ws.on("open", () => ws.send("ping through the code"));
    ws.on("message", (d) => {
      ws.close();
      resolve(String(d));
    });
    ws.on("unexpected-response", (_q, res) => {
      resolve(res.statusCode ?? -1);
      res.resume();
    });
    ws.on("error", () => resolve(-1));
  });
}

async function eventually(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Created {
  token: string;
  id: string;
  browserUrl: string;
  exchangeUrl: string;
  exchangeWsUrl: string;
  exchangeExpiresAt: string;
}

for (const kind of RELAY_KINDS) {
  describe(`exchange codes through the ${kind} relay`, skipUnlessRunnable(kind, "the exchange-code suite"), () => {
    let relay: RelayProc;
    let byName: { url: string; pin: string };
    let host: Host;
    let echo: EchoUpstream;
    let link: Proc;
    const updates = () => relay.logs().filter((l) => l.includes("exchange codes updated")).length;

    /** `token create --exchange --json`, then waits until the relay has the code. */
    async function createWithCode(extra: string[] = []): Promise<Created> {
      const before = updates();
      const r = await cli(
        ["token", "create", "--relay", byName.url, "--relay-fingerprint", byName.pin, "--exchange", "--json", ...extra],
        { env: host.env },
      );
      assert.equal(r.code, 0, r.stderr);
      const created = JSON.parse(r.stdout) as Created;
      await eventually(() => updates() > before, "the link pushed the code and the relay took it");
      return created;
    }

    before(async () => {
      host = await makeHost();
      echo = await startEchoUpstream();
      ({ relay, byName } = await startNamedRelay(kind, [host.hostId]));
      link = await startLinkProc(host, byName, echo.port);
    });
    after(async () => {
      await link?.kill();
      await relay?.kill();
      await echo?.close();
    });

    test("token create --exchange --json: the exchange URL at the host's origin works once, a second use is refused", async () => {
      const t = await createWithCode();
      const origin = `https://${hostLabel(host.hostId)}.localhost:${relay.port}`;
      assert.match(t.exchangeUrl, new RegExp(`^${origin.replace(/\./g, "\\.")}/\\?code=[A-Za-z0-9_-]{24}$`));
      assert.equal(
        t.exchangeWsUrl,
        `${origin.replace("https:", "wss:")}/?code=${new URL(t.exchangeUrl).searchParams.get("code")}`,
      );
      assert.ok(t.browserUrl.includes("?token="), "browserUrl is kept");
      assert.ok(!t.exchangeUrl.includes(t.token) && !t.exchangeWsUrl.includes(t.token), "the code is not the token");
      const life = Date.parse(t.exchangeExpiresAt) - Date.now();
      assert.ok(life > 30_000 && life <= 60_000, `a code lives 60 s (${life} ms left)`);

      const opensBefore = echo.opens.length;
      assert.equal(await dial(t.exchangeWsUrl), "ping through the code", "the first dial gets through");
      assert.equal(echo.opens.length, opensBefore + 1);
      assert.equal(await dial(t.exchangeWsUrl), 401, "the second dial is refused");
      assert.equal(echo.opens.length, opensBefore + 1, "and never reaches the host");
      const logs = relay.logs().join("\n");
      assert.ok(!logs.includes(new URL(t.exchangeUrl).searchParams.get("code")!), "no code in the relay's logs");
      assert.ok(!logs.includes(t.token), "no token in the relay's logs");
      assert.ok(!link.stderr.join("\n").includes(t.token), "no token in the link's logs");
    });

    test("a code past its life is refused (--exchange-ttl 1)", async () => {
      const t = await createWithCode(["--exchange-ttl", "1"]);
      const life = Date.parse(t.exchangeExpiresAt) - Date.now();
      assert.ok(life <= 1000, `${life} ms`);
      await new Promise((r) => setTimeout(r, Math.max(0, life) + 300));
      assert.equal(await dial(t.exchangeWsUrl), 401);
    });

    test("the token behind a code is still the token: revoking it refuses its code", async () => {
      const t = await createWithCode();
      const r = await cli(["token", "revoke", t.id], { env: host.env });
      assert.equal(r.code, 0, r.stderr);
      await eventually(
        () => relay.logs().some((l) => l.includes("revocations updated") && /"revoked":[1-9]/.test(l)),
        "the revocation reached the relay",
      );
      assert.equal(await dial(t.exchangeWsUrl), 403);
    });
  });
}

test("token create --exchange --qr: the QR code is the exchange URL, not the token; only the code's hash is stored, 0600", async () => {
  const env = isolatedEnv({ gateway: { relay: { url: "wss://relay.example.com:8443" } } }, "loopgate-exchange-qr-");
  const dir = env.LOOPGATE_STATE_DIR;
  const r = await cli(["token", "create", "--name", "phone", "--exchange", "--qr"], { env });
  assert.equal(r.code, 0, r.stderr);
  const url = /browser: (https:\/\/\S+\?code=[A-Za-z0-9_-]+)/.exec(r.stdout)?.[1];
  assert.ok(url, r.stdout);
  assert.match(r.stdout, /works once within 60 s/);
  const marker = "(the code works once):\n";
  assert.equal(
    decodeTerminal(r.stdout.slice(r.stdout.indexOf(marker) + marker.length)),
    url,
    "the QR code is the exchange URL",
  );
  const code = new URL(url).searchParams.get("code")!;
  const file = join(dir, "exchange-codes.json");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const stored = readFileSync(file, "utf8");
  assert.ok(!stored.includes(code), "never the code itself");
  assert.ok(stored.includes(createHash("sha256").update(code).digest("base64url")), "its sha256");

  for (const [args, why] of [
    [["--exchange-ttl", "5"], /goes with --exchange/],
    [["--exchange", "--exchange-ttl", "61"], /1 to 60 seconds/],
    [["--exchange", "--exchange-ttl", "0"], /1 to 60 seconds/],
  ] as const) {
    const bad = await cli(["token", "create", ...args], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, why);
  }
  const help = await cli(["token", "create", "--help"], { env });
  assert.match(help.stdout, /--exchange\b/);
});
