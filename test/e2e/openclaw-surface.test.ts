/**
 * The protocol surface OpenClaw's own clients use (TUI, Control UI, everyday
 * CLI), against a real loopgate gateway process with a fake model: every
 * method they call is known and answers, with the documented scope, and
 * every response and event payload that has a published schema validates
 * against it (@openclaw/gateway-protocol). Any mismatch fails.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type GatewayProc } from "../helpers/proc.ts";
import { type AnyJson, connectedClient, type Frame, type TestClient } from "../helpers/ws-client.ts";
import { startFakeModel, type FakeModel } from "../helpers/fake-model.ts";
import { documentedScopes, schemaErrors } from "../helpers/schema.ts";

const TOKEN = "surface-test-token-0123456789";

/** Methods the Control UI (on connect and in chat), the TUI and the CLI call, with the params they send. */
const CLIENT_CALLS: [string, Record<string, unknown>][] = [
  ["sessions.subscribe", {}],
  [
    "sessions.list",
    {
      includeGlobal: true,
      includeUnknown: true,
      configuredAgentsOnly: true,
      limit: 200,
      includeDerivedTitles: true,
      includeLastMessage: true,
    },
  ],
  [
    "sessions.list",
    {
      includeGlobal: false,
      includeUnknown: false,
      configuredAgentsOnly: true,
      limit: 10000,
      spawnedBy: "agent:main:main",
    },
  ],
  ["config.get", {}],
  ["update.status", {}],
  ["agents.list", {}],
  ["exec.approval.list", {}],
  ["plugin.approval.list", {}],
  ["openclaw.approval.list", {}],
  ["agent.identity.get", { agentId: "main" }],
  ["sessions.describe", { key: "main" }],
  ["sessions.describe", { key: "agent:main:main" }],
  ["sessions.observer.visibility", { visible: true }],
  ["models.authStatus", { agentId: "main" }],
  ["question.list", {}],
  ["models.list", { view: "configured", sessionKey: "agent:main:main", agentId: "main" }],
  ["models.list", { view: "default", includeDetails: true }],
  ["chat.startup", { sessionKey: "agent:main:main", limit: 80, maxBytes: 262144 }],
  ["sessions.messages.subscribe", { key: "agent:main:main", includeApprovals: true }],
  ["progressCard.get", { sessionKey: "agent:main:main" }],
  [
    "cron.list",
    {
      agentId: "main",
      includeDisabled: true,
      compact: true,
      limit: 50,
      offset: 0,
      enabled: "all",
      sortBy: "nextRunAtMs",
      sortDir: "asc",
    },
  ],
  ["cron.status", {}],
  ["chat.metadata", { agentId: "main", sessionKey: "agent:main:main" }],
  ["chat.history", { sessionKey: "agent:main:main" }],
  ["commands.list", {}],
  ["system-presence", {}],
  ["device.pair.list", {}],
  ["channels.status", {}],
  ["diagnostics.stability", {}],
  ["doctor.memory.status", {}],
  ["logs.tail", { limit: 5 }],
  ["health", {}],
  ["status", {}],
  ["node.list", {}],
  ["last-heartbeat", {}],
  ["usage.status", {}],
  ["tasks.list", {}],
  ["talk.catalog", {}],
  ["sessions.branches.list", { sessionKey: "agent:main:main" }],
  ["sessions.companion.state", { sessionKey: "agent:main:main" }],
  ["sessions.create", { agentId: "main" }],
  ["sessions.abort", { key: "agent:main:main" }],
];

/** Result definitions in the published schema, by method. */
const RESULT_SCHEMA: Record<string, string> = {
  "agents.list": "AgentsListResult",
  "agent.identity.get": "AgentIdentityResult",
  "models.list": "ModelsListResult",
  "logs.tail": "LogsTailResult",
  "channels.status": "ChannelsStatusResult",
  "update.status": "UpdateStatusResult",
  "question.list": "QuestionListResult",
  "progressCard.get": "ProgressCardGetResult",
  "sessions.observer.visibility": "SessionsObserverVisibilityResult",
  "tasks.list": "TasksListResult",
  "talk.catalog": "TalkCatalogResult",
  "sessions.branches.list": "SessionsBranchesListResult",
  "sessions.companion.state": "SessionsCompanionStateResult",
  "sessions.create": "SessionsCreateResult",
};

/** Event payload definitions in the published schema. */
const EVENT_SCHEMA: Record<string, string> = {
  chat: "ChatEvent",
  agent: "AgentEvent",
  tick: "TickEvent",
  shutdown: "ShutdownEvent",
};

/** Errors of one response payload: its own definition, and the rows and entries it carries. */
function payloadErrors(method: string, p: AnyJson): string[] {
  const errs: string[] = [];
  const name = RESULT_SCHEMA[method];
  if (name) errs.push(...schemaErrors(method, name, p));
  if (method === "agents.list") for (const a of p.agents ?? []) errs.push(...schemaErrors(method, "AgentSummary", a));
  if (method === "models.list" || method === "chat.metadata")
    for (const m of p.models ?? []) errs.push(...schemaErrors(method, "ModelChoice", m));
  if (method === "sessions.list") for (const s of p.sessions ?? []) errs.push(...schemaErrors(method, "SessionRow", s));
  if (method === "sessions.describe" && p.session !== null) errs.push(...schemaErrors(method, "SessionRow", p.session));
  if (method === "chat.history" || method === "chat.startup")
    errs.push(...schemaErrors(method, "SessionRow", p.sessionInfo));
  if (method === "system-presence") for (const e of p) errs.push(...schemaErrors(method, "PresenceEntry", e));
  if (method === "cron.list") for (const j of p.jobs) errs.push(...schemaErrors(method, "CronJob", j));
  if (method === "sessions.list" || method === "chat.history" || method === "chat.startup") {
    if (typeof p.defaults?.modelSelectionTarget !== "string")
      errs.push(`${method}: defaults.modelSelectionTarget missing (the Control UI reads it)`);
  }
  return errs;
}

function eventErrors(f: Frame): string[] {
  const errs = schemaErrors(`event ${f.event}`, "EventFrame", f);
  const name = EVENT_SCHEMA[f.event!];
  if (name) errs.push(...schemaErrors(`event ${f.event}`, name, f.payload));
  if (f.event === "presence")
    for (const e of f.payload.presence) errs.push(...schemaErrors("event presence", "PresenceEntry", e));
  if ((f.event === "sessions.changed" || f.event === "session.message") && f.payload.session)
    errs.push(...schemaErrors(`event ${f.event}`, "SessionRow", f.payload.session));
  return errs;
}

async function finished(c: TestClient, runId: string): Promise<Frame> {
  return c.waitFor(
    (f) => f.event === "chat" && f.payload?.runId === runId && ["final", "error", "aborted"].includes(f.payload?.state),
    20_000,
  );
}

describe("the protocol surface OpenClaw's clients use", () => {
  let model: FakeModel;
  let gw: GatewayProc;
  let c: TestClient;
  let hello: Frame;
  const url = () => `ws://127.0.0.1:${gw.port}`;

  before(async () => {
    model = await startFakeModel();
    gw = await startGateway({
      args: ["--token", TOKEN],
      config: {
        agent: { provider: { baseUrl: model.baseUrl, model: "fake-1", apiKey: { source: "env", id: "SURFACE_KEY" } } },
      },
      env: { SURFACE_KEY: "sk-surface-secret-key-123456" },
    });
    c = await connectedClient(
      url(),
      { token: TOKEN },
      {
        client: { id: "openclaw-control-ui", version: "2026.9.6", platform: "linux", mode: "webchat" },
        caps: ["model-catalog-snapshot"],
      },
    );
    hello = c.frames.find((f) => f.type === "res")!;
  });
  after(async () => {
    c?.close();
    await gw?.kill();
    await model?.close();
  });

  test("hello-ok validates, advertises the capabilities clients check, and carries sessionDefaults", () => {
    assert.deepEqual(schemaErrors("hello-ok", "HelloOk", hello.payload), []);
    const caps = hello.payload.features.capabilities as string[];
    assert.ok(caps.includes("published-model-catalog"), "openclaw models list requires published-model-catalog");
    assert.deepEqual(hello.payload.snapshot.sessionDefaults, {
      defaultAgentId: "main",
      modelConfigured: true,
      ownership: "sole",
      selectionRequired: false,
      mainKey: "main",
      mainSessionKey: "agent:main:main",
      scope: "per-sender",
    });
    assert.equal(
      hello.payload.snapshot.authMode,
      "token",
      "the Control UI keeps the token across a reload only when the snapshot says token",
    );
    const events = hello.payload.features.events as string[];
    for (const e of [
      "chat",
      "agent",
      "sessions.changed",
      "session.message",
      "presence",
      "health",
      "chat.send_timing",
      "models.snapshot",
      "tick",
    ])
      assert.ok(events.includes(e), `features.events lists ${e}`);
  });

  test("every method the clients call is known, answers ok, and validates against the published schemas", async () => {
    const methods = hello.payload.features.methods as string[];
    const errs: string[] = [];
    for (const [m, params] of CLIENT_CALLS) {
      assert.ok(methods.includes(m), `features.methods lists ${m}`);
      const r = await c.request(m, params);
      if (!r.ok) {
        errs.push(`${m}: ${JSON.stringify(r.error)}`);
        continue;
      }
      errs.push(...payloadErrors(m, r.payload));
    }
    assert.deepEqual(errs, []);
  });

  test("each method has the scope OpenClaw documents, and read-only methods work for operator.read", async () => {
    const documented = documentedScopes();
    // loopgate's own methods that predate this surface and keep their scope on purpose.
    const ownScope = new Set(["sessions.reset", "agent.wait"]);
    const methods = hello.payload.features.methods as string[];
    const ro = await connectedClient(url(), { token: TOKEN }, { scopes: ["operator.read"] });
    try {
      const mismatched: string[] = [];
      for (const m of methods) {
        const doc = documented[m];
        if (doc === undefined || doc === "dynamic" || ownScope.has(m)) continue;
        if (doc !== "operator.read") continue;
        const params = CLIENT_CALLS.find(([n]) => n === m)?.[1] ?? {};
        const r = await ro.request(m, params);
        if (!r.ok && /scope/i.test(JSON.stringify(r.error)))
          mismatched.push(`${m} refused operator.read: ${r.error!.message}`);
      }
      assert.deepEqual(mismatched, []);
      const admin = await ro.request("update.status", {});
      assert.equal(admin.ok, false, "update.status is operator.admin in OpenClaw");
      const approvals = await ro.request("exec.approval.list", {});
      assert.equal(approvals.ok, false, "approval lists need operator.approvals");
    } finally {
      ro.close();
    }
  });

  test("a turn: runId is the idempotencyKey; chat, agent, chat.send_timing, session.message and sessions.changed events validate", async () => {
    // A client that names the session by its short alias gets its events under that name.
    const short = await connectedClient(url(), { token: TOKEN });
    await short.request("chat.history", { sessionKey: "main" });
    const res = await c.request("chat.send", {
      sessionKey: "agent:main:main",
      message: "hi there",
      idempotencyKey: "surface-run-1",
    });
    assert.equal(res.ok, true, JSON.stringify(res.error));
    assert.equal(res.payload.runId, "surface-run-1");
    const fin = await finished(c, "surface-run-1");
    assert.equal(fin.payload.state, "final");
    assert.equal(fin.payload.sessionKey, "agent:main:main");
    assert.equal(
      (await finished(short, "surface-run-1")).payload.sessionKey,
      "main",
      "events echo the alias the client used",
    );
    short.close();
    await c.waitFor(
      (f) =>
        f.event === "chat.send_timing" &&
        f.payload.phase === "first-assistant-event" &&
        f.payload.runId === "surface-run-1",
    );
    const msg = await c.waitFor((f) => f.event === "session.message" && f.payload.message?.role === "assistant");
    assert.equal(msg.payload.sessionKey, "agent:main:main");
    assert.equal(msg.payload.message.content[0].text, "Hello, world");
    const user = c.frames.find((f) => f.event === "session.message" && f.payload.message?.role === "user")!;
    assert.equal(
      user.payload.message.__openclaw.idempotencyKey,
      "surface-run-1",
      "clients match their optimistic message by idempotency key",
    );
    await c.waitFor(
      (f) => f.event === "sessions.changed" && f.payload.reason === "run-end" && f.payload.session?.status === "done",
    );
    const h = await c.request("chat.history", { sessionKey: "main" });
    assert.equal(h.payload.sessionKey, "agent:main:main", "main is an alias of agent:main:main");
    assert.deepEqual(
      h.payload.messages.map((m: { role: string }) => m.role),
      ["user", "assistant"],
    );
    // With a session on disk, its rows validate too.
    const errs: string[] = [];
    for (const [m, params] of CLIENT_CALLS.filter(([n]) =>
      ["sessions.list", "sessions.describe", "chat.startup", "chat.history"].includes(n),
    )) {
      const r = await c.request(m, params);
      assert.equal(r.ok, true, `${m}: ${JSON.stringify(r.error)}`);
      errs.push(...payloadErrors(m, r.payload));
    }
    assert.deepEqual(errs, []);
    const list = await c.request("sessions.list", { limit: 10 });
    assert.deepEqual(
      list.payload.sessions.map((s: { key: string }) => s.key),
      ["agent:main:main"],
    );
    assert.equal((await c.request("sessions.describe", { key: "main" })).payload.session.key, "agent:main:main");
  });

  test("presence, health and models.snapshot arrive; a second client shows up in presence", async () => {
    await c.waitFor((f) => f.event === "health");
    const snap = await c.waitFor((f) => f.event === "models.snapshot");
    assert.deepEqual(schemaErrors("models.snapshot", "ModelsListResult", snap.payload.catalog), []);
    const other = await connectedClient(
      url(),
      { token: TOKEN },
      { client: { id: "cli", version: "2026.9.6", platform: "linux", mode: "cli" } },
    );
    try {
      const p = await c.waitFor(
        (f) => f.event === "presence" && f.payload.presence.some((e: { text?: string }) => e.text?.startsWith("cli ")),
      );
      assert.ok(p.payload.presence.length >= 3, "the gateway and both clients");
    } finally {
      other.close();
    }
  });

  test("config.get redacts every secret; logs.tail tails the gateway's own log", async () => {
    const cfg = await c.request("config.get", {});
    const text = JSON.stringify(cfg.payload);
    assert.ok(!text.includes("sk-surface-secret-key"), "no secret value");
    assert.deepEqual(
      cfg.payload.config.agent.provider.apiKey,
      { source: "env", id: "SURFACE_KEY" },
      "a secret reference names where the key lives and stays",
    );
    const logs = await c.request("logs.tail", { limit: 50 });
    assert.ok(
      logs.payload.lines.some((l: string) => l.includes("gateway listening")),
      "the gateway's startup line is in the tail",
    );
    const after = await c.request("logs.tail", { cursor: logs.payload.cursor });
    assert.ok(after.payload.cursor >= logs.payload.cursor);
    assert.ok(!JSON.stringify(logs.payload).includes(TOKEN), "no token in the log tail");
  });

  test("every event the gateway sent validates against the published schemas", async () => {
    const events = c.frames.filter((f) => f.type === "event");
    for (const e of [
      "chat",
      "agent",
      "session.message",
      "sessions.changed",
      "presence",
      "health",
      "chat.send_timing",
      "models.snapshot",
    ])
      assert.ok(
        events.some((f) => f.event === e),
        `saw a ${e} event`,
      );
    assert.deepEqual(events.flatMap(eventErrors), []);
  });

  test("shutdown: the shutdown event validates", async () => {
    await gw.kill();
    const shut = await c.waitFor((f) => f.event === "shutdown");
    assert.deepEqual(eventErrors(shut), []);
  });
});
