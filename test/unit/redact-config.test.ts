/** config.get's redaction: no secret value leaves the gateway, secret references and plain settings stay. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { redactSecrets, REDACTED } from "../../agent/log/redact-config.ts";
import { configSnapshot } from "../../agent/gateway/methods/config.ts";

const config = {
  gateway: {
    port: 18789,
    bind: "loopback",
    auth: { mode: "token", token: "gw-token-0123456789abcdef", password: "hunter2-password", allowTailscale: false },
    remote: {
      url: "wss://user:pa55@relay.example/h/abc?token=qs-secret-value",
      token: { source: "env", id: "REMOTE_TOKEN" },
      tlsFingerprint: "sha256:AB",
    },
    relay: { enabled: true, url: "wss://relay.example/link" },
    controlUi: { allowedOrigins: ["http://127.0.0.1:5173"] },
  },
  agent: {
    provider: {
      baseUrl: "http://127.0.0.1:11434/v1",
      model: "llama3.2",
      apiKey: "sk-live-abcdefghijklmnop1234",
      maxTokens: 4096,
    },
    systemPrompt:
      "Be brief. My key is sk-proj-abcdefghijklmnopqrstuv and a JWT eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4eHh4eHh4In0.c2lnbmF0dXJlc2ln",
  },
  headers: { "x-custom": "header-secret-value" },
};

test("secret-named keys, token-shaped strings, URL credentials and header maps are redacted", () => {
  const r = redactSecrets(config) as typeof config;
  const text = JSON.stringify(r);
  for (const secret of [
    "gw-token-0123456789abcdef",
    "hunter2-password",
    "pa55",
    "qs-secret-value",
    "sk-live-abcdefghijklmnop1234",
    "sk-proj-abcdefghijklmnopqrstuv",
    "eyJhbGciOiJFZERTQSJ9",
    "header-secret-value",
  ]) {
    assert.ok(!text.includes(secret), `${secret} is redacted`);
  }
  assert.equal(r.gateway.auth.token, REDACTED);
  assert.equal(r.agent.provider.apiKey, REDACTED);
  assert.equal(r.gateway.remote.url, `wss://${REDACTED}@relay.example/h/abc?token=${REDACTED}`);
});

test("plain settings and secret references stay as they are", () => {
  const r = redactSecrets(config) as typeof config;
  assert.equal(r.gateway.port, 18789);
  assert.equal(r.gateway.auth.mode, "token");
  assert.equal(r.gateway.auth.allowTailscale, false);
  assert.deepEqual(
    r.gateway.remote.token,
    { source: "env", id: "REMOTE_TOKEN" },
    "a reference names where the secret lives",
  );
  assert.equal(r.agent.provider.maxTokens, 4096, "maxTokens is not a token");
  assert.equal(r.agent.provider.baseUrl, "http://127.0.0.1:11434/v1");
  assert.deepEqual(r.gateway.controlUi.allowedOrigins, ["http://127.0.0.1:5173"]);
  assert.equal(config.gateway.auth.token, "gw-token-0123456789abcdef", "the input is not modified");
});

test("config.get's snapshot carries only the redacted form, and its hash reveals nothing", () => {
  const snap = configSnapshot(config);
  assert.ok(!JSON.stringify(snap).includes("gw-token-0123456789abcdef"));
  assert.equal(snap.raw, null);
  const other = configSnapshot({
    ...config,
    gateway: { ...config.gateway, auth: { ...config.gateway.auth, token: "another-token-value-999999" } },
  });
  assert.equal(snap.hash, other.hash, "changing only a secret does not change the hash");
});
