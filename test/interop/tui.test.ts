/**
 * OpenClaw's terminal UI, unmodified, against loopgate's gateway: locally and
 * through the Node relay (pinned TLS, relay token as gateway.remote.edgeAuth).
 * Connect, send, a streamed reply from the fake model, abort, switch session,
 * history in a fresh TUI; every frame the gateway saw is checked for failures.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { openclawUnavailable } from "../helpers/openclaw.ts";
import { startTui, tmuxUnavailable, type Tui } from "../helpers/openclaw-tui.ts";
import { ROUTES, startRig, describeFailures, frameSchemaErrors, type InteropRig } from "../helpers/openclaw-rig.ts";

const skip = openclawUnavailable() ?? tmuxUnavailable();
if (skip) console.warn(`\n*** SKIPPING the OpenClaw TUI interop suite: ${skip} ***\n`);

const idle = (s: string) => /connected \| idle/.test(s);
/** Ready for the next message: idle, or stopped after an abort. */
const settled = (s: string) => /connected \| (idle|aborted)/.test(s);

for (const route of ROUTES) {
  describe(`OpenClaw TUI against loopgate (${route})`, { skip }, () => {
    let rig: InteropRig;
    let tui: Tui | undefined;
    let connected = false;
    /** Later steps need a connected TUI: without one they fail at once instead of waiting out their deadlines. */
    const ready = (): Tui => {
      assert.ok(tui && connected, "the TUI never connected (see the first failure)");
      return tui;
    };
    const open = async (): Promise<Tui> => {
      const home = rig.home();
      // Locally the TUI gets --url/--token as a user types them; through the relay it uses the configured remote (pin, edgeAuth).
      const args = route === "local" ? ["--url", rig.url, "--token", rig.token] : [];
      return startTui(args, { home });
    };

    before(async () => {
      rig = await startRig(route);
    });
    after(async () => {
      await tui?.close();
      await rig?.stop();
    });

    test("connects: the session subscription succeeds and the TUI goes idle", async () => {
      tui = await open();
      // The TUI itself takes 5-30 s to start on a busy 2-core machine.
      await tui.waitFor(idle, 45_000).catch((e: Error) => {
        throw new Error(`${e.message}\n--- gateway failures:\n${describeFailures(rig)}`);
      });
      assert.ok(rig.tap.methods().includes("connect"));
      connected = true;
    });

    test("sends a message and shows the streamed reply", async () => {
      const tui = ready();
      await tui.submit("hello from the tui");
      await tui.waitFor((s) => s.includes("hello from the tui") && s.includes("Hello, world") && idle(s), 30_000);
      assert.ok(rig.tap.chatEvents("delta").length >= 1, "the reply arrived as chat deltas");
      assert.ok(rig.tap.chatEvents("final").length >= 1, "and ended with a final");
      assert.match(rig.model.requests.at(-1)?.messages.at(-1)?.content ?? "", /hello from the tui/);
    });

    test("Esc aborts a running turn", async () => {
      const tui = ready();
      await tui.submit("stall");
      await tui.waitFor("partial", 20_000);
      await tui.keys("Escape");
      await tui.waitFor(/aborted/, 15_000);
      const abort = rig.tap.frames.find((f) => f.dir === "in" && f.frame.method === "chat.abort");
      assert.ok(abort, "the TUI called chat.abort or sessions.abort");
      const res = rig.tap.frames.find(
        (f) => f.dir === "out" && f.frame.type === "res" && f.frame.id === abort.frame.id && f.conn === abort.conn,
      );
      assert.equal(res?.frame.ok, true, JSON.stringify(res?.frame.error));
      assert.ok(rig.tap.chatEvents("aborted").length >= 1, "the run ended as aborted");
    });

    test("switches to another session and back; each shows its own history", async () => {
      const tui = ready();
      await tui.waitFor(settled, 15_000);
      await tui.submit("/session side");
      await tui.waitFor((s) => /session agent:main:side/.test(s) && !s.includes("hello from the tui"), 15_000);
      await tui.submit("over on the side");
      await tui.waitFor((s) => s.includes("over on the side") && s.includes("Hello, world") && idle(s), 30_000);
      await tui.submit("/session main");
      await tui.waitFor(
        (s) => /session agent:main:main/.test(s) && s.includes("hello from the tui") && !s.includes("over on the side"),
        15_000,
      );
    });

    test("a fresh TUI loads the history of the main session", async () => {
      await ready().close();
      tui = await open();
      await tui.waitFor((s) => s.includes("hello from the tui") && s.includes("Hello, world") && idle(s), 45_000);
    });

    test("the gateway answered every request the TUI made (no unknown method, no error)", () => {
      const unknown = rig.tap.failures().filter((f) => /unknown method/i.test(f.message));
      assert.deepEqual(unknown, [], "unknown methods");
      assert.equal(describeFailures(rig), "", "failed requests");
    });

    test("every frame the gateway sent the TUI validates against the published schema", (t) => {
      assert.ok(rig.tap.frames.length > 0);
      t.diagnostic(`methods called: ${[...new Set(rig.tap.methods())].join(", ")}`);
      t.diagnostic(`events sent: ${[...new Set(rig.tap.events())].join(", ")}`);
      assert.deepEqual(frameSchemaErrors(rig), []);
    });
  });
}
