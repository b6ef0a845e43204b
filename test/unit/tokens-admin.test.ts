/**
 * Client-token administration: the shared mint/list/revoke (CLI and gateway)
 * and the `loopgate.tokens.*` methods the Control UI calls.
 */
import { hostLabel } from "../../shared/host-label.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  clientLinks,
  browserSignInUrl,
  checkScopes,
  createClientToken,
  listClientTokens,
} from "../../agent/tokens/admin.ts";
import { TokenStore } from "../../agent/tokens/store.ts";
import { ExchangeCodeStore } from "../../agent/tokens/exchange-codes.ts";
import { loadHostIdentity, loadOrCreateHostIdentity } from "../../agent/identity.ts";
import { verifyClientToken } from "../../shared/tokens.ts";
import { LoopgateError } from "../../shared/errors.ts";
import { MethodError, MethodRegistry, type MethodContext } from "../../agent/gateway/methods.ts";
import { registerTokenMethods } from "../../agent/gateway/methods/tokens.ts";

const PIN = "ab".repeat(32);

function tempEnv(): { env: NodeJS.ProcessEnv; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "loopgate-tokens-admin-"));
  return { env: { LOOPGATE_STATE_DIR: dir }, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const ctx = {
  connId: "t",
  scopes: ["operator.admin"],
  role: "operator",
  clientAddr: "127.0.0.1",
  relayed: false,
  emit: () => {},
  interim: () => {},
  signal: new AbortController().signal,
} satisfies MethodContext;

async function call(reg: MethodRegistry, name: string, params: unknown): Promise<Record<string, unknown>> {
  const def = reg.get(name);
  assert.ok(def, `${name} is registered`);
  assert.equal(def.scope, "operator.admin", `${name} needs operator.admin`);
  return (await def.handler(params, ctx)) as Record<string, unknown>;
}

async function callError(
  reg: MethodRegistry,
  name: string,
  params: unknown,
): Promise<{ code: string; details?: { code?: string } }> {
  try {
    await call(reg, name, params);
  } catch (e) {
    if (e instanceof MethodError) return e.shape as { code: string; details?: { code?: string } };
    throw e;
  }
  assert.fail(`${name} should have failed`);
}

test("client links: CLIs use the /h/ path, browsers the host's own origin (the path form only on a relay reached by address)", () => {
  const id = "A".repeat(43);
  const label = hostLabel(id)!;
  assert.deepEqual(clientLinks("wss://relay.example.com:8443", id), {
    wsUrl: `wss://relay.example.com:8443/h/${id}`,
    browserUrl: `https://${label}.relay.example.com:8443/`,
    origin: `https://${label}.relay.example.com:8443`,
  });
  assert.deepEqual(clientLinks("https://relay.example.com/some/path", id), {
    wsUrl: `wss://relay.example.com/h/${id}`,
    browserUrl: `https://${label}.relay.example.com/`,
    origin: `https://${label}.relay.example.com`,
  });
  assert.deepEqual(clientLinks("wss://127.0.0.1:8443", id), {
    wsUrl: `wss://127.0.0.1:8443/h/${id}`,
    browserUrl: `https://127.0.0.1:8443/h/${id}/`,
    origin: undefined,
  });
  assert.equal(
    browserSignInUrl(clientLinks("wss://r.example", id), "a.b-c_d"),
    `https://${label}.r.example/?token=a.b-c_d`,
  );
  assert.throws(() => clientLinks("ftp://r.example", id), LoopgateError);
});

test("scopes are checked: known operator scopes only, at least one", () => {
  assert.deepEqual(checkScopes(["operator.read", " operator.write", "operator.read"]), [
    "operator.read",
    "operator.write",
  ]);
  assert.throws(() => checkScopes([]), /at least one scope/);
  assert.throws(() => checkScopes(["operator.read", "root"]), /unknown scope "root"/);
});

test("a created token verifies with the host key, is recorded without the token, and lists as active", async () => {
  const { env, done } = tempEnv();
  try {
    const identity = await loadOrCreateHostIdentity(env);
    const store = new TokenStore(env);
    const t = await createClientToken({
      identity,
      store,
      relayUrl: "wss://relay.example.com:8443",
      relayFingerprint: PIN,
      ttlSec: 3600,
      scopes: ["operator.read"],
      name: " phone ",
    });
    assert.equal(t.name, "phone");
    assert.equal(t.clientConfig.gateway.remote.url, t.links.wsUrl);
    assert.equal(t.clientConfig.gateway.remote.tlsFingerprint?.length, 1);
    const claims = await verifyClientToken(t.token, identity.publicJwk, {
      hostId: identity.hostId,
      audience: "https://relay.example.com:8443",
    });
    assert.deepEqual(claims.scopes, ["operator.read"]);
    const list = listClientTokens(store);
    assert.equal(list.length, 1);
    assert.equal(list[0]!.state, "active");
    assert.ok(!JSON.stringify(list).includes(t.token), "the store never holds the token");
  } finally {
    done();
  }
});

test("loopgate.tokens.*: without a relay, create says how to set one up; with one, create, list and revoke work", async () => {
  const { env, done } = tempEnv();
  try {
    let relay: { enabled: boolean; url: string | undefined; tlsFingerprint: string | undefined } = {
      enabled: false,
      url: undefined,
      tlsFingerprint: undefined,
    };
    const closed: string[][] = [];
    const reg = new MethodRegistry();
    registerTokenMethods(reg, { relay: () => relay, closeRevoked: (ids) => closed.push(ids), env });

    const empty = await call(reg, "loopgate.tokens.list", {});
    assert.deepEqual(empty.tokens, []);
    assert.equal((empty.relay as { configured: boolean }).configured, false);
    assert.match(String((empty.relay as { hint: string }).hint), /gateway\.relay\.url/);
    const noRelay = await callError(reg, "loopgate.tokens.create", { access: "read" });
    assert.equal(noRelay.details?.code, "RELAY_NOT_CONFIGURED");
    assert.equal(await loadHostIdentity(env), undefined, "a refused create makes no host key");

    relay = { enabled: true, url: "wss://relay.example.com:8443", tlsFingerprint: PIN };
    assert.equal(
      (await callError(reg, "loopgate.tokens.create", { access: "admin" })).code,
      "INVALID_REQUEST",
      "admin tokens are not minted here",
    );
    assert.equal(
      (await callError(reg, "loopgate.tokens.create", { access: "read", ttl: "forever" })).details?.code,
      "USAGE",
    );
    assert.equal(
      (await callError(reg, "loopgate.tokens.create", { access: "read", name: "x".repeat(65) })).code,
      "INVALID_REQUEST",
    );

    const made = await call(reg, "loopgate.tokens.create", { name: "phone", access: "read", ttl: "7d" });
    assert.deepEqual(made.scopes, ["operator.read"]);
    assert.equal(
      made.link,
      `https://${hostLabel((await loadHostIdentity(env))!.hostId)!}.relay.example.com:8443/?token=${made.token as string}`,
    );
    assert.match(String(made.qrSvg), /^<svg[^>]*>/);
    // With the in-process link enabled, the QR carries a single-use code the link pushes, not the token.
    const exchange = made.exchange as { url: string; wsUrl: string; expiresAt: number };
    assert.match(exchange.url, /^https:\/\/[a-z2-7]+\.relay\.example\.com:8443\/\?code=[A-Za-z0-9_-]{20,}$/);
    assert.ok(!exchange.url.includes(made.token as string));
    assert.ok(Math.abs(exchange.expiresAt - (Date.now() + 60_000)) < 5_000, "a code lives 60 s");
    const pending = new ExchangeCodeStore(env).pending();
    assert.deepEqual(
      pending.map((c) => c.token),
      [made.token],
      "the store the link pushes from has the code's hash, for this token",
    );
    assert.ok(!JSON.stringify(pending).includes(exchange.url.split("code=")[1]!), "the code itself is not stored");
    assert.ok(Math.abs((made.expiresAt as number) - (Date.now() + 7 * 86400_000)) < 60_000);

    const listed = await call(reg, "loopgate.tokens.list", {});
    const rows = listed.tokens as { id: string; name: string; state: string; scopes: string[] }[];
    assert.deepEqual(
      rows.map((r) => [r.id, r.name, r.state, r.scopes.join(" ")]),
      [[made.id, "phone", "active", "operator.read"]],
    );
    assert.ok(!JSON.stringify(listed).includes(made.token as string), "list never shows a token");

    const revoked = await call(reg, "loopgate.tokens.revoke", { id: made.id });
    assert.equal(revoked.state, "revoked");
    assert.deepEqual(closed, [[made.id]], "the gateway closes the revoked token's connections");
    assert.equal(((await call(reg, "loopgate.tokens.list", {})).tokens as { state: string }[])[0]!.state, "revoked");
    assert.equal(
      (await callError(reg, "loopgate.tokens.revoke", { id: "nosuchtoken" })).details?.code,
      "TOKEN_NOT_FOUND",
    );
    assert.equal((await callError(reg, "loopgate.tokens.revoke", { id: "../x" })).code, "INVALID_REQUEST");
  } finally {
    done();
  }
});
