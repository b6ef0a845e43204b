/**
 * Agent, chat, sessions and send methods, named as in the OpenClaw v4
 * protocol: `chat.send`/`chat.history`/`chat.abort`, `sessions.list`/
 * `sessions.reset`/`sessions.delete`, `agent` (answers "accepted" at once,
 * the result when the turn ends), `agent.wait`, and `send` (delivery to a
 * channel; WebChat is the built-in one).
 */
import { randomUUID } from "node:crypto";
import { LoopgateError } from "../../../shared/errors.ts";
import type { AgentRuntime, RunInfo } from "../../runtime/turns.ts";
import { checkSessionKey, type SessionStore } from "../../sessions/store.ts";
import { AGENT_ID, canonicalSessionKey } from "../../sessions/keys.ts";
import { MethodError, type MethodContext, type MethodRegistry } from "../methods.ts";
import { GatewayErrorCodes } from "../protocol.ts";
import { Scopes } from "../scopes.ts";

export const DEFAULT_SESSION = "main";
const MAX_MESSAGE = 100_000;

/** A channel `send` can deliver to. WebChat is built in; others implement this. */
export interface Channel {
  readonly name: string;
  deliver(to: string, message: string): Promise<{ messageId: string }>;
}

type Obj = Record<string, unknown>;

function obj(params: unknown): Obj {
  if (params === undefined || params === null) return {};
  if (typeof params !== "object" || Array.isArray(params)) throw bad("params must be an object");
  return params as Obj;
}

function bad(message: string): MethodError {
  return new MethodError({ code: GatewayErrorCodes.INVALID_REQUEST, message });
}

function str(p: Obj, name: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
  const v = p[name];
  if (v === undefined || v === null) {
    if (opts.required) throw bad(`${name} is required`);
    return undefined;
  }
  if (typeof v !== "string") throw bad(`${name} must be a string`);
  if (v.length > (opts.max ?? 4096)) throw bad(`${name} is longer than ${opts.max ?? 4096} characters`);
  return v;
}

function int(p: Obj, name: string, min: number, max: number): number | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw bad(`${name} must be an integer from ${min} to ${max}`);
  return v;
}

/** `limit` and `offset` of a paged list method. */
export function paging(p: Obj, defaultLimit: number, maxLimit: number): { limit: number; offset: number } {
  return { limit: int(p, "limit", 1, maxLimit) ?? defaultLimit, offset: int(p, "offset", 0, 1_000_000) ?? 0 };
}

/**
 * chat.abort and sessions.abort: stops the runs of the session `keyName`
 * names, or only `runId` (an idempotency key, up to 256 characters).
 */
export function abortRuns(runtime: AgentRuntime, p: Obj, keyName: "sessionKey" | "key", ctx: MethodContext): Obj {
  const ids = runtime.abort(sessionKey(p, keyName, ctx), str(p, "runId", { max: 256 }));
  return { ok: true, aborted: ids.length > 0, runIds: ids };
}

/**
 * The canonical session key a request names (`sessionKey`, or `key`), with
 * an optional `agentId` that must be this gateway's agent. Short keys are
 * aliases: `main` is `agent:main:main`.
 */
export function sessionKey(p: Obj, name = "sessionKey", ctx?: MethodContext): string {
  const k = str(p, name, { max: 200 }) ?? DEFAULT_SESSION;
  const agentId = str(p, "agentId", { max: 64 });
  try {
    const canonical = checkSessionKey(agentId !== undefined ? canonicalSessionKey(k, agentId) : k);
    if (str(p, name, { max: 200 }) !== undefined) ctx?.aliasSessionKey?.(k, canonical);
    return canonical;
  } catch (e) {
    throw bad(e instanceof LoopgateError ? `${name}: ${e.message} (${e.hint ?? ""})` : `invalid ${name}`);
  }
}

export { obj, str, int, bad };

function finalPayload(r: RunInfo): Obj {
  const status = r.state === "final" ? "ok" : r.state === "running" ? "timeout" : r.state;
  return {
    runId: r.runId,
    status,
    summary: r.state === "final" ? "completed" : (r.error ?? r.state),
    result: {
      payloads: r.text ? [{ text: r.text }] : [],
      meta: { sessionKey: r.sessionKey, durationMs: (r.endedAt ?? Date.now()) - r.startedAt },
    },
    ...(r.error ? { error: r.error } : {}),
  };
}

/**
 * `chat.send_timing` to the sender, as OpenClaw does: once the turn is on its
 * way to the model (after the ack), and at its first model output.
 */
function sendTiming(
  ctx: MethodContext,
  run: RunInfo,
  receivedAt: number,
  firstOutput: Promise<void> | undefined,
): void {
  const ackedAt = performance.now();
  const emit = (phase: string) => {
    const now = performance.now();
    const ms = (v: number) => Math.max(0, Math.round(v * 1000) / 1000);
    ctx.emit("chat.send_timing", {
      phase,
      runId: run.runId,
      sessionKey: run.sessionKey,
      agentId: AGENT_ID,
      ackToPhaseMs: ms(now - ackedAt),
      receivedToPhaseMs: ms(now - receivedAt),
    });
  };
  setImmediate(() => emit("starting_model"));
  void firstOutput?.then(() => emit("first-assistant-event"));
}

export function registerAgentMethods(
  registry: MethodRegistry,
  deps: { runtime: AgentRuntime; sessions: SessionStore; channels: Map<string, Channel> },
): void {
  const { runtime, sessions, channels } = deps;
  registry.registerEvent("chat");
  registry.registerEvent("agent");
  registry.registerEvent("chat.send_timing");

  const start = (p: Obj, key: string) => {
    const message = str(p, "message", { required: true, max: MAX_MESSAGE })!;
    if (message.trim() === "") throw bad("message is empty");
    const given = str(p, "idempotencyKey", { max: 256 });
    const idempotencyKey = given ?? randomUUID();
    try {
      return runtime.start({
        sessionKey: key,
        message,
        idempotencyKey,
        ...(given !== undefined ? { runId: given } : {}),
        ...(typeof p.channel === "string" ? { channel: p.channel.slice(0, 64) } : {}),
      });
    } catch (e) {
      if (e instanceof LoopgateError)
        throw new MethodError({
          code: GatewayErrorCodes.UNAVAILABLE,
          message: e.message,
          retryable: true,
          retryAfterMs: 1000,
        });
      throw e;
    }
  };

  registry.register({
    name: "chat.send",
    scope: Scopes.WRITE,
    handler: (params, ctx) => {
      const receivedAt = performance.now();
      const p = obj(params);
      const run = start(p, sessionKey(p, "sessionKey", ctx));
      sendTiming(ctx, run, receivedAt, runtime.firstOutput(run.runId));
      return { runId: run.runId, status: "started" };
    },
  });

  registry.register({
    name: "chat.abort",
    scope: Scopes.WRITE,
    handler: (params, ctx) => abortRuns(runtime, obj(params), "sessionKey", ctx),
  });

  /** sessions.reset and sessions.delete: the session's runs stop first. */
  const endSession = (name: string, scope: string, end: (key: string) => Obj) =>
    registry.register({
      name,
      scope,
      handler: (params) => {
        const key = sessionKey(obj(params), "key");
        runtime.abort(key);
        return { ok: true, key, ...end(key) };
      },
    });
  endSession("sessions.reset", Scopes.WRITE, (key) => ({ reset: sessions.reset(key) }));
  endSession("sessions.delete", Scopes.ADMIN, (key) => ({ deleted: sessions.remove(key) }));

  registry.register({
    name: "agent",
    scope: Scopes.WRITE,
    handler: async (params, ctx) => {
      const p = obj(params);
      const run = start(p, sessionKey(p));
      ctx.interim({ runId: run.runId, status: "accepted", acceptedAt: run.startedAt });
      const timeoutS = int(p, "timeout", 1, 3600) ?? 600;
      const done = await runtime.wait(run.runId, timeoutS * 1000);
      return finalPayload(done ?? run);
    },
  });

  registry.register({
    name: "agent.wait",
    scope: Scopes.READ,
    handler: async (params) => {
      const p = obj(params);
      const runId = str(p, "runId", { required: true, max: 256 })!;
      const r = await runtime.wait(runId, int(p, "timeoutMs", 0, 3_600_000) ?? 30_000);
      if (!r) throw bad(`unknown runId ${runId.slice(0, 64)}`);
      return finalPayload(r);
    },
  });

  registry.register({
    name: "send",
    scope: Scopes.WRITE,
    handler: (params) => sendToChannel(channels, obj(params)),
  });
}

/** `send`: delivers a message to `to` on a channel (WebChat unless `channel` names another). */
async function sendToChannel(channels: ReadonlyMap<string, Channel>, p: Obj): Promise<Obj> {
  const to = str(p, "to", { required: true, max: 200 })!;
  const message = str(p, "message", { required: true, max: MAX_MESSAGE })!;
  const name = str(p, "channel", { max: 64 }) ?? "webchat";
  const channel = channels.get(name);
  if (!channel) throw bad(`unknown channel ${name}; available: ${[...channels.keys()].join(", ")}`);
  try {
    const r = await channel.deliver(to, message);
    return { ok: true, channel: name, to, messageId: r.messageId };
  } catch (e) {
    if (e instanceof LoopgateError) throw bad(e.message);
    throw e;
  }
}

/** WebChat: a message "sent" to a session appears in its history and on every open Control UI. */
export function webChatChannel(sessions: SessionStore, broadcast: (event: string, payload: unknown) => void): Channel {
  return {
    name: "webchat",
    async deliver(to, message) {
      const key = checkSessionKey(to);
      const runId = randomUUID();
      const e = sessions.append(key, { kind: "assistant", runId, text: message, channel: "webchat" });
      broadcast("chat", {
        runId,
        sessionKey: key,
        seq: 0,
        state: "final",
        message: { role: "assistant", content: [{ type: "text", text: message }], timestamp: e.ts },
      });
      return { messageId: `${key}#${e.seq}` };
    },
  };
}
