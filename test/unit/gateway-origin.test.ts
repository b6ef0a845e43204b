/** Host and Origin rules of the gateway (agent/gateway/origin.ts), table-driven. */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { OriginPolicy, parseHostHeader } from "../../agent/gateway/origin.ts";

const PORT = 18789;
const loopback = new OriginPolicy({
  port: PORT,
  boundAddresses: ["127.0.0.1", "::1"],
  allowedHosts: [],
  allowedOrigins: [],
  allowTailscale: false,
});

describe("gateway Host check", () => {
  test("loopback names and literals pass, on any port (ssh -L changes the port)", () => {
    for (const h of [
      "127.0.0.1:18789",
      "127.0.0.1",
      "localhost:9999",
      "LOCALHOST:18789",
      "localhost.:18789",
      "[::1]:18789",
      "[::1]",
      "127.0.0.2:18789",
      "[::ffff:127.0.0.1]:1",
    ]) {
      assert.equal(loopback.checkHost(h), undefined, h);
    }
  });

  test("a DNS-rebinding name is refused, naming the config key", () => {
    const r = loopback.checkHost(`evil.example:${PORT}`);
    assert.equal(r?.code, "HOST_NOT_ALLOWED");
    assert.equal(r?.configKey, "gateway.allowedHosts");
    assert.match(r!.message, /evil\.example.*gateway\.allowedHosts/);
  });

  test("*.localhost, other IPs, bare IPv6 and junk are refused", () => {
    for (const h of [
      "app.localhost:18789",
      "192.168.1.10:18789",
      "::1",
      "",
      undefined,
      "a b",
      "[::1",
      "[::1]x",
      "127.0.0.1:99999999",
      "evil.example:80@127.0.0.1",
    ]) {
      assert.notEqual(loopback.checkHost(h), undefined, String(h));
    }
  });

  test("configured names and bound addresses pass; ts.net only with allowTailscale", () => {
    const p = new OriginPolicy({
      port: PORT,
      boundAddresses: ["0.0.0.0"],
      allowedHosts: ["gw.example.com"],
      allowedOrigins: [],
      allowTailscale: true,
      interfaceAddresses: () => ["127.0.0.1", "192.168.1.10", "fe80::1"],
    });
    for (const h of [
      "gw.example.com",
      "GW.example.com:443",
      "192.168.1.10:18789",
      "[fe80::1]:18789",
      "box.tail1234.ts.net",
      "127.0.0.1:18789",
    ])
      assert.equal(p.checkHost(h), undefined, h);
    for (const h of ["192.168.1.11:18789", "other.example.com", "ts.net"])
      assert.notEqual(p.checkHost(h), undefined, h);
    const noTs = new OriginPolicy({
      port: PORT,
      boundAddresses: ["100.100.1.2"],
      allowedHosts: [],
      allowedOrigins: [],
      allowTailscale: false,
    });
    assert.notEqual(noTs.checkHost("box.tail1234.ts.net"), undefined);
    assert.equal(noTs.checkHost("100.100.1.2:18789"), undefined);
    assert.notEqual(noTs.checkHost("100.100.1.3:18789"), undefined);
  });

  test("parseHostHeader", () => {
    assert.deepEqual(parseHostHeader("[::1]:80"), { name: "::1", port: "80" });
    assert.deepEqual(parseHostHeader("Example.COM."), { name: "example.com", port: undefined });
    assert.equal(parseHostHeader("x:y"), undefined);
  });
});

describe("gateway Origin check", () => {
  const host = `127.0.0.1:${PORT}`;
  test("no Origin (a CLI) passes", () => {
    assert.equal(loopback.checkOrigin(undefined, { host, local: true }), undefined);
  });

  test("a loopback page on another port may connect when the client is local", () => {
    for (const o of ["http://127.0.0.1:5173", "http://localhost:3000", "http://[::1]:8080", "https://localhost"]) {
      assert.equal(loopback.checkOrigin(o, { host, local: true }), undefined, o);
    }
  });

  test("...but not when the stream is forwarded (relayed or proxied)", () => {
    const r = loopback.checkOrigin("http://127.0.0.1:5173", { host, local: false });
    assert.equal(r?.code, "ORIGIN_NOT_ALLOWED");
    assert.equal(r?.configKey, "gateway.controlUi.allowedOrigins");
  });

  test("the gateway's own origin passes even when forwarded", () => {
    assert.equal(loopback.checkOrigin(`http://127.0.0.1:${PORT}`, { host, local: false }), undefined);
  });

  test("DNS rebinding: an Origin equal to the Host is NOT enough", () => {
    const r = loopback.checkOrigin(`http://evil.example:${PORT}`, { host: `evil.example:${PORT}`, local: true });
    assert.equal(r?.code, "ORIGIN_NOT_ALLOWED");
    assert.match(r!.message, /http:\/\/evil\.example:18789.*gateway\.controlUi\.allowedOrigins/);
  });

  test("*.localhost pages (a local relay's per-host origins) get no local trust", () => {
    assert.notEqual(loopback.checkOrigin("https://abc.localhost:8443", { host, local: true }), undefined);
  });

  test("opaque, malformed and non-http origins are refused", () => {
    for (const o of [
      "null",
      "",
      "file://",
      "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
      "http://a/b",
      "http://user@127.0.0.1:1",
    ]) {
      assert.notEqual(loopback.checkOrigin(o, { host, local: true }), undefined, o);
    }
  });

  test("configured origins and the relay origin of a relayed stream pass", () => {
    const p = new OriginPolicy({
      port: PORT,
      boundAddresses: ["127.0.0.1"],
      allowedHosts: [],
      allowedOrigins: ["https://ui.example.com/", "https://relay.example"],
      allowTailscale: false,
    });
    assert.equal(p.checkOrigin("https://ui.example.com", { host, local: false }), undefined);
    assert.equal(p.checkOrigin("https://relay.example", { host, local: false }), undefined);
    assert.equal(
      p.checkOrigin("https://r2.example:8443", { host, local: false, relayHost: "r2.example:8443" }),
      undefined,
    );
    assert.notEqual(
      p.checkOrigin("http://r2.example:8443", { host, local: false, relayHost: "r2.example:8443" }),
      undefined,
      "relay origins are https",
    );
  });

  test("a configured name's own origin passes (Control UI opened by that name)", () => {
    const p = new OriginPolicy({
      port: PORT,
      boundAddresses: ["127.0.0.1"],
      allowedHosts: ["gw.example.com"],
      allowedOrigins: [],
      allowTailscale: true,
    });
    assert.equal(p.checkOrigin("https://gw.example.com", { host: "gw.example.com", local: false }), undefined);
    assert.equal(p.checkOrigin("https://box.tail1.ts.net", { host: "box.tail1.ts.net", local: false }), undefined);
    assert.notEqual(p.checkOrigin("https://evil.example", { host: "gw.example.com", local: false }), undefined);
  });
});
