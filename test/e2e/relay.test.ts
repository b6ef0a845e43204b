/**
 * The relay end to end, with real processes and real TLS on 127.0.0.1:
 * relay + host (gateway with its in-process link, or `loopgate link` in
 * front of an echo upstream) + clients.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { cli, type GatewayProc } from "../helpers/proc.ts";
import {
  startRelay,
  RELAY_KINDS,
  skipUnlessRunnable,
  makeHost,
  startLinkedGateway,
  mintToken,
  clientEnv,
  waitForLog,
  type RelayProc,
  type Host,
  echoRigForSuite,
} from "../helpers/relay.ts";
import { relayAudience } from "../../shared/tokens.ts";
import { hostSigningKey, rawGet, relayWebSocket } from "../helpers/relay-client.ts";

/** Waits (bounded) for a condition that another process makes true, e.g. a log line arriving. */
async function eventually(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer | string; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once("message", (data, isBinary) => resolve({ data: isBinary ? (data as Buffer) : String(data), isBinary })),
  );
}

/**
 * One suite, every relay runtime: the Node relay always; the Workers relay
 * under local workerd when wrangler and workerd are installed (they are
 * devDependencies; a loud skip says why when they cannot run).
 * LOOPGATE_RELAY_KINDS=node (or workers) narrows the run.
 */
for (const kind of RELAY_KINDS) {
  describe(
    `relay (${kind}): the CLI through the relay to our gateway`,
    skipUnlessRunnable(kind, "the relay e2e suite"),
    () => {
      let relay: RelayProc;
      let host: Host;
      let gw: GatewayProc;
      let minted: Awaited<ReturnType<typeof mintToken>>;
      before(async () => {
        host = await makeHost();
        relay = await startRelay(kind, { allowHosts: [host.hostId] });
        gw = await startLinkedGateway(host, relay);
        minted = await mintToken(host, relay, ["--name", "laptop"]);
      });
      after(async () => {
        await gw?.kill();
        await relay?.kill();
      });

      test("health, status --deep and gateway call just work with the printed config, pinned", async () => {
        const env = clientEnv(minted.clientConfig);
        const h = await cli(["health", "--json"], { env });
        assert.equal(h.code, 0, h.stderr);
        assert.equal(JSON.parse(h.stdout).url, `${relay.url}/h/${host.hostId}`);
        const s = await cli(["status", "--deep", "--json"], { env });
        assert.equal(s.code, 0, s.stderr);
        const { deep, status } = JSON.parse(s.stdout);
        assert.equal(deep.tls.pinned, true);
        assert.equal(deep.credential.token.source, "config:gateway.remote.token");
        assert.equal(status.relay.state, "linked");
        const c = await cli(["gateway", "call", "health", "--json"], { env });
        assert.equal(c.code, 0, c.stderr);
        assert.ok(!s.stdout.includes(minted.token) && !h.stdout.includes(minted.token));
      });

      test("the gateway sees the relayed client as forwarded, with the relay's client address", async () => {
        const logs = gw.stderr.join("\n");
        assert.match(
          logs,
          /"msg":"client connected".*"client":"127\.0\.0\.1","forwarded":true,"authMethod":"client-token"/,
        );
      });

      test("a wrong pin on the client side fails before any credential is sent", async () => {
        const env = clientEnv(minted.clientConfig);
        const refusedBefore = relay.logs().filter((l) => l.includes("client refused")).length;
        const r = await cli(["health", "--tls-fingerprint", "0".repeat(64)], { env });
        assert.equal(r.code, 5);
        assert.match(r.stderr, /PIN_MISMATCH/);
        assert.equal(
          relay.logs().filter((l) => l.includes("client refused")).length,
          refusedBefore,
          "the relay saw no request",
        );
      });

      test("bad tokens are refused at the relay and nothing reaches the host", async () => {
        const key = await hostSigningKey(host);
        const aud = relayAudience(relay.url);
        const now = Math.floor(Date.now() / 1000);
        const sign = (claims: Record<string, unknown>) =>
          new SignJWT({ purpose: "client", scope: "operator.read", ...claims })
            .setProtectedHeader({ alg: "EdDSA" })
            .sign(key);
        const other = await makeHost();
        const otherToken = (await mintToken(other, relay)).token;
        const wrongAud = (await mintToken(host, { url: "wss://127.0.0.1:1", pin: relay.pin })).token;
        const gwConnsBefore = gw.stderr.filter(
          (l) => l.includes('"msg":"client connected"') || l.includes("auth refused"),
        ).length;
        const cases: [string, string | undefined, number][] = [
          ["no token", undefined, 401],
          ["garbage", "garbage", 401],
          ["expired", await sign({ iss: host.hostId, aud, exp: now - 600, jti: "e1" }), 401],
          ["not yet valid", await sign({ iss: host.hostId, aud, nbf: now + 3600, exp: now + 7200, jti: "n1" }), 401],
          ["wrong audience", wrongAud, 403],
          ["another host's token", otherToken, 401],
        ];
        for (const [name, token, status] of cases) {
          await assert.rejects(
            relayWebSocket(relay, host.hostId, token),
            (e: Error & { details?: { status?: number } }) => {
              assert.equal(e.details?.status, status, `${name}: ${e.message}`);
              // The refusal says why, so the user knows what to fix.
              assert.match(e.message, /token (required|refused)/, `${name}: ${e.message}`);
              return true;
            },
          );
        }
        // The other host's token for the other host's id: that host is not allowed/linked, so it is refused the same way.
        await assert.rejects(
          relayWebSocket(relay, other.hostId, otherToken),
          (e: Error & { details?: { status?: number } }) => e.details?.status === 401,
        );
        const gwConnsAfter = gw.stderr.filter(
          (l) => l.includes('"msg":"client connected"') || l.includes("auth refused"),
        ).length;
        assert.equal(gwConnsAfter, gwConnsBefore, "no refused client reached the gateway");
        for (const l of relay.logs())
          assert.ok(!l.includes(otherToken) && !l.includes(wrongAud), "tokens never appear in relay logs");
      });

      test("revoking a token closes its open streams and refuses it afterwards", async () => {
        const t = await mintToken(host, relay, ["--name", "to-revoke"]);
        const ws = await relayWebSocket(relay, host.hostId, t.token);
        const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
        const rv = await cli(["token", "revoke", t.id], { env: host.env });
        assert.equal(rv.code, 0, rv.stderr);
        assert.equal(await closed, 4401);
        await assert.rejects(
          relayWebSocket(relay, host.hostId, t.token),
          (e: Error & { details?: { status?: number } }) => e.details?.status === 403,
        );
        const list = JSON.parse((await cli(["token", "list", "--json"], { env: host.env })).stdout);
        assert.ok(list.tokens.find((x: { id: string; revokedAt?: number }) => x.id === t.id && x.revokedAt));
        assert.ok(!JSON.stringify(list).includes(t.token), "token list never shows tokens");
      });

      test("HTTP under /h/HOSTID/ reaches the gateway with a token, and is refused without", async () => {
        const get = (path: string, headers: Record<string, string>) => rawGet(relay, path, headers);
        const ok = await get(`/h/${host.hostId}/healthz`, { authorization: `Bearer ${minted.token}` });
        assert.equal(ok.status, 200, ok.body);
        assert.match(ok.body, /"ok":true/);
        const no = await get(`/h/${host.hostId}/healthz`, {});
        assert.equal(no.status, 401);
        // A browser's one-time ?token= becomes a host-scoped HttpOnly cookie and leaves the URL.
        const once = await get(`/h/${host.hostId}/?token=${minted.token}`, {});
        assert.equal(once.status, 303);
        assert.match(once.headers, new RegExp(`location: /h/${host.hostId}/\\r?`, "i"));
        assert.match(
          once.headers,
          new RegExp(`set-cookie: lg_[^=]+=[^;]+; Path=/h/${host.hostId}; HttpOnly; Secure; SameSite=Strict`, "i"),
        );
        const health = await get("/healthz", {});
        assert.equal(health.status, 200);
        assert.ok(!health.body.includes(host.hostId), "relay /healthz names no host");
      });

      test("the host side listens on loopback only while linked", async (t) => {
        let out: string;
        try {
          out = execFileSync("ss", ["-ltnpH"], { encoding: "utf8" });
        } catch {
          t.skip("ss (iproute2) not installed");
          return;
        }
        const pid = gw.child.pid!;
        const mine = out.split("\n").filter((l) => l.includes(`pid=${pid},`));
        assert.ok(mine.length >= 1, "the gateway listens");
        for (const l of mine) assert.match(l, /\s(127\.0\.0\.1|\[::1\]):\d+\s/, `host listener beyond loopback: ${l}`);
      });
    },
  );

  describe(
    `relay (${kind}): link protocol behaviour through \`loopgate link\` and an echo upstream`,
    skipUnlessRunnable(kind, "the relay e2e suite"),
    () => {
      const rig = echoRigForSuite(kind);

      test("50 concurrent streams with interleaved large and small messages arrive intact and in order", async () => {
        const clients = await Promise.all(
          Array.from({ length: 50 }, () => relayWebSocket(rig.relay, rig.host.hostId, rig.token)),
        );
        const results = await Promise.all(
          clients.map(async (ws, i) => {
            const got: (string | Buffer)[] = [];
            const want = 12;
            const done = new Promise<void>((resolve) =>
              ws.on(
                "message",
                (d, bin) => (got.push(bin ? (d as Buffer) : String(d)), got.length === want && resolve()),
              ),
            );
            for (let k = 0; k < want; k++) {
              if (k % 4 === 3) ws.send(Buffer.alloc(300_000 + i, (i + k) % 256));
              else ws.send(`c${i}-m${k}`);
            }
            await done;
            ws.close();
            return { i, got };
          }),
        );
        for (const { i, got } of results) {
          for (let k = 0; k < 12; k++) {
            if (k % 4 === 3) {
              const b = got[k] as Buffer;
              assert.ok(
                Buffer.isBuffer(b) &&
                  b.length === 300_000 + i &&
                  b[0] === (i + k) % 256 &&
                  b[b.length - 1] === (i + k) % 256,
                `client ${i} message ${k}`,
              );
            } else assert.equal(got[k], `c${i}-m${k}`);
          }
        }
      });

      test("close codes and reasons travel end to end; the upstream sees forwarding headers", async () => {
        const ws = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
        const closed = new Promise<[number, string]>((r) => ws.once("close", (c, reason) => r([c, String(reason)])));
        ws.send("close:4321:upstream says bye");
        assert.deepEqual(await closed, [4321, "upstream says bye"]);
        const last = rig.echo.opens[rig.echo.opens.length - 1]!;
        assert.equal(last.headers["x-forwarded-for"], "127.0.0.1");
        assert.equal(last.headers["x-loopgate-relay"], "1");
        assert.equal(
          last.headers["authorization"],
          undefined,
          "the relay token is not passed to the upstream WebSocket",
        );
      });

      // The Node relay passes text on in pieces and the host's side checks it. Locally, workerd decodes a
      // client's text leniently (U+FFFD for a bad sequence) and passes that on: the runtime's rule, not ours.
      test("a text message that is not UTF-8 ends the client's stream with 1007", {
        skip: kind === "workers" && "workerd replaces bad UTF-8 in a client's text instead of closing",
        timeout: 10_000,
      }, async () => {
        const ws = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
        const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
        ws.send(Buffer.from([0x68, 0xc3, 0x28, 0x69]), { binary: false });
        assert.equal(await closed, 1007);
      });

      // Workers: wrangler.toml's no_web_socket_compression does it on the platform; locally, wrangler dev's
      // proxy answers the client itself (and negotiates it), so only the Node relay can show it here.
      test("a client's permessage-deflate offer is declined: no zlib state per client on the relay", {
        skip: kind === "workers" && "locally wrangler dev's proxy, not the Worker, answers the offer",
      }, async () => {
        // A browser always offers it; ws does by default. The pin is checked elsewhere; this is 127.0.0.1 only.
        const ws = new WebSocket(`${rig.relay.url}/h/${rig.host.hostId}`, {
          rejectUnauthorized: false,
          perMessageDeflate: true,
          headers: { authorization: `Bearer ${rig.token}` },
        });
        let offered: string | string[] | undefined = "(no upgrade)";
        ws.once("upgrade", (res) => (offered = res.headers["sec-websocket-extensions"]));
        await new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)));
        assert.equal(ws.extensions, "", `negotiated: ${String(offered)}`);
        const echoed = new Promise<string>((r) => ws.once("message", (d) => r(String(d))));
        ws.send("still relayed");
        assert.equal(await echoed, "still relayed");
        ws.terminate();
      });

      test("a client that never reads does not slow the others", async () => {
        const stalled = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
        (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
        const blob = Buffer.alloc(256 * 1024, 7);
        for (let i = 0; i < 40; i++) stalled.send(blob); // ~10 MiB echoed back into a reader that never reads
        const other = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
        const t0 = performance.now();
        for (let i = 0; i < 50; i++) {
          const p = nextMessage(other);
          other.send(`ping ${i}`);
          assert.equal((await p).data, `ping ${i}`);
        }
        const ms = performance.now() - t0;
        assert.ok(ms < 5000, `50 round trips next to a stalled client took ${ms.toFixed(0)} ms`);
        stalled.terminate();
        other.close();
      });

      if (kind === "workers") {
        test("hibernation: idle sockets survive an eviction of the object and still carry traffic", async () => {
          const debug = async () =>
            JSON.parse(
              (
                await rawGet(rig.relay, `/h/${rig.host.hostId}/_debug/object`, {
                  authorization: `Bearer ${rig.token}`,
                })
              ).body,
            ) as { constructions: number; clients: number };
          const ws = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
          let p = nextMessage(ws);
          ws.send("before eviction");
          assert.equal((await p).data, "before eviction");
          const before = await debug();
          // workerd evicts an object ~10 s after its last event; the host's text pings are answered without waking it.
          const deadline = Date.now() + 60_000;
          let after = before;
          while (after.constructions === before.constructions && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 12_000));
            after = await debug();
          }
          assert.ok(after.constructions > before.constructions, "the object was evicted and constructed again");
          assert.ok(after.clients >= 1, "the idle client was restored from its attachment");
          p = nextMessage(ws);
          ws.send("after eviction");
          assert.equal((await p).data, "after eviction");
          const big = Buffer.alloc(700_000, 9);
          p = nextMessage(ws);
          ws.send(big);
          assert.ok(
            Buffer.from((await p).data as Buffer).equals(big),
            "a large message crosses the restored stream intact",
          );
          ws.close();
        });
      }

      test("relay restart: the link comes back by itself and a new client succeeds", async () => {
        const port = rig.relay.port;
        const stateDir = rig.relay.stateDir;
        await rig.relay.kill("SIGKILL");
        rig.relay = await startRelay(kind, { allowHosts: [rig.host.hostId], port, stateDir });
        await waitForLog(rig.link, /relay link linked/, 20_000).catch(() => undefined);
        const deadline = Date.now() + 15_000;
        let ok = false;
        while (!ok && Date.now() < deadline) {
          try {
            const ws = await relayWebSocket(rig.relay, rig.host.hostId, rig.token);
            const p = nextMessage(ws);
            ws.send("after restart");
            ok = (await p).data === "after restart";
            ws.close();
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        assert.ok(ok, "a client got through after the relay restarted");
      });

      test("a host not on the allow-list cannot link, and a wrong relay pin never sends the link token", async () => {
        const stranger = await makeHost();
        const p = (await import("../helpers/proc.ts")).runCli(
          [
            "link",
            "--relay",
            rig.relay.url,
            "--relay-fingerprint",
            rig.relay.pin,
            "--upstream",
            `ws://127.0.0.1:${rig.echo.port}`,
            "--json",
          ],
          { env: stranger.env },
        );
        await waitForLog(p, /relay link backoff/);
        await p.kill();
        await eventually(
          () => rig.relay.logs().some((l) => l.includes("link refused") && l.includes("allow-list")),
          "the relay logged the refusal",
        );
        const before = rig.relay.logs().length;
        const q = (await import("../helpers/proc.ts")).runCli(
          [
            "link",
            "--relay",
            rig.relay.url,
            "--relay-fingerprint",
            "1".repeat(64),
            "--upstream",
            `ws://127.0.0.1:${rig.echo.port}`,
            "--json",
          ],
          { env: rig.host.env },
        );
        const line = await waitForLog(q, /relay link backoff/);
        await q.kill();
        assert.match(line, /PIN_MISMATCH/);
        assert.equal(
          rig.relay
            .logs()
            .slice(before)
            .filter((l) => l.includes("link refused")).length,
          0,
          "the relay saw no link request",
        );
      });
    },
  );
}
