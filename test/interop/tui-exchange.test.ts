/**
 * OpenClaw's TUI, unmodified, dialled as the issue describes: `openclaw tui
 * --url 'wss://RELAY/h/HOST?code=…'`, with an exchange code from `loopgate
 * token create --exchange` instead of a relay token on its command line. It
 * connects through the Node relay (and `loopgate link`) to loopgate's
 * gateway; the same URL dialled again is refused by the relay.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import WebSocket from "ws";
import { openclawUnavailable } from "../helpers/openclaw.ts";
import { startTui, tmuxUnavailable, type Tui } from "../helpers/openclaw-tui.ts";
import { startRig, describeFailures, type InteropRig } from "../helpers/openclaw-rig.ts";
import { cli } from "../helpers/proc.ts";

const skip = openclawUnavailable() ?? tmuxUnavailable();
if (skip) console.warn(`\n*** SKIPPING the OpenClaw TUI exchange-code suite: ${skip} ***\n`);

describe("openclaw tui --url with an exchange code, through the relay", { skip }, () => {
  let rig: InteropRig;
  let tui: Tui | undefined;
  before(async () => {
    rig = await startRig("relay");
  });
  after(async () => {
    await tui?.close();
    await rig?.stop();
  });

  test("the TUI connects with ?code= on its command line; the code is spent after", async () => {
    const relay = rig.relay!;
    const updates = () => relay.proc.logs().filter((l) => l.includes("exchange codes updated")).length;
    const before = updates();
    const r = await cli(
      [
        "token",
        "create",
        "--relay",
        relay.proc.url,
        "--relay-fingerprint",
        relay.pin,
        "--for",
        "loopgate",
        "--exchange",
        "--json",
      ],
      // The host's state dir and config (the gateway runs with them; its link is the standalone one here).
      { env: rig.gw.env },
    );
    assert.equal(r.code, 0, r.stderr);
    const { exchangeWsUrl } = JSON.parse(r.stdout) as { exchangeWsUrl: string };
    assert.ok(exchangeWsUrl.startsWith(`${rig.url}?code=`), exchangeWsUrl);
    for (const deadline = Date.now() + 10_000; updates() === before; ) {
      assert.ok(Date.now() < deadline, "the link pushed the code");
      await new Promise((res) => setTimeout(res, 50));
    }
    // The relay pin comes from the configured remote; the URL and the gateway's own token from the command line.
    const home = rig.home({}, { edgeAuth: undefined }); // no relay token in the config: only the code gets it in
    // `--url` bypasses the configured pin: the TUI trusts the relay's certificate as a user's machine would trust a CA's.
    tui = await startTui(["--url", exchangeWsUrl, "--token", rig.token], {
      home,
      env: { NODE_EXTRA_CA_CERTS: join(relay.proc.stateDir, "relay", "relay-cert.pem") },
    });
    await tui
      .waitFor((s) => /connected \| idle/.test(s), 60_000)
      .catch((e: Error) => {
        throw new Error(
          `${e.message}\n--- gateway failures:\n${describeFailures(rig)}\n${rig.gatewayLog().slice(-2000)}`,
        );
      });
    assert.ok(rig.tap.methods().includes("connect"), "the TUI's connect reached the gateway");

    const again = await new Promise<number>((resolve) => {
      const ws = new WebSocket(exchangeWsUrl, { rejectUnauthorized: false, handshakeTimeout: 10_000 });
      ws.on("open", () => (ws.close(), resolve(101)));
      ws.on("unexpected-response", (_q, res) => (res.resume(), resolve(res.statusCode ?? -1)));
      ws.on("error", () => resolve(-1));
    });
    assert.equal(again, 401, "the code was spent by the TUI");
  });
});
