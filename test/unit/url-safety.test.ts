import { test } from "node:test";
import assert from "node:assert/strict";
import { parseGatewayUrl, checkUrlSafety, classifyIp, normalizeAddr } from "../../shared/url-safety.ts";

const ok = (url: string, env = {}, resolved?: ("loopback" | "private" | "public")[]) =>
  checkUrlSafety(parseGatewayUrl(url), env, resolved);

test("ws:// to loopback is allowed (v4, v6, localhost)", () => {
  for (const u of [
    "ws://127.0.0.1:18789",
    "ws://127.5.6.7:1",
    "ws://[::1]:18789",
    "ws://localhost:18789",
    "ws://[::ffff:127.0.0.1]:1",
  ])
    ok(u);
});

test("ws:// to a private address needs OPENCLAW_ALLOW_INSECURE_PRIVATE_WS=1", () => {
  for (const u of [
    "ws://10.1.2.3:18789",
    "ws://192.168.1.5:1",
    "ws://172.20.0.1:1",
    "ws://100.101.102.103:1",
    "ws://[fd7a:115c:a1e0::1]:1",
    "ws://[fe80::1]:1",
  ]) {
    assert.throws(() => ok(u), /URL_UNSAFE|private-network/, u);
    ok(u, { OPENCLAW_ALLOW_INSECURE_PRIVATE_WS: "1" });
  }
  assert.throws(
    () => ok("ws://10.0.0.1:1", { OPENCLAW_ALLOW_INSECURE_PRIVATE_WS: "true" }),
    /private-network/,
    "only the exact value 1 counts",
  );
});

test("ws:// to a public address is never allowed, even with the break-glass variable", () => {
  for (const u of ["ws://8.8.8.8:18789", "ws://[2001:db8::1]:1", "ws://172.32.0.1:1"]) {
    assert.throws(
      () => ok(u, { OPENCLAW_ALLOW_INSECURE_PRIVATE_WS: "1" }),
      (e: Error) => /public address/.test(e.message) && /wss:\/\//.test((e as { hint?: string }).hint ?? ""),
    );
  }
});

test("ws:// host names are judged by what they resolve to; unresolved ones are treated as public", () => {
  assert.throws(() => ok("ws://gateway.example:1"), /public/);
  ok("ws://gw.lan:1", { OPENCLAW_ALLOW_INSECURE_PRIVATE_WS: "1" }, ["private"]);
  assert.throws(
    () => ok("ws://gw.lan:1", { OPENCLAW_ALLOW_INSECURE_PRIVATE_WS: "1" }, ["private", "public"]),
    /public/,
  );
});

test("wss:// is allowed anywhere; bad URLs are clear errors", () => {
  ok("wss://relay.example/h/abc");
  ok("https://relay.example/h/abc");
  assert.equal(parseGatewayUrl("https://relay.example/h/abc").url.protocol, "wss:");
  assert.throws(() => parseGatewayUrl("ftp://x"), /unsupported URL scheme/);
  assert.throws(() => parseGatewayUrl("not a url"), /not a valid URL/);
  assert.throws(() => parseGatewayUrl("wss://user:pw@relay.example/"), /credentials in the URL/);
});

test("classifyIp", () => {
  assert.equal(classifyIp("127.0.0.1"), "loopback");
  assert.equal(classifyIp("::1"), "loopback");
  assert.equal(classifyIp("10.0.0.1"), "private");
  assert.equal(classifyIp("8.8.8.8"), "public");
  assert.equal(classifyIp("example.com"), undefined);
  assert.equal(classifyIp("1::2::3"), undefined);
});

test("normalizeAddr: IPv4-mapped IPv6 becomes IPv4; other addresses pass; absent is unknown", () => {
  assert.equal(normalizeAddr("::ffff:127.0.0.1"), "127.0.0.1");
  assert.equal(normalizeAddr("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(normalizeAddr("::1"), "::1");
  assert.equal(normalizeAddr("::ffff:7f00:1"), "::ffff:7f00:1");
  assert.equal(normalizeAddr("203.0.113.9"), "203.0.113.9");
  assert.equal(normalizeAddr(undefined), "unknown");
  assert.equal(normalizeAddr(""), "unknown");
});
