/**
 * `loopgate service`: the unit files it writes pass `systemd-analyze verify`,
 * their ExecStart really starts loopgate, install/status/uninstall drive the
 * service manager (a fake systemctl on PATH records what it is asked), and no
 * secret can be written into a unit.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, runProcess, tempDir } from "../helpers/proc.ts";
import { renderLaunchdPlist, systemdQuote } from "../../agent/service/units.ts";

const analyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
const noAnalyze = analyze
  ? false
  : "systemd-analyze is not installed (Debian package systemd): unit files cannot be verified here";

function verify(path: string): { code: number | null; out: string } {
  const r = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("loopgate service", () => {
  test("generated gateway, link and system relay units pass systemd-analyze verify", { skip: noAnalyze }, async () => {
    const dir = tempDir("loopgate-units-");
    const state = tempDir("loopgate-unit-state-");
    const env = { LOOPGATE_STATE_DIR: state, LOOPGATE_CONFIG: "" };
    const cases: [string, string[]][] = [
      ["gateway", []],
      ["link", ["--", "--relay", "wss://relay.example.com:8443", "--relay-fingerprint", "sha256:00"]],
      [
        "relay",
        [
          "--system",
          "--user",
          "root",
          "--",
          "--host",
          "0.0.0.0",
          "--port",
          "443",
          "--public-url",
          "https://relay.example.com",
        ],
      ],
    ];
    for (const [kind, extra] of cases) {
      const r = await cli(["service", "install", kind, "--unit-dir", dir, "--json", ...extra], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as { path: string; started: boolean };
      assert.equal(out.started, false, "--unit-dir never starts anything");
      const v = verify(out.path);
      assert.equal(v.code, 0, v.out);
      assert.equal(v.out.trim(), "", `systemd-analyze has remarks on ${kind}: ${v.out}`);
    }
    const relayUnit = readFileSync(join(dir, "loopgate-relay.service"), "utf8");
    assert.match(relayUnit, /^User=root$/m);
    assert.match(relayUnit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    assert.match(relayUnit, /^WantedBy=multi-user\.target$/m);
    assert.match(readFileSync(join(dir, "loopgate-gateway.service"), "utf8"), /^WantedBy=default\.target$/m);
  });

  test("the unit's ExecStart starts a working gateway", async () => {
    const dir = tempDir("loopgate-units-");
    const state = tempDir("loopgate-unit-state-");
    const env = {
      LOOPGATE_STATE_DIR: state,
      LOOPGATE_CONFIG: "",
      HOME: state,
      OPENCLAW_GATEWAY_TOKEN: "",
      OPENCLAW_GATEWAY_PORT: "",
    };
    const r = await cli(["service", "install", "gateway", "--unit-dir", dir, "--json", "--", "--port", "0", "--json"], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    const unit = readFileSync(JSON.parse(r.stdout).path, "utf8");
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(" ");
    assert.equal(/^Environment=LOOPGATE_STATE_DIR=(.*)$/m.exec(unit)![1], state);
    const gw = runProcess(exec[0]!, exec.slice(1), { env: { LOOPGATE_STATE_DIR: state, HOME: state } });
    try {
      const ready = JSON.parse(await gw.waitForLine((l) => l.includes('"ready"'), 30_000)) as { port: number };
      assert.ok(ready.port > 0);
      assert.ok(
        existsSync(join(state, "gateway-token")),
        "the service's gateway keeps its token in the state dir, not in the unit",
      );
    } finally {
      await gw.kill();
    }
  });

  test("install, status and uninstall drive systemctl --user, and keep secrets out of the unit", async () => {
    const home = tempDir("loopgate-svc-home-");
    const bin = tempDir("loopgate-fake-systemctl-");
    const calls = join(home, "systemctl-calls");
    writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >> ${JSON.stringify(calls)}\nexit 0\n`);
    chmodSync(join(bin, "systemctl"), 0o755);
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      LOOPGATE_STATE_DIR: join(home, "state"),
      LOOPGATE_CONFIG: "",
      PATH: `${bin}:${process.env.PATH}`,
      LOOPGATE_SERVICE_PLATFORM: "systemd",
    };

    const secret = await cli(["service", "install", "gateway", "--", "--token", "hunter2"], { env });
    assert.equal(secret.code, 2);
    assert.match(secret.stderr, /--token would be written into the service definition/);
    assert.ok(!secret.stderr.includes("hunter2"));

    const inst = await cli(["service", "install", "gateway", "--json"], { env });
    assert.equal(inst.code, 0, inst.stderr);
    const unitPath = join(home, ".config", "systemd", "user", "loopgate-gateway.service");
    assert.equal(JSON.parse(inst.stdout).path, unitPath);
    assert.equal(JSON.parse(inst.stdout).started, true);
    assert.deepEqual(readFileSync(calls, "utf8").trim().split("\n"), [
      "--user daemon-reload",
      "--user enable --now loopgate-gateway.service",
    ]);

    const st = JSON.parse((await cli(["service", "status", "gateway", "--json"], { env })).stdout);
    assert.equal(st.installed, true);
    assert.equal(st.current, true);
    assert.equal(st.active, true);

    const un = await cli(["service", "uninstall", "gateway", "--json"], { env });
    assert.equal(un.code, 0, un.stderr);
    assert.equal(existsSync(unitPath), false);
    assert.match(
      readFileSync(calls, "utf8"),
      /--user disable --now loopgate-gateway\.service\n--user daemon-reload\n$/,
    );
    const gone = await cli(["service", "status", "gateway"], { env });
    assert.equal(gone.code, 1);
    assert.match(gone.stdout, /not installed/);
  });

  test("a system unit without root or --unit-dir says to use sudo", {
    skip: process.getuid?.() === 0 ? "running as root" : false,
  }, async () => {
    const r = await cli(["service", "install", "relay", "--system"], { env: { LOOPGATE_SERVICE_PLATFORM: "systemd" } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs root/);
  });

  test("systemd words and launchd XML are escaped", () => {
    assert.equal(systemdQuote("/usr/bin/node"), "/usr/bin/node");
    assert.equal(systemdQuote("/home/a b/x"), '"/home/a b/x"');
    assert.equal(systemdQuote("100%$HOME"), '"100%%$$HOME"');
    const plist = renderLaunchdPlist(
      { kind: "gateway", node: "/n", script: "/s", args: ["--x", "<&>"], env: { LOOPGATE_STATE_DIR: "/a&b" } },
      "/logs",
    );
    assert.match(plist, /<string>&lt;&amp;&gt;<\/string>/);
    assert.match(plist, /<key>Label<\/key><string>dev\.loopgate\.gateway<\/string>/);
    assert.match(plist, /<string>\/a&amp;b<\/string>/);
    assert.throws(
      () => renderLaunchdPlist({ kind: "link", node: "/n", script: "/s", args: ["--password=x"], env: {} }, "/l"),
      /--password would be written/,
    );
  });
});
