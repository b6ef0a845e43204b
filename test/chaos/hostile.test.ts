/**
 * Hostile input at the relay (npm run test:chaos): a full table of bad
 * tokens refused before anything reaches the host, rate limiting of repeated
 * failures, refusal timing that does not reveal whether a host exists,
 * garbage on the link, half-open and slow connections — and through all of
 * it the relay keeps serving other hosts. Finally every log the suite made is
 * scanned for secrets.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { join } from "node:path";
import { importJWK, SignJWT, generateKeyPair, base64url, type JWK, type CryptoKey } from "jose";
import { openWebSocket, connectVerifiedTls } from "../../agent/tls/pinned-connect.ts";
import { relayAudience } from "../../shared/tokens.ts";
import { cli } from "../helpers/proc.ts";
import { echoOnce, hostSigningKey, relayWebSocket } from "../helpers/relay-client.ts";
import {
  startRelay,
  makeHost,
  startLinkProc,
  mintToken,
  startEchoUpstream,
  RELAY_KINDS,
  skipUnlessRunnable,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import type { Proc } from "../helpers/proc.ts";

function statusOf(e: unknown): number | undefined {
  return (e as { details?: { status?: number } }).details?.status;
}

async function upgradeStatus(
  relay: RelayProc,
  hostId: string,
  headers: Record<string, string>,
): Promise<number | "open"> {
  try {
    const ws = await relayWebSocket(relay, hostId, undefined, { headers });
    ws.close();
    return "open";
  } catch (e) {
    return statusOf(e) ?? -1;
  }
}

for (const kind of RELAY_KINDS) {
  describe(`hostile input at the ${kind} relay`, skipUnlessRunnable(kind, "the hostile-input run"), () => {
    let relay: RelayProc;
    let host: Host;
    let other: Host;
    let link: Proc;
    let otherLink: Proc;
    let echo: Awaited<ReturnType<typeof startEchoUpstream>>;
    let token: string;
    let otherToken: string;
    const secrets: string[] = [];
    before(async () => {
      host = await makeHost();
      other = await makeHost();
      echo = await startEchoUpstream();
      relay = await startRelay(kind, { allowHosts: [host.hostId, other.hostId] });
      link = await startLinkProc(host, relay, echo.port);
      otherLink = await startLinkProc(other, relay, echo.port);
      token = (await mintToken(host, relay)).token;
      otherToken = (await mintToken(other, relay)).token;
      secrets.push(token, otherToken);
    });
    after(async () => {
      await link?.kill();
      await otherLink?.kill();
      await relay?.kill();
      await echo?.close();
    });

    test("a full table of bad tokens is refused before anything reaches the host", async () => {
      const key = await hostSigningKey(host);
      const aud = relayAudience(relay.url);
      const now = Math.floor(Date.now() / 1000);
      const base = { purpose: "client", scope: "operator.read", iss: host.hostId, aud, iat: now, exp: now + 600 };
      const sign = (claims: Record<string, unknown>, k: CryptoKey = key) =>
        new SignJWT({ ...base, ...claims }).setProtectedHeader({ alg: "EdDSA" }).sign(k);
      const stranger = (await generateKeyPair("Ed25519", { extractable: true })).privateKey;
      const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));
      const publicJwk = JSON.parse(readFileSync(join(host.stateDir, "host-key.json"), "utf8")) as JWK;
      delete publicJwk.d;
      // Algorithm confusion: HS256 with the host's public key as the HMAC secret.
      const hs = await new SignJWT({ ...base, jti: "hs" })
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
      const revoked = await mintToken(host, relay, ["--name", "revoked"]);
      secrets.push(revoked.token);
      assert.equal((await cli(["token", "revoke", revoked.id], { env: host.env })).code, 0);
      await new Promise((r) => setTimeout(r, 500)); // the revocation travels over the link
      const cases: [string, string | undefined, number[]][] = [
        ["no token", undefined, [401]],
        ["garbage", "garbage", [401]],
        ["three empty parts", "..", [401]],
        ["wrong signature (another key)", await sign({ jti: "ws" }, stranger as CryptoKey), [401]],
        ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...base, jti: "none" })}.`, [401]],
        ["algorithm confusion (HS256 with the public key)", hs, [401]],
        ["expired", await sign({ exp: now - 600, jti: "exp" }), [401]],
        ["not yet valid", await sign({ nbf: now + 3600, jti: "nbf" }), [401]],
        ["wrong audience", await sign({ aud: "https://elsewhere.example:443", jti: "aud" }), [403]],
        ["wrong issuer", await sign({ iss: other.hostId, jti: "iss" }), [401]],
        ["link token used as a client token", await sign({ purpose: "link", jti: "link" }), [401]],
        ["another host's token", otherToken, [401]],
        ["revoked", revoked.token, [403]],
        ["oversized", "a".repeat(5000), [401, 431]],
      ];
      const reachedBefore = echo.opens.length;
      for (const [name, tok, want] of cases) {
        const got = await upgradeStatus(relay, host.hostId, tok ? { authorization: `Bearer ${tok}` } : {});
        assert.ok(typeof got === "number" && want.includes(got), `${name}: got ${got}, wanted ${want.join("/")}`);
      }
      // The same tokens as a subprotocol and as ?token= are refused the same way.
      assert.equal(
        await upgradeStatus(relay, host.hostId, {
          "sec-websocket-protocol": `loopgate.v1, bearer.${await sign({ exp: now - 600, jti: "exp2" })}`,
        }),
        401,
      );
      assert.equal(echo.opens.length, reachedBefore, "no refused client reached the host");
      assert.equal(await echoOnce(relay, host.hostId, token, "ok?"), "ok?", "good tokens still work");
    });

    test("a linked host and an unknown id answer a bad token with the same status and text", async () => {
      const bogusHost = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
      const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));
      const now = Math.floor(Date.now() / 1000);
      const body = {
        purpose: "client",
        iss: host.hostId,
        aud: relayAudience(relay.url),
        exp: now + 600,
        jti: "oracle",
      };
      const stranger = (await generateKeyPair("Ed25519", { extractable: true })).privateKey as CryptoKey;
      const bad = [
        "garbage",
        `${b64({ alg: "none" })}.${b64(body)}.`,
        `${b64({ alg: "HS256" })}.${b64(body)}.${b64("x")}`,
        await new SignJWT({ ...body, iss: other.hostId }).setProtectedHeader({ alg: "EdDSA" }).sign(stranger),
      ];
      for (const tok of bad) {
        const answer = async (id: string) => {
          try {
            const ws = await openWebSocket(`${relay.url}/h/${id}`, {
              pins: [relay.pin],
              headers: { authorization: `Bearer ${tok}` },
              timeoutMs: 10_000,
            });
            ws.close();
            return "open";
          } catch (e) {
            return (e as Error).message.replace(/127\.0\.0\.1:\d+/, "");
          }
        };
        assert.equal(await answer(host.hostId), await answer(bogusHost));
      }
      // A success clears this address's failure count for the tests that follow.
      assert.equal(await echoOnce(relay, host.hostId, token, "ok?"), "ok?");
    });

    test("refusal timing does not reveal whether a host exists", async () => {
      const bogusHost = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
      const forged = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
      const time = async (hostId: string) => {
        const t0 = performance.now();
        await upgradeStatus(relay, hostId, { authorization: `Bearer ${forged}` });
        return performance.now() - t0;
      };
      // Interleave to share any drift; compare medians.
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 8; i++) {
        known.push(await time(host.hostId));
        unknown.push(await time(bogusHost));
      }
      const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
      const [k, u] = [median(known), median(unknown)];
      assert.ok(
        Math.abs(k - u) < Math.max(5, 0.5 * Math.max(k, u)),
        `median refusal: known host ${k.toFixed(1)} ms, unknown host ${u.toFixed(1)} ms`,
      );
    });

    test("garbage on a link closes that link with 1002 and the relay keeps serving other hosts", async () => {
      // A link cannot be opened without an allowed host's key, so speak garbage on an allowed host's own link.
      const { signLinkToken } = await import("../../shared/tokens.ts");
      const idFile = JSON.parse(readFileSync(join(other.stateDir, "host-key.json"), "utf8")) as JWK;
      const priv = (await importJWK(idFile, "EdDSA")) as CryptoKey;
      const pub = { ...idFile };
      delete pub.d;
      const lt = await signLinkToken(priv, pub, other.hostId, relayAudience(relay.url));
      const ws = await openWebSocket(`${relay.url}/link`, {
        pins: [relay.pin],
        headers: { authorization: `Bearer ${lt}` },
        timeoutMs: 10_000,
      });
      const closed = new Promise<number>((r) => ws.once("close", (c) => r(c)));
      ws.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 1, 2]));
      assert.equal(await closed, 1002);
      assert.equal(await echoOnce(relay, host.hostId, token, "ok?"), "ok?", "the other host is unaffected");
      // The real link of that host was replaced by the garbage one; it relinks by itself.
      const deadline = Date.now() + 15_000;
      let back = false;
      while (!back && Date.now() < deadline)
        back = await echoOnce(relay, other.hostId, otherToken, "ok?").then(
          (m) => m === "ok?",
          () => false,
        );
      assert.ok(back, "the host whose link was hijacked by garbage relinked");
    });

    // Under wrangler dev a Node proxy sits in front of workerd and owns the sockets: this one is about our relay's own server.
    test("thousands of half-open connections and a slow upgrade do not stop the relay", {
      skip: kind === "workers" ? "the local workerd dev proxy, not the relay, owns raw sockets" : false,
    }, async (t) => {
      const N = Number(process.env.LOOPGATE_CHAOS_HALF_OPEN ?? 2000);
      const socks: Socket[] = [];
      await Promise.all(
        Array.from(
          { length: N },
          () =>
            new Promise<void>((resolve) => {
              const s = tcpConnect(relay.port, "127.0.0.1", () => resolve());
              s.on("error", () => resolve());
              socks.push(s);
            }),
        ),
      );
      // A slow upgrade: TLS done, headers dribbled one byte at a time.
      const slow = await connectVerifiedTls("127.0.0.1", relay.port, { pins: [relay.pin] });
      slow.on("error", () => {});
      slow.resume(); // read (and drop) whatever the relay answers, so its close is seen
      const slowClosed = new Promise<void>((r) => slow.once("close", () => r()));
      const req = "GET /h/x HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      let i = 0;
      const drip = setInterval(() => (i < req.length ? slow.write(req[i++]!) : undefined), 200);
      t.after(() => {
        clearInterval(drip);
        for (const s of socks) s.destroy();
        slow.destroy();
      });
      // Meanwhile, real clients of the rate-limited-free host still get through.
      const health = await fetchHealth(relay);
      assert.equal(health.ok, true);
      assert.equal(await echoOnce(relay, host.hostId, token, "ok?"), "ok?");
      // The slow upgrade is cut off by the header timeout (10 s), not held forever.
      const cut = await Promise.race([
        slowClosed.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
      ]);
      assert.ok(cut, "a slowloris upgrade was closed by the relay");
    });

    test("repeated auth failures from one address are rate limited with 429", async () => {
      // Last but one: it locks 127.0.0.1 out for a minute. (A bad token in the relay's own header counts;
      // an Authorization that is not a loopgate token belongs to the upstream and never does.)
      let got429 = false;
      for (let i = 0; i < 30 && !got429; i++)
        got429 = (await upgradeStatus(relay, other.hostId, { "x-loopgate-client-token": "nope" })) === 429;
      assert.ok(got429, "30 failures in a row end in 429");
    });

    test("no token, key or password appears in any log the suite produced", async () => {
      const key = JSON.parse(readFileSync(join(host.stateDir, "host-key.json"), "utf8")) as JWK;
      const all = [...relay.logs(), ...link.stderr, ...link.stdout, ...otherLink.stderr].join("\n");
      for (const s of [...secrets, key.d!]) assert.ok(!all.includes(s), "a secret leaked into a log");
    });
  });
}

async function fetchHealth(relay: RelayProc): Promise<{ ok: boolean }> {
  const sock = await connectVerifiedTls("127.0.0.1", relay.port, { pins: [relay.pin] });
  return new Promise((resolve, reject) => {
    let raw = "";
    sock.on("data", (d) => (raw += String(d)));
    sock.on("end", () => {
      try {
        resolve(JSON.parse(raw.split("\r\n\r\n")[1] ?? "{}"));
      } catch (e) {
        reject(e);
      }
    });
    sock.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}
