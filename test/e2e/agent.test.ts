/**
 * The agent behind the gateway, end to end with a fake OpenAI-compatible
 * model server that streams: turns stream as chat events, tools run only
 * when policy allows, providers are retried, sessions survive kill -9, and
 * `loopgate agent` streams through the relay.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, startGateway, tempDir, type GatewayProc } from "../helpers/proc.ts";
import { connectedClient, type Frame, type TestClient } from "../helpers/ws-client.ts";
import { startFakeModel, type FakeModel } from "../helpers/fake-model.ts";
import { startRelay, makeHost, startLinkedGateway, mintToken, clientEnv } from "../helpers/relay.ts";

const TOKEN = "agent-test-token-0123456789";

function chatEvents(c: TestClient, runId: string): Frame[] {
  return c.frames.filter((f) => f.type === "event" && f.event === "chat" && f.payload?.runId === runId);
}

async function finished(c: TestClient, runId: string): Promise<Frame> {
  return c.waitFor(
    (f) =>
      f.type === "event" &&
      f.event === "chat" &&
      f.payload?.runId === runId &&
      ["final", "error", "aborted"].includes(f.payload?.state),
    20_000,
  );
}

describe("agent: turns, tools, providers and sessions", () => {
  let model: FakeModel;
  let gw: GatewayProc;
  let workspace: string;
  let c: TestClient;
  const config = () => ({
    agent: {
      provider: {
        baseUrl: model.baseUrl,
        model: "fake-1",
        apiKey: { source: "env", id: "FAKE_MODEL_KEY" },
        maxRetries: 3,
      },
    },
    tools: { workspace, allow: ["read_file", "list_dir"], deny: ["run_command"], timeoutMs: 5000 },
  });
  before(async () => {
    model = await startFakeModel();
    workspace = tempDir("loopgate-ws-");
    writeFileSync(join(workspace, "hello.txt"), "hi from the workspace");
    gw = await startGateway({
      args: ["--token", TOKEN],
      config: config(),
      env: { FAKE_MODEL_KEY: "sk-fake-secret-key" },
    });
    c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
  });
  after(async () => {
    c?.close();
    await gw?.kill();
    await model?.close();
  });

  test("chat.send answers at once with a run id; deltas stream in order, then the final; history has both turns", async () => {
    const res = await c.request("chat.send", { sessionKey: "main", message: "hi there", idempotencyKey: "k-1" });
    assert.equal(res.ok, true, JSON.stringify(res.error));
    const runId = res.payload.runId as string;
    const fin = await finished(c, runId);
    assert.equal(fin.payload.state, "final");
    const deltas = chatEvents(c, runId)
      .filter((f) => f.payload.state === "delta")
      .map((f) => f.payload.deltaText);
    assert.deepEqual(deltas, ["Hello", ", ", "world"]);
    const seqs = chatEvents(c, runId).map((f) => f.payload.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      "chat event seq increases",
    );
    assert.equal(fin.payload.message.content[0].text, "Hello, world");
    const h = await c.request("chat.history", { sessionKey: "main" });
    const roles = h.payload.messages.map((m: { role: string }) => m.role);
    assert.deepEqual(roles.slice(-2), ["user", "assistant"]);
    assert.equal(
      model.requests.at(-1)!.authorization,
      "Bearer sk-fake-secret-key",
      "the key from the secret reference reaches the provider",
    );
    assert.ok(!gw.stderr.join("\n").includes("sk-fake-secret-key"), "the API key is never logged");
    // The same idempotency key does not start a second turn.
    const again = await c.request("chat.send", { sessionKey: "main", message: "hi there", idempotencyKey: "k-1" });
    assert.equal(again.payload.runId, runId);
  });

  test("an allowed tool runs and its result is recorded; a denied one is refused with a clear result", async () => {
    const ok = await c.request("chat.send", {
      sessionKey: "tools",
      message: 'use tool read_file {"path":"hello.txt"}',
      idempotencyKey: "k-2",
    });
    const fin = await finished(c, ok.payload.runId);
    assert.match(fin.payload.message.content[0].text, /tool said: hi from the workspace/);
    const denied = await c.request("chat.send", {
      sessionKey: "tools",
      message: 'use tool run_command {"command":"id"}',
      idempotencyKey: "k-3",
    });
    const fin2 = await finished(c, denied.payload.runId);
    assert.match(fin2.payload.message.content[0].text, /not allowed by policy/);
    const escaped = await c.request("chat.send", {
      sessionKey: "tools",
      message: 'use tool read_file {"path":"../../etc/passwd"}',
      idempotencyKey: "k-4",
    });
    const fin3 = await finished(c, escaped.payload.runId);
    assert.match(fin3.payload.message.content[0].text, /outside the workspace|no such file/);
    const h = await c.request("chat.history", { sessionKey: "tools" });
    const msgs = h.payload.messages as { role: string; content: { type: string }[] }[];
    // OpenClaw's transcript shape: a tool call is an assistant toolCall part, its result a toolResult message.
    assert.ok(
      msgs.some((m) => m.role === "assistant" && m.content.some((p) => p.type === "toolCall")) &&
        msgs.some((m) => m.role === "toolResult"),
      "tool calls and results are in the session",
    );
    const toolEvents = c.frames.filter((f) => f.event === "agent" && f.payload?.stream === "tool");
    assert.ok(
      toolEvents.some((f) => f.payload.data.phase === "result" && f.payload.data.ok === false),
      "the refusal went out as an agent tool event",
    );
  });

  test("429 then success is retried; the turn completes", async () => {
    model.failNext(2, 429, "0");
    const res = await c.request("chat.send", { sessionKey: "retry", message: "please", idempotencyKey: "k-5" });
    const fin = await finished(c, res.payload.runId);
    assert.equal(fin.payload.state, "final");
  });

  test("a provider that keeps failing ends the turn with a clear error", async () => {
    model.failNext(10, 500);
    const res = await c.request("chat.send", { sessionKey: "fail", message: "please", idempotencyKey: "k-6" });
    const fin = await finished(c, res.payload.runId);
    assert.equal(fin.payload.state, "error");
    assert.match(fin.payload.errorMessage, /PROVIDER_FAILED.*after 4 attempts.*HTTP 500/);
    model.failNext(0, 500);
  });

  test("a turn can be aborted; the agent method answers accepted, then the final result", async () => {
    const res = await c.request("chat.send", { sessionKey: "abort", message: "stall", idempotencyKey: "k-7" });
    await c.waitFor(
      (f) => f.event === "chat" && f.payload?.runId === res.payload.runId && f.payload?.state === "delta",
    );
    const ab = await c.request("chat.abort", { sessionKey: "abort" });
    assert.equal(ab.payload.aborted, true);
    const fin = await finished(c, res.payload.runId);
    assert.equal(fin.payload.state, "aborted");
    const r = await cli(
      [
        "gateway",
        "call",
        "agent",
        "--params",
        JSON.stringify({ message: "hello", sessionKey: "cli", idempotencyKey: "k-8" }),
        "--expect-final",
        "--json",
        "--url",
        `ws://127.0.0.1:${gw.port}`,
        "--token",
        TOKEN,
      ],
      { env: gw.env },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, "ok");
    assert.equal(out.result.payloads[0].text, "Hello, world");
  });

  test("sessions.list, send to webchat, reset and delete", async () => {
    const list = await c.request("sessions.list", {});
    assert.ok(
      list.payload.sessions.some((s: { key: string }) => s.key === "agent:main:main"),
      "the short key main is the canonical agent:main:main",
    );
    const s = await cli(
      [
        "send",
        "--to",
        "main",
        "--message",
        "note from a script",
        "--json",
        "--url",
        `ws://127.0.0.1:${gw.port}`,
        "--token",
        TOKEN,
      ],
      { env: gw.env },
    );
    assert.equal(s.code, 0, s.stderr);
    const h = await c.request("chat.history", { sessionKey: "main" });
    assert.equal(h.payload.messages.at(-1).content[0].text, "note from a script");
    assert.equal((await c.request("sessions.reset", { key: "retry" })).payload.reset, true);
    assert.equal((await c.request("chat.history", { sessionKey: "retry" })).payload.messages.length, 0);
    assert.equal((await c.request("sessions.delete", { key: "fail" })).payload.deleted, true);
    const bad = await c.request("chat.history", { sessionKey: "../etc" });
    assert.equal(bad.ok, false);
  });

  test("kill -9 mid-turn: the session stays readable and the turn is marked incomplete", async () => {
    const res = await c.request("chat.send", { sessionKey: "crash", message: "stall", idempotencyKey: "k-9" });
    await c.waitFor(
      (f) => f.event === "chat" && f.payload?.runId === res.payload.runId && f.payload?.state === "delta",
    );
    await gw.kill("SIGKILL");
    c.close();
    gw = await startGateway({
      args: ["--token", TOKEN],
      config: config(),
      env: { ...gw.env, FAKE_MODEL_KEY: "sk-fake-secret-key" },
    });
    c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
    const h = await c.request("chat.history", { sessionKey: "crash" });
    const msgs = h.payload.messages as { role: string; incomplete?: boolean; content: { text: string }[] }[];
    assert.equal(msgs[0]!.role, "user");
    assert.ok(
      msgs.some((m) => m.incomplete && /incomplete/.test(m.content[0]!.text)),
      "the cut-off turn is marked incomplete",
    );
    assert.ok(
      (await c.request("chat.history", { sessionKey: "main" })).payload.messages.length >= 3,
      "earlier sessions survived",
    );
  });
});

describe("agent: no provider configured", () => {
  test("the gateway starts and the agent answers with how to configure one", async () => {
    const gw = await startGateway({ args: ["--token", TOKEN] });
    try {
      const c = await connectedClient(`ws://127.0.0.1:${gw.port}`, { token: TOKEN });
      const res = await c.request("chat.send", { sessionKey: "main", message: "hi", idempotencyKey: "x" });
      const fin = await finished(c, res.payload.runId);
      assert.equal(fin.payload.state, "error");
      assert.match(fin.payload.errorMessage, /agent\.provider\.baseUrl/);
      c.close();
    } finally {
      await gw.kill();
    }
  });
});

describe("agent: `loopgate agent` through the Node relay", () => {
  test("streams the fake model's answer, pinned and token-checked", async () => {
    const model = await startFakeModel();
    const host = await makeHost();
    const relay = await startRelay("node", { allowHosts: [host.hostId] });
    mkdirSync(host.stateDir, { recursive: true });
    const gw = await startLinkedGateway(host, relay, [], {
      agent: { provider: { baseUrl: model.baseUrl, model: "fake-1" } },
    });
    try {
      const minted = await mintToken(host, relay);
      const r = await cli(["agent", "--message", "hello through the relay"], { env: clientEnv(minted.clientConfig) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "Hello, world");
    } finally {
      await gw.kill();
      await relay.kill();
      await model.close();
    }
  });
});
