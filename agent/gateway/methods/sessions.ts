/**
 * Session methods as OpenClaw's clients call them: sessions.list (rows plus
 * `defaults`), sessions.describe, the live subscriptions (sessions.subscribe,
 * sessions.messages.subscribe and their unsubscribes), chat.history and
 * chat.startup (one transcript shape), and sessions.observer.visibility.
 */
import { randomUUID } from "node:crypto";
import type { AgentRuntime, RunInfo } from "../../runtime/turns.ts";
import type { SessionSummary } from "../../sessions/types.ts";
import type { SessionStore } from "../../sessions/store.ts";
import { AGENT_ID } from "../../sessions/keys.ts";
import { MethodError, type MethodContext, type MethodRegistry } from "../methods.ts";
import { GatewayErrorCodes } from "../protocol.ts";
import { Scopes } from "../scopes.ts";
import { abortRuns, bad, int, obj, paging, sessionKey, str } from "./agent.ts";
import { sessionInfo, sessionListDefaults, sessionRow, toChatMessage, type AgentInfo } from "./agent-view.ts";
import type { SessionEventHub } from "./session-events.ts";

type Obj = Record<string, unknown>;

export interface SessionDeps {
  runtime: AgentRuntime;
  sessions: SessionStore;
  info: AgentInfo;
  hub: SessionEventHub;
}

/** The current SessionRow of a session, or undefined when it does not exist. */
export function rowOf(deps: Pick<SessionDeps, "runtime" | "sessions" | "info">, key: string): Obj | undefined {
  const s = deps.sessions.get(key);
  if (!s) return undefined;
  return listRow(
    s,
    deps.info,
    deps.runtime.activeRuns().find((r) => r.sessionKey === key),
  );
}

/** A SessionRow plus the two fields loopgate's own Control UI reads (entries, lastMessage). */
function listRow(s: SessionSummary, info: AgentInfo, active: RunInfo | undefined): Obj {
  return {
    ...sessionRow(s, info, active),
    entries: s.entries,
    ...(s.lastText !== undefined ? { lastMessage: s.lastText } : {}),
  };
}

/** chat.history and chat.startup: the transcript tail plus what the UI renders around it. */
function transcript(deps: SessionDeps, params: unknown, ctx: MethodContext): Obj {
  const p = obj(params);
  const key = sessionKey(p, "sessionKey", ctx);
  const limit = int(p, "limit", 1, 1000) ?? 200;
  const maxBytes = int(p, "maxBytes", 1024, 16 * 1024 * 1024);
  const summary = deps.sessions.get(key);
  let messages = deps.sessions.history(key, { limit }).map(toChatMessage);
  if (maxBytes !== undefined) {
    // Keep the newest messages that fit.
    let bytes = 0;
    let from = messages.length;
    while (from > 0) {
      bytes += Buffer.byteLength(JSON.stringify(messages[from - 1]));
      if (bytes > maxBytes) break;
      from--;
    }
    messages = messages.slice(from);
  }
  const active = deps.runtime.activeRuns().find((r) => r.sessionKey === key);
  const total = summary?.entries ?? 0;
  return {
    sessionKey: key,
    messages,
    pendingInputs: { items: [], total: 0 },
    hasMore: total > messages.length,
    totalMessages: total,
    defaults: sessionListDefaults(deps.info),
    sessionInfo: sessionInfo(key, summary, deps.info, active),
    ...(active ? { activeRun: { runId: active.runId, text: active.text } } : {}),
  };
}

export function registerSessionMethods(registry: MethodRegistry, deps: SessionDeps): void {
  const { sessions, runtime, info, hub } = deps;
  registry.registerEvent("sessions.changed");
  registry.registerEvent("session.message");

  registry.register({
    name: "sessions.list",
    scope: Scopes.READ,
    handler: (params) => {
      const p = obj(params);
      const { limit, offset } = paging(p, 100, 10_000);
      const search = str(p, "search", { max: 200 });
      const agentId = str(p, "agentId", { max: 64 });
      // loopgate's sessions are never spawned by another session, and it runs one agent.
      const none =
        str(p, "spawnedBy", { max: 200 }) !== undefined ||
        (agentId !== undefined && agentId.toLowerCase() !== AGENT_ID);
      const all = none ? [] : sessions.list({ limit: Number.MAX_SAFE_INTEGER, ...(search ? { search } : {}) });
      const page = all.slice(offset, offset + limit);
      const active = runtime.activeRuns();
      const hasMore = all.length > offset + limit;
      return {
        ts: Date.now(),
        count: page.length,
        totalCount: all.length,
        limitApplied: limit,
        nextOffset: hasMore ? offset + limit : null,
        hasMore,
        owners: [],
        defaults: sessionListDefaults(info),
        sessions: page.map((s) =>
          listRow(
            s,
            info,
            active.find((r) => r.sessionKey === s.key),
          ),
        ),
      };
    },
  });

  registry.register({
    name: "sessions.describe",
    scope: Scopes.READ,
    handler: (params) => {
      const p = obj(params);
      return { session: rowOf(deps, sessionKey(p, p.key !== undefined ? "key" : "sessionKey")) ?? null };
    },
  });

  registry.register({
    name: "sessions.subscribe",
    scope: Scopes.READ,
    handler: (_params, ctx) => {
      hub.subscribeSessions(ctx);
      return { subscribed: true };
    },
  });

  registry.register({
    name: "sessions.unsubscribe",
    scope: Scopes.READ,
    handler: (_params, ctx) => {
      hub.unsubscribeSessions(ctx.connId);
      return { subscribed: false };
    },
  });

  registry.register({
    name: "sessions.messages.subscribe",
    scope: Scopes.READ,
    handler: (params, ctx) => {
      const p = obj(params);
      const key = sessionKey(p, "key");
      if (!hub.subscribeMessages(ctx, key)) {
        throw new MethodError({
          code: GatewayErrorCodes.INVALID_REQUEST,
          message:
            "this connection already follows the maximum number of sessions; unsubscribe one first (sessions.messages.unsubscribe)",
        });
      }
      return {
        subscribed: true,
        key,
        ...(p.includeApprovals === true
          ? { approvalReplay: { sessionKey: key, updatedAtMs: Date.now(), approvals: [], truncated: false } }
          : {}),
      };
    },
  });

  registry.register({
    name: "sessions.messages.unsubscribe",
    scope: Scopes.READ,
    handler: (params, ctx) => {
      const key = sessionKey(obj(params), "key");
      hub.unsubscribeMessages(ctx.connId, key);
      return { subscribed: false, key };
    },
  });

  registry.register({
    name: "sessions.observer.visibility",
    scope: Scopes.READ,
    handler: (params) => {
      const p = obj(params);
      if (p.visible !== undefined && typeof p.visible !== "boolean") throw bad("visible must be a boolean");
      return { ok: true };
    },
  });

  registry.register({
    name: "sessions.abort",
    scope: Scopes.WRITE,
    handler: (params, ctx) => abortRuns(runtime, obj(params), "key", ctx),
  });

  registry.register({
    name: "sessions.create",
    scope: Scopes.WRITE,
    handler: (params) => {
      const p = obj(params);
      // A session exists on disk from its first message; creating one names it.
      const key =
        p.key !== undefined
          ? sessionKey(p, "key")
          : sessionKey(
              { key: `chat-${randomUUID().slice(0, 8)}`, ...(p.agentId !== undefined ? { agentId: p.agentId } : {}) },
              "key",
            );
      return { ok: true, key, sessionId: key, runStarted: false };
    },
  });

  registry.register({
    name: "chat.history",
    scope: Scopes.READ,
    handler: (params, ctx) => transcript(deps, params, ctx),
  });
  registry.register({
    name: "chat.startup",
    scope: Scopes.READ,
    handler: (params, ctx) => transcript(deps, params, ctx),
  });
}
