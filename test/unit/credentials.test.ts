/**
 * The credential-precedence contract of the remote-access seed, row by row.
 * Each row: config + env + explicit flags + call path -> the URL, and the
 * token/password source that must win (or the error that must be raised).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveTarget, type CallPath } from "../../shared/credentials.ts";
import type { LoopgateConfig, SecretRef } from "../../shared/config/schema.ts";
import { LoopgateError } from "../../shared/errors.ts";

const ENV_ALL = {
  OPENCLAW_GATEWAY_TOKEN: "env-token",
  OPENCLAW_GATEWAY_PASSWORD: "env-password",
};
const CFG_ALL: LoopgateConfig = {
  gateway: {
    auth: { token: "auth-token", password: "auth-password" },
    remote: { url: "wss://relay.example/h/abc", token: "remote-token", password: "remote-password" },
  },
};
const remote = (c: LoopgateConfig): LoopgateConfig => ({ gateway: { ...c.gateway, mode: "remote" } });
const resolver = (ref: SecretRef) => (ref.source === "env" && ref.id === "PRESENT" ? "from-ref" : undefined);

interface Row {
  name: string;
  config?: LoopgateConfig;
  env?: Record<string, string>;
  explicit?: { url?: string; token?: string; password?: string };
  path?: CallPath;
  stored?: string;
  /** Expected fields; `undefined` means the field must be absent or undefined. */
  want?: { [K in "url" | "urlSource" | "token" | "tokenSource" | "password" | "passwordSource"]?: string | undefined };
  error?: RegExp;
}

const rows: Row[] = [
  // explicit credentials always win
  {
    name: "explicit --token beats env and config (local)",
    config: CFG_ALL,
    env: ENV_ALL,
    explicit: { token: "flag" },
    want: { token: "flag", tokenSource: "--token", password: undefined },
  },
  {
    name: "explicit --password beats everything (remote)",
    config: remote(CFG_ALL),
    env: ENV_ALL,
    explicit: { password: "flagpw" },
    want: { password: "flagpw", passwordSource: "--password", token: undefined },
  },
  // --url never reuses implicit credentials
  {
    name: "--url without explicit credentials is an error",
    config: CFG_ALL,
    env: ENV_ALL,
    explicit: { url: "ws://127.0.0.1:1" },
    error: /CREDENTIALS_MISSING|--url needs explicit credentials/,
  },
  {
    name: "--url with --token uses only the flag",
    config: CFG_ALL,
    env: ENV_ALL,
    explicit: { url: "ws://127.0.0.1:1", token: "t" },
    want: { url: "ws://127.0.0.1:1", urlSource: "--url", token: "t", password: undefined },
  },
  // OPENCLAW_GATEWAY_URL uses env credentials only
  {
    name: "env URL uses env token, never config",
    config: CFG_ALL,
    env: { ...ENV_ALL, OPENCLAW_GATEWAY_URL: "ws://127.0.0.1:2" },
    want: {
      url: "ws://127.0.0.1:2",
      urlSource: "env:OPENCLAW_GATEWAY_URL",
      token: "env-token",
      password: "env-password",
    },
  },
  {
    name: "env URL with no env credentials sends none (config ignored)",
    config: CFG_ALL,
    env: { OPENCLAW_GATEWAY_URL: "ws://127.0.0.1:2" },
    want: { token: undefined, password: undefined },
  },
  // local mode order
  {
    name: "local token: env first",
    config: CFG_ALL,
    env: ENV_ALL,
    want: { token: "env-token", tokenSource: "env:OPENCLAW_GATEWAY_TOKEN", url: "ws://127.0.0.1:18789" },
  },
  {
    name: "local token: gateway.auth.token second",
    config: CFG_ALL,
    want: { token: "auth-token", tokenSource: "config:gateway.auth.token" },
  },
  {
    name: "local token: gateway.remote.token only when auth token unset",
    config: { gateway: { remote: { token: "remote-token" } } },
    want: { token: "remote-token", tokenSource: "config:gateway.remote.token" },
  },
  {
    name: "local token: the stored generated token counts as the local auth token",
    config: { gateway: { remote: { token: "remote-token" } } },
    stored: "stored-token",
    want: { token: "stored-token", tokenSource: "state:gateway-token" },
  },
  { name: "local password: env first", config: CFG_ALL, env: ENV_ALL, want: { password: "env-password" } },
  { name: "local password: gateway.auth.password second", config: CFG_ALL, want: { password: "auth-password" } },
  {
    name: "local password: remote fallback when auth password unset",
    config: { gateway: { remote: { password: "remote-password" } } },
    want: { password: "remote-password" },
  },
  // remote mode order
  {
    name: "remote token: gateway.remote.token first",
    config: remote(CFG_ALL),
    env: ENV_ALL,
    want: { token: "remote-token", url: "wss://relay.example/h/abc", urlSource: "config:gateway.remote.url" },
  },
  {
    name: "remote token: env second",
    config: remote({ gateway: { auth: { token: "auth-token" }, remote: { url: "wss://r/h/x" } } }),
    env: ENV_ALL,
    want: { token: "env-token" },
  },
  {
    name: "remote token: gateway.auth.token last",
    config: remote({ gateway: { auth: { token: "auth-token" }, remote: { url: "wss://r/h/x" } } }),
    want: { token: "auth-token" },
  },
  { name: "remote password: env first", config: remote(CFG_ALL), env: ENV_ALL, want: { password: "env-password" } },
  {
    name: "remote password: gateway.remote.password second",
    config: remote(CFG_ALL),
    want: { password: "remote-password" },
  },
  {
    name: "remote password: gateway.auth.password last",
    config: remote({ gateway: { auth: { password: "auth-password" }, remote: { url: "wss://r/h/x" } } }),
    want: { password: "auth-password" },
  },
  {
    name: "remote mode without remote.url is a clear error",
    config: { gateway: { mode: "remote" } },
    error: /gateway\.remote\.url is not set/,
  },
  // remote probe/status is strict
  {
    name: "remote probe: token from gateway.remote.token only",
    config: remote({ gateway: { auth: { token: "auth-token" }, remote: { url: "wss://r/h/x" } } }),
    env: ENV_ALL,
    path: "probe",
    want: { token: undefined },
  },
  {
    name: "remote probe: uses gateway.remote.token",
    config: remote(CFG_ALL),
    env: ENV_ALL,
    path: "probe",
    want: { token: "remote-token" },
  },
  {
    name: "local probe keeps the local order",
    config: CFG_ALL,
    env: ENV_ALL,
    path: "probe",
    want: { token: "env-token" },
  },
  // legacy CLAWDBOT_* only on the compatibility path
  {
    name: "CLAWDBOT token ignored on the normal call path",
    env: { CLAWDBOT_GATEWAY_TOKEN: "legacy" },
    want: { token: undefined },
  },
  {
    name: "CLAWDBOT token ignored on probe",
    env: { CLAWDBOT_GATEWAY_TOKEN: "legacy" },
    path: "probe",
    want: { token: undefined },
  },
  {
    name: "CLAWDBOT token used on the compat path",
    env: { CLAWDBOT_GATEWAY_TOKEN: "legacy" },
    path: "compat",
    want: { token: "legacy", tokenSource: "env:CLAWDBOT_GATEWAY_TOKEN" },
  },
  {
    name: "OPENCLAW beats CLAWDBOT on the compat path",
    env: { CLAWDBOT_GATEWAY_TOKEN: "legacy", OPENCLAW_GATEWAY_TOKEN: "new" },
    path: "compat",
    want: { token: "new" },
  },
  {
    name: "CLAWDBOT URL only on the compat path",
    env: { CLAWDBOT_GATEWAY_URL: "ws://127.0.0.1:3", CLAWDBOT_GATEWAY_TOKEN: "legacy" },
    path: "compat",
    want: { url: "ws://127.0.0.1:3", token: "legacy" },
  },
  {
    name: "CLAWDBOT URL ignored on the normal path",
    env: { CLAWDBOT_GATEWAY_URL: "ws://127.0.0.1:3" },
    want: { url: "ws://127.0.0.1:18789" },
  },
  // secret references
  {
    name: "a resolving env ref is used",
    config: { gateway: { auth: { token: { source: "env", id: "PRESENT" } } } },
    want: { token: "from-ref" },
  },
  {
    name: "an unresolved gateway.auth.token ref fails closed (no remote fallback)",
    config: { gateway: { auth: { token: { source: "env", id: "ABSENT" } }, remote: { token: "remote-token" } } },
    error: /SECRET_UNRESOLVED|gateway\.auth\.token is a secret reference/,
  },
  {
    name: "an unresolved remote ref fails closed in remote mode",
    config: remote({ gateway: { remote: { url: "wss://r/h/x", token: { source: "file", id: "/nonexistent/x" } } } }),
    error: /gateway\.remote\.token is a secret reference/,
  },
  // port sources for the local URL
  {
    name: "local URL from OPENCLAW_GATEWAY_PORT",
    env: { OPENCLAW_GATEWAY_PORT: "4321" },
    config: { gateway: { port: 1111 } },
    want: { url: "ws://127.0.0.1:4321", urlSource: "env:OPENCLAW_GATEWAY_PORT" },
  },
  {
    name: "local URL from gateway.port",
    config: { gateway: { port: 1111 } },
    want: { url: "ws://127.0.0.1:1111", urlSource: "config:gateway.port" },
  },
];

for (const row of rows) {
  test(row.name, () => {
    const run = () =>
      resolveTarget({
        config: row.config ?? {},
        env: row.env ?? {},
        path: row.path ?? "call",
        ...(row.explicit ? { explicit: row.explicit } : {}),
        resolveSecret: resolver,
        ...(row.stored !== undefined ? { storedLocalToken: row.stored } : {}),
      });
    if (row.error) {
      assert.throws(run, (e: unknown) => e instanceof LoopgateError && row.error!.test(`${e.code}: ${e.message}`));
      return;
    }
    const r = run();
    const w = row.want ?? {};
    if ("url" in w) assert.equal(r.url, w.url);
    if ("urlSource" in w) assert.equal(r.urlSource, w.urlSource);
    if ("token" in w) assert.equal(r.token?.value, w.token);
    if ("tokenSource" in w) assert.equal(r.token?.source, w.tokenSource);
    if ("password" in w) assert.equal(r.password?.value, w.password);
    if ("passwordSource" in w) assert.equal(r.password?.source, w.passwordSource);
    // A source label never carries the secret itself.
    for (const s of [r.token?.source, r.password?.source])
      if (s)
        assert.ok(
          !/token-|password-|legacy|from-ref/.test(
            s.replace(
              /OPENCLAW_GATEWAY_TOKEN|OPENCLAW_GATEWAY_PASSWORD|CLAWDBOT_GATEWAY_TOKEN|gateway\.remote\.token|gateway\.auth\.token|gateway-token|password/g,
              "",
            ),
          ),
          s,
        );
  });
}
