/**
 * Wires the agent into a running gateway: the session store under the state
 * dir (turns cut off by a crash are marked incomplete first), the model
 * provider from `agent.provider` (its key a secret reference that fails
 * closed), the built-in tools under `tools.*` policy, the runtime, and the
 * gateway methods.
 */
import { sessionsSummary } from "../gateway/methods/status-summary.ts";
import { mkdirSync } from "node:fs";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import type { LoopgateConfig, SecretInput } from "../../shared/config/schema.ts";
import type { GatewayHandle } from "../gateway/server.ts";
import { registerAgentMethods, webChatChannel, type Channel } from "../gateway/methods/agent.ts";
import {
  DEFAULT_AGENT_NAME,
  providerId,
  snapshotSessionDefaults,
  type AgentInfo,
} from "../gateway/methods/agent-view.ts";
import { registerAgentsMethods } from "../gateway/methods/agents.ts";
import { registerConfigMethods } from "../gateway/methods/config.ts";
import { ModelCatalog, registerModelMethods, sendModelsSnapshot } from "../gateway/methods/models.ts";
import { SessionEventHub } from "../gateway/methods/session-events.ts";
import { registerSessionMethods, rowOf } from "../gateway/methods/sessions.ts";
import type { Logger } from "../log/logger.ts";
import { statePath } from "../state.ts";
import { OpenAiCompatibleProvider } from "./openai-provider.ts";
import { AgentRuntime } from "./turns.ts";
import { SessionStore } from "../sessions/store.ts";
import { BuiltinTools, DEFAULT_ALLOW } from "../tools/builtin.ts";

export function resolveSecretInput(
  v: SecretInput | undefined,
  name: string,
  resolve: (ref: { source: "env" | "file"; id: string }) => string | undefined,
): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  const r = resolve(v as { source: "env" | "file"; id: string });
  if (r === undefined)
    throw new LoopgateError(ErrorCodes.SECRET_UNRESOLVED, `${name} refers to ${v.source}:${v.id}, which is not set`, {
      hint: `set it, or remove ${name} from the config`,
    });
  return r;
}

/**
 * hello-ok capabilities OpenClaw clients check: the published model catalog
 * (`openclaw models list` requires it), the models.snapshot push after
 * connect, and chat metadata and model catalogs that take a session key.
 */
export const OPENCLAW_CAPABILITIES = [
  "published-model-catalog",
  "model-catalog-snapshot",
  "session-scoped-chat-metadata",
  "session-scoped-model-catalog",
] as const;

export function enableAgent(
  gw: GatewayHandle,
  config: LoopgateConfig,
  log: Logger,
  resolveSecret: (ref: { source: "env" | "file"; id: string }) => string | undefined,
): AgentRuntime {
  const sessions = new SessionStore(statePath("sessions"));
  const interrupted = sessions.markInterruptedTurns();
  if (interrupted > 0) log.warn("marked turns cut off by the last shutdown as incomplete", { sessions: interrupted });
  const pc = config.agent?.provider;
  const apiKey =
    pc?.apiKey !== undefined ? resolveSecretInput(pc.apiKey, "agent.provider.apiKey", resolveSecret)! : undefined;
  const provider = pc
    ? new OpenAiCompatibleProvider({
        baseUrl: pc.baseUrl,
        model: pc.model,
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(pc.timeoutMs !== undefined ? { timeoutMs: pc.timeoutMs } : {}),
        ...(pc.maxRetries !== undefined ? { maxRetries: pc.maxRetries } : {}),
      })
    : undefined;
  if (!provider)
    log.warn("no model provider configured (agent.provider); the agent will answer with how to configure one");
  const tc = config.tools ?? {};
  const workspace = tc.workspace ?? statePath("workspace");
  mkdirSync(workspace, { recursive: true, mode: 0o700 });
  const tools = new BuiltinTools({
    allow: tc.allow ?? DEFAULT_ALLOW,
    deny: tc.deny ?? [],
    runCommandEnabled: tc.runCommand?.enabled === true,
    workspace,
    maxOutputBytes: tc.maxOutputBytes ?? 64 * 1024,
    timeoutMs: tc.timeoutMs ?? 30_000,
  });
  const info: AgentInfo = {
    name: DEFAULT_AGENT_NAME,
    workspace,
    ...(pc ? { model: { provider: providerId(pc.baseUrl), id: pc.model, baseUrl: pc.baseUrl } } : {}),
  };
  let runtimeRef: AgentRuntime | undefined;
  const hub = new SessionEventHub((key) =>
    runtimeRef ? rowOf({ runtime: runtimeRef, sessions, info }, key) : undefined,
  );
  sessions.onChange((c) => hub.onStoreChange(c));
  const broadcast = (event: string, payload: unknown) => {
    gw.broadcast(event, payload);
    // A turn's end changes its session's row (status, last message): tell session subscribers.
    const p = payload as { state?: string; sessionKey?: string; runId?: string };
    if (event === "chat" && p.sessionKey && (p.state === "final" || p.state === "error" || p.state === "aborted")) {
      const key = p.sessionKey;
      setImmediate(() => hub.changed(key, { reason: "run-end", ...(p.runId ? { runId: p.runId } : {}) }));
    }
  };
  const runtime = new AgentRuntime({
    sessions,
    provider,
    tools,
    log,
    broadcast,
    ...(config.agent?.systemPrompt ? { systemPrompt: config.agent.systemPrompt } : {}),
    ...(config.agent?.maxRounds ? { maxRounds: config.agent.maxRounds } : {}),
  });
  runtimeRef = runtime;
  const channels = new Map<string, Channel>([["webchat", webChatChannel(sessions, broadcast)]]);
  registerAgentMethods(gw.registry, { runtime, sessions, channels });
  registerSessionMethods(gw.registry, { runtime, sessions, info, hub });
  const catalog = pc
    ? new ModelCatalog({ baseUrl: pc.baseUrl, ...(apiKey !== undefined ? { apiKey } : {}) })
    : undefined;
  registerModelMethods(gw.registry, { info, catalog, hasApiKey: apiKey !== undefined });
  registerAgentsMethods(gw.registry, info);
  registerConfigMethods(gw.registry, () => config);
  for (const cap of OPENCLAW_CAPABILITIES) gw.registry.registerCapability(cap);
  gw.snapshotSections.set("sessionDefaults", () => snapshotSessionDefaults(info));
  gw.onClientReady((c) => {
    if (c.client?.caps.includes("model-catalog-snapshot"))
      void sendModelsSnapshot(info, catalog, (event, payload) => c.sendEvent(event, payload, { droppable: true }));
  });
  gw.statusSections.set("sessions", () => {
    const all = sessions.list({ limit: 100_000 });
    return sessionsSummary(all, all.length, { model: info.model?.id ?? null, contextTokens: null });
  });
  gw.statusSections.set("agent", () => ({
    provider: provider?.name ?? null,
    activeRuns: runtime.activeRuns().length,
    tools: tools.schemas().map((s) => s.function.name),
  }));
  gw.onShutdown(() => runtime.stopAll());
  return runtime;
}
