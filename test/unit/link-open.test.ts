/**
 * The host side of OPEN frames: a bad request fails its own stream (CLOSE
 * 1008 on that id) and never the link; what the connector makes of an OPEN
 * always carries its own relay marking (a relay cannot make a stream look
 * local); and a property-based fuzz over paths, queries, methods and header
 * sizes holds the rule "a bad stream never takes the link down".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateHeaderValue, validateHeaderName } from "node:http";
import fc from "fast-check";
import {
  decodeFrame,
  encodeOpen,
  encodePing,
  encodeClose,
  encodeData,
  FrameType,
  MAX_OPEN_PATH_BYTES,
  MAX_OPEN_QUERY_BYTES,
} from "../../shared/link/codec.ts";
import { LinkMux } from "../../shared/link/mux.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import { LoopgateError } from "../../shared/errors.ts";
import { upstreamRequest } from "../../agent/link/upstream-request.ts";
import { requestBody } from "../../agent/link/request-body.ts";

const UPSTREAM = "ws://127.0.0.1:18789";
const GOOD = { kind: "ws", path: "/", headers: {}, clientAddr: "192.0.2.1" };

function rawOpen(streamId: number, meta: unknown): Uint8Array {
  const body = new TextEncoder().encode(typeof meta === "string" ? meta : JSON.stringify(meta));
  const b = new Uint8Array(5 + body.length);
  b[0] = FrameType.OPEN;
  new DataView(b.buffer).setUint32(1, streamId);
  b.set(body, 5);
  return b;
}

/** A host-side mux whose onOpen does what the connector does first: plan the local request. */
function hostMux() {
  const sent: Uint8Array[] = [];
  const fatal: LoopgateError[] = [];
  const opened: LinkStream[] = [];
  /** A request planned for the gateway that Node would refuse, or one aimed elsewhere: a bug even though the mux would contain it. */
  const violations: string[] = [];
  const mux = new LinkMux({
    role: "host",
    send: (f) => sent.push(f),
    onFatal: (e) => fatal.push(e),
    onOpen: (s) => {
      const req = upstreamRequest(s.meta!, UPSTREAM);
      // What Node's http client would refuse must have been refused already.
      try {
        for (const [k, v] of Object.entries(req.headers)) {
          validateHeaderName(k);
          validateHeaderValue(k, v);
        }
      } catch (e) {
        violations.push(String(e));
      }
      if (req.url.host !== "127.0.0.1:18789") violations.push(`aimed at ${req.url.host}`);
      if (req.headers["x-loopgate-relay"] !== "1") violations.push("not marked as relayed");
      opened.push(s);
    },
  });
  const closes = () => sent.map((f) => decodeFrame(f)).filter((f) => f.type === FrameType.CLOSE);
  const alive = () => {
    const before = sent.length;
    mux.receive(encodePing(new Uint8Array(8).fill(7)));
    return sent.length === before + 1 && decodeFrame(sent[sent.length - 1]!).type === FrameType.PONG;
  };
  return { mux, sent, fatal, opened, closes, alive, violations };
}

test("a bad OPEN closes its own stream with 1008; the link and the next stream go on", () => {
  const h = hostMux();
  const bad: [string, unknown][] = [
    ["not JSON", "{"],
    ["path too long", { ...GOOD, path: "/" + "a".repeat(MAX_OPEN_PATH_BYTES) }],
    ["query too long", { ...GOOD, query: "q=" + "a".repeat(MAX_OPEN_QUERY_BYTES) }],
    ["method M-SEARCH", { ...GOOD, kind: "http", method: "M-SEARCH" }],
    ["method TRACE", { ...GOOD, kind: "http", method: "TRACE" }],
    ["path without a slash (a shifted host id)", { ...GOOD, path: "Q/x" }],
    ["path with a space", { ...GOOD, path: "/a b" }],
    ["huge header value", { ...GOOD, headers: { "user-agent": "x".repeat(5000) } }],
    ["control character in a header", { ...GOOD, headers: { origin: "https://a\u0001" } }],
    ["non-Latin-1 header", { ...GOOD, headers: { origin: "https://ä€" } }],
    [
      "too many headers",
      { ...GOOD, headers: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, "v"])) },
    ],
    ["bad subprotocol", { ...GOOD, protocols: ["a b"] }],
    ["duplicate subprotocols", { ...GOOD, protocols: ["a", "a"] }],
  ];
  let id = 1;
  for (const [name, meta] of bad) {
    h.mux.receive(rawOpen(id, meta));
    const last = h.closes().at(-1);
    assert.ok(
      last && last.type === FrameType.CLOSE && last.streamId === id && last.code === 1008,
      `${name}: stream ${id} refused with 1008`,
    );
    assert.match(last.type === FrameType.CLOSE ? last.reason : "", /^request refused by the host/, name);
    id++;
  }
  assert.deepEqual(h.fatal, [], "no bad OPEN was fatal for the link");
  assert.deepEqual(h.violations, []);
  assert.equal(h.opened.length, 0);
  assert.equal(h.mux.size, 0, "refused streams hold nothing");
  assert.ok(h.alive(), "the link still answers pings");
  h.mux.receive(encodeOpen(id, GOOD as never));
  assert.equal(h.opened.length, 1, "the next good OPEN opens");
});

test("an OPEN for an id still open ends the old stream locally and opens the new one; the link stays", () => {
  const h = hostMux();
  h.mux.receive(encodeOpen(9, GOOD as never));
  const old = h.opened[0]!;
  let oldEnd = 0;
  old.onClose = (code) => (oldEnd = code);
  const framesBefore = h.sent.length;
  h.mux.receive(encodeOpen(9, { ...GOOD, path: "/again" } as never));
  assert.equal(oldEnd, 1011, "the old stream ended locally");
  assert.equal(
    h.sent.slice(framesBefore).filter((f) => decodeFrame(f).type === FrameType.CLOSE).length,
    0,
    "no CLOSE that would hit the new stream",
  );
  assert.equal(h.opened.length, 2);
  assert.equal(h.mux.get(9)?.meta?.path, "/again");
  // A bad OPEN on an id still open: the old one ends, the new one is refused, the link stays.
  h.mux.receive(rawOpen(9, { ...GOOD, path: "nope" }));
  assert.equal(h.mux.size, 0);
  assert.deepEqual(h.fatal, []);
  assert.ok(h.alive());
});

test("a request body wait settles when the relay closes the stream without a body", async () => {
  const h = hostMux();
  h.mux.receive(encodeOpen(4, { ...GOOD, kind: "http", method: "POST" } as never));
  const body = requestBody(h.opened[0]!);
  h.mux.receive(encodeClose(4, 1001, "client went away"));
  assert.equal(await Promise.race([body, new Promise((r) => setTimeout(() => r("still waiting"), 200))]), undefined);
  h.mux.receive(encodeOpen(5, { ...GOOD, kind: "http", method: "POST" } as never));
  const body2 = requestBody(h.opened[1]!);
  h.mux.receive(encodeData(5, new Uint8Array([1, 2]), true, true));
  assert.deepEqual(await body2, new Uint8Array([1, 2]));
});

test("an OPEN the local stack cannot start fails that stream with 1011, not the link", () => {
  const sent: Uint8Array[] = [];
  let fatal = false;
  const mux = new LinkMux({
    role: "host",
    send: (f) => sent.push(f),
    onFatal: () => (fatal = true),
    onOpen: () => {
      throw new TypeError("boom");
    },
  });
  mux.receive(encodeOpen(5, GOOD as never));
  const close = decodeFrame(sent.at(-1)!);
  assert.ok(close.type === FrameType.CLOSE && close.streamId === 5 && close.code === 1011);
  assert.equal(fatal, false);
  assert.equal(mux.size, 0);
});

test("the connector marks every relayed stream itself, whatever the relay sent", () => {
  const forged = {
    ...GOOD,
    headers: {
      "x-loopgate-relay": "0",
      "x-forwarded-for": "127.0.0.1",
      forwarded: "for=127.0.0.1",
      "x-real-ip": "127.0.0.1",
      "tailscale-user-login": "owner@example.com",
    },
  };
  for (const meta of [
    forged,
    { ...GOOD, headers: {} },
    { ...GOOD, kind: "http" as const, method: "POST", headers: {} },
  ]) {
    const r = upstreamRequest(meta as never, UPSTREAM);
    assert.equal(r.headers["x-loopgate-relay"], "1");
    assert.equal(r.headers["x-forwarded-for"], "192.0.2.1", "the forwarded address is the OPEN's client address");
    assert.equal(r.headers["x-forwarded-proto"], "https");
    assert.equal(r.headers.forwarded, undefined);
    assert.equal(r.headers["x-real-ip"], undefined);
    assert.equal(r.headers["tailscale-user-login"], undefined);
  }
  // A client address that is no address is forwarded as "unknown", never dropped.
  assert.equal(upstreamRequest({ ...GOOD, clientAddr: "" } as never, UPSTREAM).headers["x-forwarded-for"], "unknown");
  // Credentials never ride a relayed WebSocket's upgrade; a path cannot leave the gateway.
  assert.equal(
    upstreamRequest({ ...GOOD, headers: { authorization: "Bearer x", cookie: "a=b" } } as never, UPSTREAM).headers
      .authorization,
    undefined,
  );
  assert.equal(upstreamRequest({ ...GOOD, path: "//evil.example/x" } as never, UPSTREAM).url.host, "127.0.0.1:18789");
});

test("the connector refuses a relayed client token that names another relay", () => {
  const jwt = (aud: unknown) =>
    `${Buffer.from('{"alg":"EdDSA"}').toString("base64url")}.${Buffer.from(JSON.stringify({ aud })).toString("base64url")}.sig`;
  const meta = (tok: string) => ({ ...GOOD, headers: { "x-loopgate-client-token": tok } }) as never;
  const A = "https://relay-a.test:8443";
  assert.equal(upstreamRequest(meta(jwt(A)), UPSTREAM, A).headers["x-loopgate-client-token"], jwt(A));
  assert.equal(upstreamRequest(meta(jwt([A, "x"])), UPSTREAM, A).headers["x-loopgate-client-token"], jwt([A, "x"]));
  assert.throws(
    () => upstreamRequest(meta(jwt("https://relay-b.test:8443")), UPSTREAM, A),
    (e: unknown) => e instanceof LoopgateError && /another relay/.test(e.message),
  );
  assert.throws(() => upstreamRequest(meta("garbage"), UPSTREAM, A), LoopgateError);
});

test("fuzz: OPEN frames with any path, query, method and header sizes never take the link down", () => {
  const pathArb = fc.oneof(
    fc.string({ maxLength: 64 }).map((s) => "/" + s),
    fc.string({ maxLength: 64 }),
    fc.nat({ max: 6000 }).map((n) => "/" + "p".repeat(n)),
    fc.constantFrom("/", "//evil.example/", "/%2e%2e/", "/a?b", "/a#b", "/\u0000", "/\u00e9", "Q/x", ""),
  );
  const queryArb = fc.option(
    fc.oneof(
      fc.string({ maxLength: 64 }),
      fc.nat({ max: 10_000 }).map((n) => "q=" + "x".repeat(n)),
    ),
    { nil: undefined },
  );
  const methodArb = fc.option(
    fc.oneof(
      fc.constantFrom(
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "M-SEARCH",
        "TRACE",
        "CONNECT",
        "get",
        "",
      ),
      fc.string({ maxLength: 20 }),
    ),
    { nil: undefined },
  );
  const headersArb = fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        "origin",
        "user-agent",
        "x-forwarded-for",
        "x-loopgate-relay",
        "cookie",
        "x-loopgate-client-token",
        "__proto__",
      ),
      fc.string({ maxLength: 20 }),
    ),
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.nat({ max: 6000 }).map((n) => "v".repeat(n)),
      fc.constantFrom("a\r\nb: c", "\u0001", "\u20ac", ""),
    ),
    { maxKeys: 8 },
  );
  const metaArb = fc.record({
    kind: fc.constantFrom("ws", "http", "ftp"),
    path: pathArb,
    query: queryArb,
    method: methodArb,
    headers: headersArb,
    clientAddr: fc.oneof(fc.constantFrom("192.0.2.1", "::1", "127.0.0.1", "unknown"), fc.string({ maxLength: 140 })),
    protocols: fc.option(fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(metaArb, { minLength: 1, maxLength: 6 }), (metas) => {
      const h = hostMux();
      metas.forEach((m, i) => h.mux.receive(rawOpen(i + 1, m)));
      if (h.fatal.length > 0 || h.violations.length > 0) return false;
      // Every OPEN either opened or was closed with a code on its own id.
      const closed = new Set(h.closes().map((f) => f.streamId));
      const opened = new Set(h.opened.map((s) => s.id));
      for (let id = 1; id <= metas.length; id++) if (opened.has(id) === closed.has(id)) return false;
      return h.alive();
    }),
    { numRuns: 1500 },
  );
  // Reused and colliding stream ids too: the link stays, and the host holds at most one stream per id.
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), metaArb), { minLength: 1, maxLength: 8 }),
      (opens) => {
        const h = hostMux();
        for (const [id, m] of opens) h.mux.receive(rawOpen(id, m));
        return h.fatal.length === 0 && h.violations.length === 0 && h.mux.size <= 3 && h.alive();
      },
    ),
    { numRuns: 800 },
  );
});
