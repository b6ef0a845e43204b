/**
 * Wires the agent into a running gateway: the session store under the state
 * dir (turns cut off by a crash are marked incomplete first), the model
 * provider from `agent.provider` (its key a secret reference that fails
 * closed), the built-in tools under `tools.*` policy, the runtime, and the
 * gateway methods.
 */
import { mkdirSync } from "node:fs";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import type { LoopgateConfig, SecretInput } from "../../shared/config/schema.ts";
import type { GatewayHandle } from "../gateway/server.ts";
import { registerAgentMethods, webChatChannel, type Channel } from "../gateway/methods/agent.ts";
import type { Logger } from "../log/logger.ts";
import { statePath } from "../state.ts";
import { OpenAiCompatibleProvider } from "./openai-provider.ts";
import { AgentRuntime } from "./runtime.ts";
import { SessionStore } from "./session-store.ts";
import { BuiltinTools, DEFAULT_ALLOW } from "./tools.ts";

export function resolveSecretInput(v: SecretInput | undefined, name: string, resolve: (ref: { source: "env" | "file"; id: string }) => string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  const r = resolve(v as { source: "env" | "file"; id: string });
  if (r === undefined) throw new LoopgateError(ErrorCodes.SECRET_UNRESOLVED, `${name} refers to ${v.source}:${v.id}, which is not set`, { hint: `set it, or remove ${name} from the config` });
  return r;
}

export function enableAgent(gw: GatewayHandle, config: LoopgateConfig, log: Logger, resolveSecret: (ref: { source: "env" | "file"; id: string }) => string | undefined): AgentRuntime {
  const sessions = new SessionStore(statePath("sessions"));
  const interrupted = sessions.markInterruptedTurns();
  if (interrupted > 0) log.warn("marked turns cut off by the last shutdown as incomplete", { sessions: interrupted });
  const pc = config.agent?.provider;
  const provider = pc
    ? new OpenAiCompatibleProvider({
        baseUrl: pc.baseUrl,
        model: pc.model,
        ...(pc.apiKey !== undefined ? { apiKey: resolveSecretInput(pc.apiKey, "agent.provider.apiKey", resolveSecret)! } : {}),
        ...(pc.timeoutMs !== undefined ? { timeoutMs: pc.timeoutMs } : {}),
        ...(pc.maxRetries !== undefined ? { maxRetries: pc.maxRetries } : {}),
      })
    : undefined;
  if (!provider) log.warn("no model provider configured (agent.provider); the agent will answer with how to configure one");
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
  const broadcast = (event: string, payload: unknown) => gw.broadcast(event, payload);
  const runtime = new AgentRuntime({
    sessions,
    provider,
    tools,
    log,
    broadcast,
    ...(config.agent?.systemPrompt ? { systemPrompt: config.agent.systemPrompt } : {}),
    ...(config.agent?.maxRounds ? { maxRounds: config.agent.maxRounds } : {}),
  });
  const channels = new Map<string, Channel>([["webchat", webChatChannel(sessions, broadcast)]]);
  registerAgentMethods(gw.registry, { runtime, sessions, channels });
  gw.statusSections.set("sessions", () => ({ count: sessions.list({ limit: 100_000 }).length }));
  gw.statusSections.set("agent", () => ({ provider: provider?.name ?? null, activeRuns: runtime.activeRuns().length, tools: tools.schemas().map((s) => s.function.name) }));
  gw.onShutdown(() => runtime.stopAll());
  return runtime;
}
