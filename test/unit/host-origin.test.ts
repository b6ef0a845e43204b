/** How the relay core tells which host a request is for, and which browser credentials it may use there. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  hostTarget,
  browserCredentialRefusal,
  serviceWorkerRefusal,
  hostResponse,
  relayHostOf,
  type HostTarget,
} from "../../relay/core/host-origin.ts";
import { hostLabel } from "../../shared/host-label.ts";

const HOST_ID = "dJWAckBcFuaZsEEjc16TLvIt8kXTo8V_Fnz8sj-PDSs";
const label = hostLabel(HOST_ID)!;
const reqTo = (url: string, headers: Record<string, string> = {}, method = "GET") =>
  new Request(url, { method, headers });

test("a host's origin, the path form, and the relay's own routes", () => {
  assert.deepEqual(hostTarget(reqTo(`https://${label}.relay.example:8443/a/b?c=1`)), {
    hostId: HOST_ID,
    via: "origin",
    rest: "/a/b",
  });
  assert.deepEqual(hostTarget(reqTo(`https://${label.toUpperCase()}.relay.example/`)), {
    hostId: HOST_ID,
    via: "origin",
    rest: "/",
  });
  assert.deepEqual(hostTarget(reqTo(`https://relay.example/h/${HOST_ID}/x/y`)), {
    hostId: HOST_ID,
    via: "path",
    rest: "/x/y",
  });
  assert.deepEqual(hostTarget(reqTo(`https://relay.example/h/${HOST_ID}`)), {
    hostId: HOST_ID,
    via: "path",
    rest: "/",
  });
  // A percent-encoded character in the id is not an id: no shifted slice of the path is ever forwarded.
  assert.equal(
    hostTarget(reqTo(`https://relay.example/h/${HOST_ID.slice(0, 42)}%${HOST_ID.charCodeAt(42).toString(16)}/x`))!
      .hostId,
    "",
  );
  assert.equal(hostTarget(reqTo("https://relay.example/healthz")), undefined);
  assert.equal(hostTarget(reqTo("https://relay.example/link")), undefined);
  assert.equal(hostTarget(reqTo("https://127.0.0.1:8443/healthz")), undefined);
  assert.equal(hostTarget(reqTo(`https://${label}/`)), undefined, "a bare label is not a subdomain of anything");
  assert.equal(relayHostOf(reqTo(`https://${label}.relay.example:8443/`)), "relay.example:8443");
});

test("browser credentials: only at the host's own origin (or a single-host relay), only from its own pages", () => {
  const origin: HostTarget = { hostId: HOST_ID, via: "origin", rest: "/" };
  const path: HostTarget = { hostId: HOST_ID, via: "path", rest: "/" };
  const own = `https://${label}.relay.example`;
  const other = `https://${hostLabel("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}.relay.example`;
  const at = (headers: Record<string, string>, method = "GET") => reqTo(`${own}/`, headers, method);
  assert.equal(browserCredentialRefusal(at({ origin: own }), origin, "cookie", false), undefined);
  assert.equal(browserCredentialRefusal(at({}), origin, "cookie", false), undefined);
  assert.match(browserCredentialRefusal(at({ origin: other }), origin, "cookie", false)!, /cross-origin/);
  assert.match(browserCredentialRefusal(at({ origin: "null" }), origin, "cookie", false)!, /cross-origin/);
  assert.match(
    browserCredentialRefusal(
      at({ "sec-fetch-site": "same-site", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty" }),
      origin,
      "cookie",
      false,
    )!,
    /cross-origin/,
  );
  assert.match(
    browserCredentialRefusal(
      at({ "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe" }),
      origin,
      "cookie",
      false,
    )!,
    /cross-origin/,
  );
  assert.equal(
    browserCredentialRefusal(
      at({ "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" }),
      origin,
      "cookie",
      false,
    ),
    undefined,
  );
  // Header tokens are never the browser's doing.
  assert.equal(browserCredentialRefusal(at({ origin: other }), origin, "authorization", false), undefined);
  // The shared path form: no browser credentials on a relay with several hosts; as before with one.
  const shared = reqTo(`https://relay.example/h/${HOST_ID}/`);
  assert.match(
    browserCredentialRefusal(shared, path, "query", false)!,
    new RegExp(`open https://${label}\\.relay\\.example/`),
  );
  assert.match(browserCredentialRefusal(shared, path, "cookie", false)!, /shared by several hosts/);
  assert.equal(browserCredentialRefusal(shared, path, "query", true), undefined);
  assert.equal(browserCredentialRefusal(shared, path, "header", false), undefined);
  assert.match(
    serviceWorkerRefusal(reqTo(`https://relay.example/h/${HOST_ID}/sw.js`, { "service-worker": "script" }), path)!,
    /own origin/,
  );
  assert.equal(serviceWorkerRefusal(reqTo(`${own}/sw.js`, { "service-worker": "script" }), origin), undefined);
});

test("host responses: body untouched, reaching headers dropped, isolation headers enforced", async () => {
  const upstream = new Response("body", {
    status: 201,
    headers: {
      "service-worker-allowed": "/",
      "set-cookie": "a=1; Domain=relay.example",
      "clear-site-data": '"cookies"',
      "cross-origin-opener-policy": "unsafe-none",
      "x-kept": "1",
    },
  });
  const r = hostResponse(upstream, { hostId: HOST_ID, via: "origin", rest: "/" }, false);
  assert.equal(r.status, 201);
  assert.equal(await r.text(), "body");
  for (const h of ["service-worker-allowed", "set-cookie", "clear-site-data", "content-security-policy"])
    assert.equal(r.headers.get(h), null, h);
  assert.equal(r.headers.get("cross-origin-opener-policy"), "same-origin");
  assert.equal(r.headers.get("x-kept"), "1");
  const shared = hostResponse(new Response("x"), { hostId: HOST_ID, via: "path", rest: "/" }, false);
  assert.equal(shared.headers.get("content-security-policy"), "sandbox");
});

test("an Authorization is the relay's when it is any loopgate token, the upstream's otherwise", async () => {
  const { isOwnAuthorization } = await import("../../relay/core/auth.ts");
  const jwt = (claims: Record<string, unknown>) =>
    `Bearer ${Buffer.from('{"alg":"EdDSA"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
  assert.equal(isOwnAuthorization(jwt({ iss: HOST_ID, purpose: "client" }), HOST_ID), true);
  assert.equal(
    isOwnAuthorization(jwt({ iss: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", purpose: "client" }), HOST_ID),
    true,
    "another host's token is never forwarded",
  );
  assert.equal(
    isOwnAuthorization(jwt({ iss: "https://idp.example", sub: "me" }), HOST_ID),
    false,
    "an upstream's JWT is the upstream's",
  );
  assert.equal(isOwnAuthorization("Bearer the-gateway-secret", HOST_ID), false);
  assert.equal(isOwnAuthorization("Basic dXNlcjpwYXNz", HOST_ID), false);
  assert.equal(isOwnAuthorization(null, HOST_ID), false);
});
