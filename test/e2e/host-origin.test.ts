/**
 * Each host at its own origin on a relay shared by two hosts (issue 17 item 1),
 * and HTTP through the relay as the upstream sent it (issue 18): real relay,
 * real `loopgate link` processes, an HTTP+WS upstream, raw HTTPS requests
 * that name `<label>.localhost` (resolved to 127.0.0.1 by the test itself).
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import type { LookupFunction } from "node:net";
import WebSocket from "ws";
import {
  RELAY_KINDS,
  skipUnlessRunnable,
  makeHost,
  startLinkProc,
  mintToken,
  startEchoUpstream,
  type RelayProc,
  type Host,
} from "../helpers/relay.ts";
import { startNamedRelay } from "../helpers/named-relay.ts";
import { startHttpUpstream, type HttpUpstream } from "../helpers/http-upstream.ts";
import type { Proc } from "../helpers/proc.ts";
import { hostLabel } from "../../shared/host-label.ts";

/** Every name resolves to 127.0.0.1 (the relay), as `*.localhost` does in browsers. */
const toLoopback: LookupFunction = (_host, opts, cb) => {
  if ((opts as { all?: boolean }).all)
    (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
};

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function req(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // An explicit length: Node's client frames no body at all for DELETE and OPTIONS by default.
    const headers = { ...opts.headers, ...(opts.body ? { "content-length": String(opts.body.length) } : {}) };
    const r = request(
      url,
      { method: opts.method ?? "GET", headers, lookup: toLoopback, rejectUnauthorized: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    r.on("error", (e) => reject(Object.assign(e, { url, method: opts.method })));
    r.setTimeout(20_000, () => r.destroy(new Error("timeout")));
    r.end(opts.body);
  });
}

/** Opens a WebSocket; resolves "open" or the HTTP status it was refused with. */
function wsStatus(url: string, headers: Record<string, string>): Promise<number | "open"> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, lookup: toLoopback, rejectUnauthorized: false, handshakeTimeout: 10_000 });
    ws.on("open", () => {
      ws.close();
      resolve("open");
    });
    ws.on("unexpected-response", (_q, res) => {
      resolve(res.statusCode ?? -1);
      res.resume();
    });
    ws.on("error", () => resolve(-1));
  });
}

for (const kind of RELAY_KINDS) {
  describe(`host origins on a shared ${kind} relay`, skipUnlessRunnable(kind, "the host-origin suite"), () => {
    let relay: RelayProc;
    let a: Host;
    let b: Host;
    let up: HttpUpstream;
    let echo: Awaited<ReturnType<typeof startEchoUpstream>>;
    let links: Proc[] = [];
    let tokenA: string;
    let tokenB: string;
    let originA: string;
    let originB: string;
    before(async () => {
      a = await makeHost();
      b = await makeHost();
      up = await startHttpUpstream();
      echo = await startEchoUpstream();
      // The relay as clients reach it: by its host name (hosts' origins sit one label below), its configured URL.
      let byName: { url: string; pin: string };
      ({ relay, byName } = await startNamedRelay(kind, [a.hostId, b.hostId]));
      links = [await startLinkProc(a, byName, up.port), await startLinkProc(b, byName, echo.port)];
      tokenA = (await mintToken(a, byName)).token;
      tokenB = (await mintToken(b, byName)).token;
      originA = `https://${hostLabel(a.hostId)}.localhost:${relay.port}`;
      originB = `https://${hostLabel(b.hostId)}.localhost:${relay.port}`;
    });
    after(async () => {
      for (const l of links) await l.kill();
      await relay?.kill();
      await up?.close();
      await echo?.close();
    });

    test("a host's own origin serves that host at /, its /healthz included", async () => {
      const root = await req(`${originA}/?x=1`, { headers: { authorization: `Bearer ${tokenA}` } });
      assert.equal(root.status, 200, root.body.toString());
      assert.equal(root.body.toString(), "upstream GET /");
      assert.equal(up.seen.at(-1)!.url, "/?x=1");
      const health = await req(`${originA}/healthz`, { headers: { authorization: `Bearer ${tokenA}` } });
      assert.equal(health.body.toString(), "upstream GET /healthz", "the host's /healthz, not the relay's");
      // Host A's token opens nothing at host B's origin.
      const cross = await req(`${originB}/`, { headers: { "x-loopgate-client-token": tokenA } });
      assert.equal(cross.status, 401);
    });

    test("?token= on a host origin becomes a __Host- cookie for that origin only", async () => {
      const once = await req(`${originA}/app/?token=${tokenA}&keep=1`);
      assert.equal(once.status, 303);
      assert.equal(once.headers.location, "/app/?keep=1");
      const setCookie = String(once.headers["set-cookie"]);
      assert.match(setCookie, /^__Host-loopgate=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=\d+$/);
      assert.doesNotMatch(setCookie, /domain=/i);
      const cookie = setCookie.split(";")[0]!;
      const page = await req(`${originA}/app/`, { headers: { cookie } });
      assert.equal(page.status, 200);
      assert.equal(page.body.toString(), "upstream GET /app/");
    });

    test("the cookie opens the host's WebSocket only from the host's own pages", async () => {
      const cookie = `__Host-loopgate=${tokenA}`;
      assert.equal(await wsStatus(`${originA.replace("https:", "wss:")}/`, { cookie, origin: originA }), "open");
      // A page of host B (same site, other origin) cannot use host A's cookie, nor can any other page.
      assert.equal(await wsStatus(`${originA.replace("https:", "wss:")}/`, { cookie, origin: originB }), 403);
      assert.equal(
        await wsStatus(`${originA.replace("https:", "wss:")}/`, { cookie, origin: `https://localhost:${relay.port}` }),
        403,
      );
      assert.equal(await wsStatus(`${originA.replace("https:", "wss:")}/`, { cookie, origin: "null" }), 403);
      // Cross-origin subresource requests with the cookie are refused; a plain navigation is not.
      const sub = await req(`${originA}/echo`, {
        method: "POST",
        headers: { cookie, origin: originB, "content-type": "text/plain" },
        body: Buffer.from("x"),
      });
      assert.equal(sub.status, 403);
      const fetchSameSite = await req(`${originA}/`, {
        headers: { cookie, "sec-fetch-site": "same-site", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty" },
      });
      assert.equal(fetchSameSite.status, 403);
      const nav = await req(`${originA}/`, {
        headers: { cookie, "sec-fetch-site": "same-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" },
      });
      assert.equal(nav.status, 200);
    });

    test("on a relay shared by hosts, the /h/ path form takes no browser credentials, and serves nothing runnable", async () => {
      const base = `https://localhost:${relay.port}`;
      const viaQuery = await req(`${base}/h/${a.hostId}/?token=${tokenA}`);
      assert.equal(viaQuery.status, 403);
      assert.match(
        viaQuery.body.toString(),
        new RegExp(`open https://${hostLabel(a.hostId)}\\.localhost:${relay.port}/`),
      );
      assert.equal(
        (await req(`${base}/h/${a.hostId}/`, { headers: { cookie: `__Host-loopgate=${tokenA}` } })).status,
        401,
      );
      assert.equal(
        await wsStatus(`wss://localhost:${relay.port}/h/${a.hostId}`, {
          cookie: `lg_${a.hostId.slice(0, 16)}=${tokenA}`,
        }),
        403,
      );
      // CLIs keep working: header tokens on the path form.
      assert.equal(
        await wsStatus(`wss://localhost:${relay.port}/h/${b.hostId}`, { authorization: `Bearer ${tokenB}` }),
        "open",
      );
      const api = await req(`${base}/h/${a.hostId}/api`, { headers: { authorization: `Bearer ${tokenA}` } });
      assert.equal(api.status, 200);
      assert.equal(api.headers["content-security-policy"], "sandbox");
      // Service workers only at a host's own origin.
      const sw = await req(`${base}/h/${a.hostId}/sw.js`, {
        headers: { authorization: `Bearer ${tokenA}`, "service-worker": "script" },
      });
      assert.equal(sw.status, 403);
    });

    test("headers that reach beyond a host's origin are dropped; isolation headers are set", async () => {
      const r = await req(`${originA}/headers`, {
        headers: { authorization: `Bearer ${tokenA}`, "service-worker": "script" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers["service-worker-allowed"], undefined);
      assert.equal(r.headers["set-cookie"], undefined);
      assert.equal(r.headers["clear-site-data"], undefined);
      assert.equal(r.headers["x-upstream"], "kept");
      assert.equal(r.headers["cross-origin-opener-policy"], "same-origin");
      assert.equal(r.headers["cross-origin-resource-policy"], "same-origin");
      assert.equal(r.headers["origin-agent-cluster"], "?1");
      assert.equal(r.headers["x-content-type-options"], "nosniff");
    });

    test("an Authorization that is not a relay token goes to the upstream and never locks anyone out", async () => {
      const gatewaySecret = "Bearer the-upstream-gateway-secret";
      const r = await req(`${originA}/echo`, {
        method: "POST",
        headers: { authorization: gatewaySecret, "x-loopgate-client-token": tokenA },
        body: Buffer.from("hi"),
      });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(JSON.parse(r.body.toString()).authorization, gatewaySecret);
      // Without a relay token: refused, but not a failed login (25 > the 20-a-minute limit).
      for (let i = 0; i < 25; i++)
        assert.equal((await req(`${originA}/x`, { headers: { authorization: gatewaySecret } })).status, 401);
      const still = await req(`${originA}/x`, {
        headers: { authorization: gatewaySecret, "x-loopgate-client-token": tokenA },
      });
      assert.equal(still.status, 200, "no lockout");
    });

    test("HTTP is byte-faithful: compressed bodies keep their encoding, large bodies stream, every method", async () => {
      const auth = { "x-loopgate-client-token": tokenA, "accept-encoding": "br, gzip" };
      const br = await req(`${originA}/br`, { headers: auth });
      assert.equal(br.headers["content-encoding"], "br");
      assert.ok(br.body.equals(up.brotli), "the brotli bytes as the upstream sent them");
      const gz = await req(`${originA}/gz`, { headers: auth });
      if (kind === "node") {
        assert.equal(gz.headers["content-encoding"], "gzip");
        assert.ok(gz.body.equals(up.gzip), "the gzip bytes as the upstream sent them");
      } else {
        // Cloudflare's HTTP layer (workerd, and the edge) may re-encode a gzip body for a client that takes br:
        // what counts is that the header names the encoding the bytes are in.
        const { gunzipSync, brotliDecompressSync } = await import("node:zlib");
        const enc = gz.headers["content-encoding"];
        const plain = enc === "gzip" ? gunzipSync(gz.body) : enc === "br" ? brotliDecompressSync(gz.body) : gz.body;
        assert.equal(plain.toString(), up.text, `decodes as ${enc ?? "identity"}`);
      }
      const big = await req(`${originA}/big`, { headers: auth });
      assert.equal(big.status, 200);
      assert.ok(big.body.equals(up.big), "3 MiB arrive intact");
      const { createHash } = await import("node:crypto");
      const payload = Buffer.alloc(256 * 1024, 7);
      for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
        const body = payload;
        const r = await req(`${originA}/echo`, {
          method,
          headers: { "x-loopgate-client-token": tokenA, "content-type": "application/octet-stream" },
          body,
        });
        assert.equal(r.status, 200, `${method}: ${r.body.toString()}`);
        const got = JSON.parse(r.body.toString());
        assert.equal(got.method, method);
        assert.equal(got.sha256, createHash("sha256").update(body).digest("hex"));
      }
      const head = await req(`${originA}/br`, { method: "HEAD", headers: auth });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      const opts = await req(`${originA}/echo`, {
        method: "OPTIONS",
        headers: { "x-loopgate-client-token": tokenA },
        body: Buffer.from("o"),
      });
      assert.equal(opts.status, 200);
      assert.equal(JSON.parse(opts.body.toString()).bytes, 1);
    });
  });
}

test("loopgate dashboard with a relayed client config prints the host's own origin", async () => {
  const { cli } = await import("../helpers/proc.ts");
  const { clientEnv } = await import("../helpers/relay.ts");
  const hostId = "dJWAckBcFuaZsEEjc16TLvIt8kXTo8V_Fnz8sj-PDSs";
  const config = (url: string) => ({ gateway: { mode: "remote", remote: { url, token: "tok" } } });
  const byName = await cli(["dashboard", "--json"], {
    env: clientEnv(config(`wss://relay.example.com:8443/h/${hostId}`)),
  });
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(JSON.parse(byName.stdout).url, `https://${hostLabel(hostId)}.relay.example.com:8443/?token=tok`);
  const byIp = await cli(["dashboard", "--json"], { env: clientEnv(config(`wss://10.0.0.7:8443/h/${hostId}`)) });
  assert.equal(JSON.parse(byIp.stdout).url, `https://10.0.0.7:8443/h/${hostId}/?token=tok`);
});
