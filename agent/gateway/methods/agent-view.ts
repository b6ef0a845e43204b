/**
 * How OpenClaw clients see loopgate's one agent and its sessions: the agent
 * summary, session defaults, session rows and chat messages, in the shapes
 * of the published protocol schemas (AgentSummary, SessionRow, …).
 */
import type { RunInfo } from "../../runtime/turns.ts";
import { AGENT_ID, MAIN_KEY, MAIN_SESSION_KEY } from "../../sessions/keys.ts";
import type { SessionEntry, SessionSummary } from "../../sessions/types.ts";

type Obj = Record<string, unknown>;

/** What the gateway knows about its agent and model, from the config. */
export interface AgentInfo {
  name: string;
  workspace: string;
  /** The configured model provider; undefined when none is configured. */
  model?: { provider: string; id: string; baseUrl: string };
}

/** The provider id OpenClaw clients see: the configured provider's host, or "openai-compatible". */
export function providerId(baseUrl: string): string {
  try {
    return new URL(baseUrl).hostname.replace(/^127\.0\.0\.1$|^\[?::1\]?$/, "localhost") || "openai-compatible";
  } catch {
    return "openai-compatible";
  }
}

/** snapshot.sessionDefaults in hello-ok. */
export function snapshotSessionDefaults(info: AgentInfo): Obj {
  return {
    defaultAgentId: AGENT_ID,
    modelConfigured: info.model !== undefined,
    ownership: "sole",
    selectionRequired: false,
    mainKey: MAIN_KEY,
    mainSessionKey: MAIN_SESSION_KEY,
    scope: "per-sender",
  };
}

/** `defaults` in sessions.list, chat.history and chat.startup. */
export function sessionListDefaults(info: AgentInfo): Obj {
  return {
    modelProvider: info.model?.provider ?? null,
    model: info.model?.id ?? null,
    contextTokens: null,
    modelSelectionTarget: "session",
  };
}

export function agentSummary(info: AgentInfo): Obj {
  return {
    id: AGENT_ID,
    kind: "agent",
    name: info.name,
    identity: { name: info.name },
    workspace: info.workspace,
    workspaceGit: false,
    ...(info.model ? { model: { primary: `${info.model.provider}/${info.model.id}` } } : {}),
    defaultPermissionMode: "workspace",
  };
}

export function agentIdentity(info: AgentInfo): Obj {
  return {
    agentId: AGENT_ID,
    name: info.name,
    nameSource: info.name === DEFAULT_AGENT_NAME ? "default" : "config",
    avatar: info.name.slice(0, 1).toUpperCase() || "A",
  };
}

export const DEFAULT_AGENT_NAME = "Assistant";

/** A session as a SessionRow. */
export function sessionRow(s: SessionSummary, info: AgentInfo, active: RunInfo | undefined): Obj {
  const short = s.key.slice(`agent:${AGENT_ID}:`.length);
  return {
    key: s.key,
    sessionId: s.key,
    kind: "direct",
    displayName: short,
    ...(s.lastText !== undefined ? { derivedTitle: s.lastText.slice(0, 60), lastMessagePreview: s.lastText } : {}),
    channel: "webchat",
    classification: short === MAIN_KEY ? "main" : "direct",
    agentId: AGENT_ID,
    isMain: s.key === MAIN_SESSION_KEY,
    isBackground: false,
    chatType: "direct",
    updatedAt: s.updatedAt,
    createdAt: s.createdAt,
    lastActivityAt: s.updatedAt,
    archived: false,
    pinned: false,
    unread: false,
    ...(active ? { status: "running", lastRunId: active.runId } : { status: "done" }),
    totalTokensFresh: false,
    ...(info.model ? { model: info.model.id, modelProvider: info.model.provider } : {}),
  };
}

/** The sessionInfo block of chat.history / chat.startup: the row plus run state. */
export function sessionInfo(
  key: string,
  s: SessionSummary | undefined,
  info: AgentInfo,
  active: RunInfo | undefined,
): Obj {
  const row = s
    ? sessionRow(s, info, active)
    : {
        key,
        kind: "direct",
        agentId: AGENT_ID,
        isMain: key === MAIN_SESSION_KEY,
        isBackground: false,
        updatedAt: null,
        archived: false,
        pinned: false,
        unread: false,
        totalTokensFresh: false,
      };
  return {
    ...row,
    snapshotAt: Date.now(),
    hasActiveRun: active !== undefined,
    activeRunIds: active ? [active.runId] : [],
    activeLeafEntryId: null,
  };
}

function parseArgs(args: string | undefined): unknown {
  if (args === undefined) return {};
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return args;
  }
}

/**
 * A session entry as a chat message in OpenClaw's transcript shape: user and
 * assistant text, tool calls as assistant `toolCall` parts, tool results as
 * `toolResult` messages, errors as assistant messages with stopReason "error".
 */
export function toChatMessage(e: SessionEntry): Obj {
  const meta = {
    __openclaw: { id: `${e.seq}`, seq: e.seq },
    timestamp: e.ts,
    ...(e.runId ? { runId: e.runId } : {}),
    ...(e.incomplete ? { incomplete: true } : {}),
  };
  switch (e.kind) {
    case "user":
      // The run id is the client's idempotency key when it sent one: clients match their optimistic message with it.
      return {
        role: "user",
        content: [{ type: "text", text: e.text ?? "" }],
        ...meta,
        __openclaw: { ...meta.__openclaw, ...(e.runId ? { idempotencyKey: e.runId } : {}) },
      };
    case "assistant":
      return {
        role: "assistant",
        content: [{ type: "text", text: e.text ?? "" }],
        stopReason: e.incomplete ? "aborted" : "stop",
        ...meta,
      };
    case "tool_call":
      return {
        role: "assistant",
        content: [
          { type: "toolCall", id: e.callId ?? `call-${e.seq}`, name: e.tool ?? "tool", arguments: parseArgs(e.args) },
        ],
        stopReason: "toolUse",
        ...meta,
      };
    case "tool_result":
      return {
        role: "toolResult",
        toolCallId: e.callId ?? `call-${e.seq}`,
        toolName: e.tool ?? "tool",
        content: [{ type: "text", text: e.text ?? "" }],
        isError: e.ok === false,
        ...meta,
      };
    case "error":
      return {
        role: "assistant",
        content: [{ type: "text", text: e.text ?? "" }],
        stopReason: "error",
        errorMessage: e.text ?? "",
        ...meta,
      };
    default:
      return { role: "system", content: [{ type: "text", text: e.text ?? "" }], ...meta };
  }
}
