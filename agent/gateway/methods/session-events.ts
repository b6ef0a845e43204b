/**
 * Live session events for subscribed connections, as OpenClaw sends them:
 * `sessions.changed` to every connection that called sessions.subscribe, and
 * `session.message` to those that called sessions.messages.subscribe for that
 * session. A subscription ends with its connection.
 */
import type { SessionChange } from "../../sessions/store.ts";
import { AGENT_ID } from "../../sessions/keys.ts";
import type { MethodContext } from "../methods.ts";
import { toChatMessage } from "./agent-view.ts";

type Emit = (event: string, payload: unknown) => void;
type Obj = Record<string, unknown>;

/** Most sessions one connection may follow message by message. */
export const MAX_MESSAGE_SUBSCRIPTIONS = 64;

export class SessionEventHub {
  readonly #sessions = new Map<string, Emit>();
  readonly #messages = new Map<string, { emit: Emit; keys: Set<string> }>();
  readonly #row: (key: string) => Obj | undefined;

  /** `row` gives the current SessionRow of a session (undefined once it is gone). */
  constructor(row: (key: string) => Obj | undefined) {
    this.#row = row;
  }

  subscribeSessions(ctx: MethodContext): void {
    if (!this.#sessions.has(ctx.connId))
      ctx.signal.addEventListener("abort", () => this.#drop(ctx.connId), { once: true });
    this.#sessions.set(ctx.connId, ctx.emit);
  }

  unsubscribeSessions(connId: string): void {
    this.#sessions.delete(connId);
  }

  /** Returns false when the connection already follows the maximum number of sessions. */
  subscribeMessages(ctx: MethodContext, key: string): boolean {
    let sub = this.#messages.get(ctx.connId);
    if (!sub) {
      sub = { emit: ctx.emit, keys: new Set() };
      this.#messages.set(ctx.connId, sub);
      ctx.signal.addEventListener("abort", () => this.#drop(ctx.connId), { once: true });
    }
    if (!sub.keys.has(key) && sub.keys.size >= MAX_MESSAGE_SUBSCRIPTIONS) return false;
    sub.keys.add(key);
    return true;
  }

  unsubscribeMessages(connId: string, key: string): void {
    this.#messages.get(connId)?.keys.delete(key);
  }

  counts(): { sessions: number; messages: number } {
    return { sessions: this.#sessions.size, messages: this.#messages.size };
  }

  /** Feeds a session store change out as events. */
  onStoreChange(c: SessionChange): void {
    if (c.type === "append") {
      const session = this.#row(c.key);
      const payload = {
        sessionKey: c.key,
        agentId: AGENT_ID,
        message: toChatMessage(c.entry),
        messageId: `${c.entry.seq}`,
        messageSeq: c.entry.seq,
        ...(session ? { session } : {}),
        ...(c.entry.runId ? { runId: c.entry.runId } : {}),
      };
      for (const sub of this.#messages.values()) if (sub.keys.has(c.key)) sub.emit("session.message", payload);
      this.changed(c.key, { phase: "message", messageId: `${c.entry.seq}`, messageSeq: c.entry.seq });
      return;
    }
    this.changed(c.key, { reason: c.type === "remove" ? "delete" : "reset" });
  }

  /** Sends `sessions.changed` for one session (a run started or ended, a message, a reset…). */
  changed(key: string, extra: Obj): void {
    if (this.#sessions.size === 0) return;
    const session = this.#row(key);
    const payload = { sessionKey: key, agentId: AGENT_ID, ...extra, ts: Date.now(), ...(session ? { session } : {}) };
    for (const emit of this.#sessions.values()) emit("sessions.changed", payload);
  }

  #drop(connId: string): void {
    this.#sessions.delete(connId);
    this.#messages.delete(connId);
  }
}
