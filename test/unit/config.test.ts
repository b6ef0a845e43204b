import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../../agent/config/load.ts";
import { resolveGatewaySettings } from "../../agent/gateway/settings.ts";
import { LoopgateError } from "../../shared/errors.ts";
import { tempDir } from "../helpers/proc.ts";

test("JSON5 config with comments, trailing commas and unquoted keys parses", () => {
  const c = parseConfigText(
    `{
    // the gateway
    gateway: { port: 19000, bind: "loopback", auth: { mode: "token", token: { source: "env", id: "MY_TOKEN" }, }, },
  }`,
    "test",
  );
  assert.equal(c.gateway?.port, 19000);
});

test("unknown keys and wrong types name the key", () => {
  assert.throws(() => parseConfigText("{ gateway: { prot: 1 } }", "cfg"), /unknown key `gateway\.prot`/);
  assert.throws(() => parseConfigText("{ gatway: {} }", "cfg"), /unknown key `gatway`/);
  assert.throws(() => parseConfigText("{ gateway: { port: '1' } }", "cfg"), /`gateway\.port` must be integer/);
  assert.throws(
    () => parseConfigText("{ gateway: { bind: 'everywhere' } }", "cfg"),
    /`gateway\.bind` must be one of "loopback", "lan", "tailnet", "custom", "auto"/,
  );
  assert.throws(
    () => parseConfigText("{ gateway: { auth: { token: { source: 'vault', id: 'x' } } } }", "cfg"),
    /gateway\.auth\.token/,
  );
  assert.throws(
    () => parseConfigText("{ gateway: { remote: { tlsFingerprint: 5 } } }", "cfg"),
    /gateway\.remote\.tlsFingerprint/,
  );
  assert.throws(() => parseConfigText("[1,2]", "cfg"), /must be an object/);
  assert.throws(() => parseConfigText("{ gateway: ", "cfg"), /not valid JSON5/);
});

const base = (flags = {}, config = {}, env: NodeJS.ProcessEnv = {}) =>
  resolveGatewaySettings({
    flags,
    config,
    env: { LOOPGATE_STATE_DIR: tempDir(), ...env },
    resolveSecret: () => undefined,
    allowGenerate: false,
  });

test("port precedence: --port > OPENCLAW_GATEWAY_PORT > gateway.port > 18789", () => {
  assert.equal(base().port, 18789);
  assert.equal(base({}, { gateway: { port: 2000 } }).port, 2000);
  assert.equal(base({}, { gateway: { port: 2000 } }, { OPENCLAW_GATEWAY_PORT: "3000" }).port, 3000);
  assert.equal(base({ port: "4000" }, { gateway: { port: 2000 } }, { OPENCLAW_GATEWAY_PORT: "3000" }).port, 4000);
  assert.throws(() => base({ port: "99999" }), /--port must be a port number/);
  assert.throws(() => base({}, {}, { OPENCLAW_GATEWAY_PORT: "x" }), /OPENCLAW_GATEWAY_PORT must be a port number/);
});

test("bind safety: nothing beyond loopback without token or password", () => {
  for (const bind of ["lan", "tailnet"]) {
    assert.throws(
      () => base({ bind }),
      (e: unknown) => e instanceof LoopgateError && e.code === "BIND_REFUSED",
    );
    assert.throws(
      () => base({ bind, auth: "none" }),
      (e: unknown) => e instanceof LoopgateError && e.code === "BIND_REFUSED",
    );
    assert.equal(base({ bind, token: "t" }).auth.mode, "token");
    assert.equal(base({ bind, auth: "password", password: "p" }).auth.mode, "password");
  }
  assert.throws(() => base({ bind: "custom" }), /needs an address/);
  assert.throws(() => base({ bind: "custom", host: "192.168.1.2" }), /BIND_REFUSED|beyond loopback/);
  assert.equal(base({ bind: "custom", host: "127.0.0.1", auth: "none" }).auth.mode, "none");
  assert.throws(() => base({ bind: "bogus" }), /--bind must be one of/);
});

test("auth modes: none on loopback only, password needs a password, inferred password mode", () => {
  assert.equal(base({ auth: "none" }).auth.mode, "none");
  assert.throws(() => base({ auth: "password" }), /needs a password/);
  assert.equal(base({}, {}, { OPENCLAW_GATEWAY_PASSWORD: "pw" }).auth.mode, "password");
  const s = base({}, {}, { OPENCLAW_GATEWAY_TOKEN: "tok" });
  assert.equal(s.auth.token?.source, "env:OPENCLAW_GATEWAY_TOKEN");
  assert.equal(base({ token: "flag" }, {}, { OPENCLAW_GATEWAY_TOKEN: "tok" }).auth.token?.value, "flag");
});

test("an unresolved gateway.auth.token reference fails closed", () => {
  assert.throws(
    () => base({}, { gateway: { auth: { token: { source: "env", id: "NOPE" } } } }),
    (e: unknown) =>
      e instanceof LoopgateError && e.code === "SECRET_UNRESOLVED" && /gateway\.auth\.token/.test(e.message),
  );
});
