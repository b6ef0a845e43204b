/**
 * The everyday OpenClaw CLI commands, unmodified, against loopgate's gateway
 * on one route: each must exit 0, and the gateway must answer every request
 * it makes (the frame tap sees them all: no unknown method, no error
 * response). One test file per route (cli-local, cli-relay), so the two run
 * side by side: each is a row of ~3 s CLI starts on one core.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { openclawUnavailable, openclaw, lastJson } from "./openclaw.ts";
import { ROUTES, startRig, frameSchemaErrors, type InteropRig, type Route } from "./openclaw-rig.ts";
import { connectedClient } from "./ws-client.ts";

interface Case {
  args: string[];
  /** Why the case runs on the local route only (when it makes no gateway call, the relay adds nothing to it). */
  localOnly?: string;
  /** Extra checks on the output of a successful run. */
  check?: (stdout: string, rig: InteropRig) => void;
}

const CASES: Case[] = [
  { args: ["status"] },
  { args: ["status", "--json"] },
  { args: ["health", "--json"], check: (out) => assert.equal(lastJson(out).ok, true) },
  // In openclaw 2026.9.6 these two read the local state dir and config only: they call no gateway method.
  { args: ["sessions", "list"], localOnly: "reads only local state, no gateway call" },
  {
    args: ["agents", "list"],
    localOnly: "reads only local config, no gateway call",
    check: (out) => assert.match(out, /\bmain\b/),
  },
  { args: ["models", "list", "--json"], check: (out) => assert.match(out, /fake-1/) },
  { args: ["logs", "--limit", "5"] },
  {
    args: ["gateway", "probe", "--json"],
    check: (out) => {
      const remote = (
        lastJson(out) as { targets: { id: string; connect: { ok: boolean; rpcOk: boolean; error?: string | null } }[] }
      ).targets.find((t) => t.id === "configRemote");
      assert.ok(remote?.connect.ok, "the configured gateway is reachable");
      assert.equal(remote.connect.rpcOk, true, `read probe: ${remote.connect.error ?? ""}`);
    },
  },
  { args: ["doctor", "--non-interactive"] },
];

export function cliSuite(route: Route): void {
  if (!ROUTES.includes(route)) return;
  const skip = openclawUnavailable();
  if (skip) console.warn(`\n*** SKIPPING the OpenClaw CLI interop suite (${route}): ${skip} ***\n`);
  describe(`OpenClaw CLI against loopgate (${route})`, { skip }, () => {
    let rig: InteropRig;
    let home: string;
    before(async () => {
      rig = await startRig(route);
      home = rig.home();
      // One finished turn, so sessions, history and logs have something to show.
      const c = await connectedClient(`ws://127.0.0.1:${rig.gw.port}`, { token: rig.token });
      const res = await c.request("chat.send", { sessionKey: "main", message: "seed", idempotencyKey: "interop-seed" });
      assert.equal(res.ok, true, JSON.stringify(res.error));
      await c.waitFor((f) => f.event === "chat" && f.payload?.state === "final", 20_000);
      c.close();
    });
    after(async () => {
      await rig?.stop();
    });

    test("openclaw gateway call health --json succeeds", async () => {
      // Locally as a user types it (--url/--token); through the relay from the configured remote (pin, edgeAuth).
      const args = route === "local" ? ["--url", rig.url, "--token", rig.token] : [];
      const r = await openclaw(["gateway", "call", "health", ...args, "--json"], { home, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const payload = lastJson(r.stdout);
      assert.equal(payload.ok, true);
      assert.equal(typeof payload.uptimeMs, "number");
    });

    test("openclaw gateway call health with a wrong gateway token fails, and says why", async () => {
      const args = route === "local" ? ["--url", rig.url, "--token", "wrong"] : [];
      const wrongHome = route === "local" ? home : rig.home({}, { token: "wrong" });
      const r = await openclaw(["gateway", "call", "health", ...args, "--json"], {
        home: wrongHome,
        timeoutMs: 60_000,
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /token mismatch|unauthorized/i);
    });

    for (const c of CASES) {
      test(`openclaw ${c.args.join(" ")}`, {
        skip: route !== "local" && c.localOnly ? c.localOnly : false,
      }, async () => {
        const since = rig.tap.frames.length;
        const r = await openclaw(c.args, { home, timeoutMs: 90_000 });
        const failures = rig.tap.failures(since).map((f) => `${f.method}: ${f.code} ${f.message}`);
        const calls = [...new Set(rig.tap.methods(since))].join(", ");
        assert.deepEqual(failures, [], `gateway-side failures (calls: ${calls})`);
        // A client that crashes on a payload's shape says little: name what each call got back.
        const answers = rig.tap.frames
          .slice(since)
          .filter((f) => f.dir === "out" && f.frame.type === "res" && f.frame.ok === true)
          .map((f) => {
            const req = rig.tap.frames.find((q) => q.dir === "in" && q.conn === f.conn && q.frame.id === f.frame.id);
            const p = f.frame.payload;
            return `${req?.frame.method ?? "?"} → ${p !== null && typeof p === "object" && !Array.isArray(p) ? `{${Object.keys(p).join(", ")}}` : Array.isArray(p) ? `[${p.length} items]` : String(p)}`;
          });
        assert.equal(
          r.code,
          0,
          `exit ${r.code}\n${(r.stderr + r.stdout).slice(-2500)}\n--- what the gateway answered:\n${answers.join("\n")}`,
        );
        c.check?.(r.stdout, rig);
      });
    }

    test("every frame the gateway sent these commands validates against the published schema", (t) => {
      assert.ok(rig.tap.frames.length > 0);
      t.diagnostic(`methods called: ${[...new Set(rig.tap.methods())].join(", ")}`);
      t.diagnostic(`events sent: ${[...new Set(rig.tap.events())].join(", ")}`);
      assert.deepEqual(frameSchemaErrors(rig), []);
    });
  });
}
