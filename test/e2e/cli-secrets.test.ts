/**
 * Secrets on the command line: credentials inside a --url are never printed
 * (URL_INVALID, health, status --deep, human and JSON), and secrets can come
 * from files (--token-file / --password-file) or the environment instead of
 * flags that every local user can read in ps.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { startGateway, cli, runCli, tempDir, type GatewayProc } from "../helpers/proc.ts";
import { connectedClient } from "../helpers/ws-client.ts";

const TOKEN = "cli-secrets-gateway-token-0123456789";
const SECRET = "Sekrit-in-the-url-42";

function secretFile(value: string, mode = 0o600): string {
  const p = join(tempDir(), "secret");
  writeFileSync(p, value + "\n", { mode });
  chmodSync(p, mode);
  return p;
}

describe("CLI: credentials in URLs are redacted in everything printed", () => {
  let gw: GatewayProc;
  before(async () => {
    gw = await startGateway({ args: ["--token", TOKEN] });
  });
  after(() => gw?.kill());

  test("URL_INVALID does not echo a token in the URL", async () => {
    for (const url of [`ws://[bad/?token=${SECRET}`, `ws://user:${SECRET}@[bad/`]) {
      for (const json of [[], ["--json"]]) {
        const r = await cli(["health", "--url", url, "--token", TOKEN, ...json], { env: gw.env });
        assert.equal(r.code, 2, r.stderr + r.stdout);
        assert.match(r.stderr + r.stdout, /URL_INVALID/);
        assert.ok(!(r.stderr + r.stdout).includes(SECRET), `secret printed: ${r.stderr}${r.stdout}`);
      }
    }
  });

  test("status --deep and health redact target.url (JSON and human)", async () => {
    const url = `ws://127.0.0.1:${gw.port}/?token=${SECRET}`;
    const deep = await cli(["status", "--deep", "--json", "--url", url, "--token", TOKEN], { env: gw.env });
    assert.equal(deep.code, 0, deep.stderr);
    const doc = JSON.parse(deep.stdout) as { deep: { target: { url: string } } };
    assert.equal(doc.deep.target.url, `ws://127.0.0.1:${gw.port}/?token=***`);
    for (const args of [["status", "--deep"], ["status"], ["health"], ["health", "--json"]]) {
      const r = await cli([...args, "--url", url, "--token", TOKEN], { env: gw.env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!(r.stdout + r.stderr).includes(SECRET), `${args.join(" ")} printed the secret: ${r.stdout}`);
      assert.match(r.stdout, /token=\*\*\*/);
    }
  });
});

describe("CLI: secrets from files and the environment", () => {
  test("gateway run --token-file: the token is read from the file, and --help recommends it", async () => {
    const gw = await startGateway({ args: ["--token-file", secretFile(TOKEN)] });
    try {
      const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
      c.close();
      // Clients take it from a file too; with --url that counts as an explicit credential.
      const r = await cli(
        ["status", "--deep", "--json", "--url", `ws://127.0.0.1:${gw.port}`, "--token-file", secretFile(TOKEN)],
        { env: gw.env },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        (JSON.parse(r.stdout) as { deep: { credential: { token: { source: string } } } }).deep.credential.token.source,
        "--token-file",
      );
      assert.ok(!r.stdout.includes(TOKEN));
      const stdin = runCli(["health", "--url", `ws://127.0.0.1:${gw.port}`, "--token-file", "-"], {
        env: gw.env,
        input: TOKEN + "\n",
      });
      assert.equal(await stdin.exited, 0, stdin.stderr.join("\n"));
    } finally {
      await gw.kill();
    }
    const help = await cli(["gateway", "run", "--help"]);
    assert.match(help.stdout, /--token-file <path>/);
    assert.match(help.stdout, /--token <token>\s+gateway token; visible to other users in\s+ps/);
    const chelp = await cli(["health", "--help"]);
    assert.match(chelp.stdout, /--token-file <path>/);
    assert.match(chelp.stdout, /visible to other users in\s+ps/);
  });

  test("gateway run takes the token from OPENCLAW_GATEWAY_TOKEN (no flag in ps)", async () => {
    const gw = await startGateway({ env: { OPENCLAW_GATEWAY_TOKEN: TOKEN } });
    try {
      const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
      c.close();
    } finally {
      await gw.kill();
    }
  });

  test("bad token files fail clearly without printing a secret; --token with --token-file is a usage error", async () => {
    const dir = tempDir();
    const env = { LOOPGATE_STATE_DIR: dir, HOME: dir, LOOPGATE_CONFIG: "", OPENCLAW_GATEWAY_TOKEN: "" };
    const missing = await cli(["gateway", "run", "--port", "0", "--token-file", join(dir, "nope")], { env });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--token-file: cannot read .*ENOENT/);
    const both = await cli(["gateway", "run", "--port", "0", "--token", TOKEN, "--token-file", secretFile(TOKEN)], {
      env,
    });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /alternatives/);
    assert.ok(!both.stderr.includes(TOKEN));
    const empty = await cli(["health", "--url", "ws://127.0.0.1:1", "--token-file", secretFile("")], { env });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /is empty/);
  });

  test("a token file others can read works but warns", async () => {
    const r = await cli(
      ["health", "--url", "ws://127.0.0.1:1", "--token-file", secretFile(TOKEN, 0o644), "--timeout", "2000"],
      { env: { LOOPGATE_CONFIG: "" } },
    );
    assert.match(r.stderr, /readable by other users; chmod 600/);
    assert.ok(!r.stderr.includes(TOKEN));
  });
});
