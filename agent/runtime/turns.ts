/**
 * Agent turns: a turn is accepted at once with a run id, then runs in the
 * background: the user message and every tool call and result are appended
 * to the session as they happen, text deltas and tool activity go out as
 * `chat` and `agent` events (OpenClaw v4 shapes), and the turn ends with a
 * final, aborted or error event. A client that disconnects does not stop the
 * turn; one that comes back reads what it missed with chat.history.
 */
import { randomUUID } from "node:crypto";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import type { Logger } from "../log/logger.ts";
import type { ChatMessage, ModelProvider } from "./provider-types.ts";
import { AGENT_ID } from "../sessions/keys.ts";
import type { SessionLog, SessionEntry } from "../sessions/types.ts";
import type { ToolRunner } from "../tools/types.ts";

export interface RuntimeDeps {
  sessions: SessionLog;
  /** Undefined when no provider is configured: turns then end with an error that says how to configure one. */
  provider: ModelProvider | undefined;
  tools: ToolRunner | undefined;
  log: Logger;
  /** Sends an event to every connected operator client. */
  broadcast(event: string, payload: unknown): void;
  systemPrompt?: string;
  /** Model/tool rounds per turn before it is cut off. */
  maxRounds?: number;
  /** History entries sent to the model. */
  contextEntries?: number;
}

export type RunState = "running" | "final" | "aborted" | "error";

export interface RunInfo {
  runId: string;
  sessionKey: string;
  state: RunState;
  startedAt: number;
  endedAt?: number;
  text: string;
  error?: string;
}

interface Run extends RunInfo {
  abort: AbortController;
  /** Resolves at the first model output of the turn (or its end). */
  firstOutput: Promise<void>;
  markOutput: () => void;
  seq: number;
  done: Promise<RunInfo>;
}

export const NO_PROVIDER_MESSAGE =
  "no model provider is configured: set agent.provider.baseUrl and agent.provider.model in the config (any OpenAI-compatible server: OpenAI, Ollama, vLLM, llama.cpp, LM Studio), with agent.provider.apiKey as a secret reference if it needs one";

export class AgentRuntime {
  readonly #d: RuntimeDeps;
  readonly #runs = new Map<string, Run>();
  readonly #byIdempotency = new Map<string, string>();
  readonly #activeBySession = new Map<string, string>();

  constructor(deps: RuntimeDeps) {
    this.#d = deps;
  }

  /**
   * Starts a turn (or returns the run an identical idempotency key already
   * started). `runId` is the client's idempotency key when it sent one, as
   * OpenClaw does; otherwise a fresh UUID.
   */
  start(p: { sessionKey: string; message: string; idempotencyKey: string; runId?: string; channel?: string }): RunInfo {
    const existing =
      this.#byIdempotency.get(p.idempotencyKey) ??
      (p.runId !== undefined && this.#runs.has(p.runId) ? p.runId : undefined);
    if (existing && this.#runs.has(existing)) return this.#public(this.#runs.get(existing)!);
    if (this.#activeBySession.has(p.sessionKey)) {
      throw new LoopgateError(ErrorCodes.SESSION_BUSY, `session ${p.sessionKey} already has a turn running`, {
        hint: "wait for it (agent.wait) or abort it (chat.abort)",
      });
    }
    const runId = p.runId ?? randomUUID();
    let resolveDone!: (r: RunInfo) => void;
    let markOutput!: () => void;
    const firstOutput = new Promise<void>((r) => (markOutput = r));
    const run: Run = {
      firstOutput,
      markOutput,
      runId,
      sessionKey: p.sessionKey,
      state: "running",
      startedAt: Date.now(),
      text: "",
      abort: new AbortController(),
      seq: 0,
      done: new Promise((r) => (resolveDone = r)),
    };
    this.#runs.set(runId, run);
    this.#byIdempotency.set(p.idempotencyKey, runId);
    this.#activeBySession.set(p.sessionKey, runId);
    this.#d.sessions.append(p.sessionKey, {
      kind: "user",
      runId,
      text: p.message,
      ...(p.channel ? { channel: p.channel } : {}),
    });
    void this.#run(run, p.message).then(
      () => resolveDone(this.#public(run)),
      () => resolveDone(this.#public(run)),
    );
    this.#prune();
    return this.#public(run);
  }

  /** Resolves when the run first streams model output (or ends); undefined for an unknown run. */
  firstOutput(runId: string): Promise<void> | undefined {
    return this.#runs.get(runId)?.firstOutput;
  }

  get(runId: string): RunInfo | undefined {
    const r = this.#runs.get(runId);
    return r ? this.#public(r) : undefined;
  }

  /** Waits for a run to end (or the timeout; then it returns the run as it is). */
  async wait(runId: string, timeoutMs: number): Promise<RunInfo | undefined> {
    const r = this.#runs.get(runId);
    if (!r) return undefined;
    if (r.state !== "running") return this.#public(r);
    let t: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<RunInfo>((resolve) => (t = setTimeout(() => resolve(this.#public(r)), timeoutMs)));
    try {
      return await Promise.race([r.done, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Aborts the running turn of a session (or one run). Returns the aborted run ids. */
  abort(sessionKey: string, runId?: string): string[] {
    const ids = runId ? [runId] : [this.#activeBySession.get(sessionKey)].filter((x): x is string => x !== undefined);
    const out: string[] = [];
    for (const id of ids) {
      const r = this.#runs.get(id);
      if (r && r.state === "running" && r.sessionKey === sessionKey) {
        r.abort.abort();
        out.push(id);
      }
    }
    return out;
  }

  activeRuns(): RunInfo[] {
    return [...this.#runs.values()].filter((r) => r.state === "running").map((r) => this.#public(r));
  }

  /** Aborts everything (gateway shutdown); the sessions keep what was appended. */
  async stopAll(): Promise<void> {
    const running = [...this.#runs.values()].filter((r) => r.state === "running");
    for (const r of running) r.abort.abort();
    await Promise.all(running.map((r) => r.done));
  }

  #public(r: Run): RunInfo {
    return {
      runId: r.runId,
      sessionKey: r.sessionKey,
      state: r.state,
      startedAt: r.startedAt,
      text: r.text,
      ...(r.endedAt ? { endedAt: r.endedAt } : {}),
      ...(r.error ? { error: r.error } : {}),
    };
  }

  #prune(): void {
    if (this.#runs.size < 2000) return;
    for (const [id, r] of this.#runs) {
      if (r.state !== "running") this.#runs.delete(id);
      if (this.#runs.size < 1000) break;
    }
    if (this.#byIdempotency.size > 4000) this.#byIdempotency.clear();
  }

  #chat(run: Run, state: string, extra: Record<string, unknown>): void {
    if (state !== "delta") run.markOutput();
    this.#d.broadcast("chat", {
      runId: run.runId,
      sessionKey: run.sessionKey,
      agentId: AGENT_ID,
      seq: run.seq++,
      state,
      ...extra,
    });
  }

  #agentEvent(run: Run, stream: string, data: Record<string, unknown>): void {
    this.#d.broadcast("agent", { runId: run.runId, seq: run.seq++, stream, ts: Date.now(), data });
  }

  #end(run: Run, state: RunState, error?: string): void {
    run.state = state;
    run.endedAt = Date.now();
    if (error) run.error = error;
    this.#activeBySession.delete(run.sessionKey);
  }

  async #run(run: Run, _message: string): Promise<void> {
    const { sessions, provider, tools, log } = this.#d;
    const signal = run.abort.signal;
    this.#agentEvent(run, "lifecycle", { phase: "start" });
    if (!provider) {
      sessions.append(run.sessionKey, { kind: "error", runId: run.runId, text: NO_PROVIDER_MESSAGE });
      this.#chat(run, "error", { errorMessage: NO_PROVIDER_MESSAGE, errorKind: "config" });
      this.#end(run, "error", NO_PROVIDER_MESSAGE);
      return;
    }
    const messages = this.#context(run.sessionKey);
    const maxRounds = this.#d.maxRounds ?? 8;
    try {
      for (let round = 0; round < maxRounds; round++) {
        let text = "";
        const calls: { id: string; name: string; argsJson: string }[] = [];
        for await (const ev of provider.streamChat(messages, {
          ...(tools ? { tools: tools.schemas() } : {}),
          signal,
        })) {
          if (ev.type === "text") {
            run.markOutput();
            text += ev.delta;
            run.text += ev.delta;
            this.#chat(run, "delta", {
              deltaText: ev.delta,
              message: { role: "assistant", content: [{ type: "text", text: run.text }], timestamp: Date.now() },
            });
            this.#agentEvent(run, "assistant", { delta: ev.delta, text: run.text });
          } else if (ev.type === "tool_call") {
            calls.push({ id: ev.id, name: ev.name, argsJson: ev.argsJson });
          }
        }
        if (calls.length === 0) {
          sessions.append(run.sessionKey, { kind: "assistant", runId: run.runId, text });
          this.#chat(run, "final", {
            message: { role: "assistant", content: [{ type: "text", text: run.text }], timestamp: Date.now() },
            stopReason: "stop",
          });
          this.#agentEvent(run, "lifecycle", { phase: "end" });
          this.#end(run, "final");
          return;
        }
        messages.push({
          role: "assistant",
          content: text || null,
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: "function" as const,
            function: { name: c.name, arguments: c.argsJson },
          })),
        });
        for (const c of calls) {
          sessions.append(run.sessionKey, {
            kind: "tool_call",
            runId: run.runId,
            tool: c.name,
            callId: c.id,
            args: c.argsJson,
          });
          this.#agentEvent(run, "tool", { phase: "start", name: c.name, toolCallId: c.id, args: c.argsJson });
          const result = tools
            ? await tools.execute(c.name, c.argsJson, { signal, sessionKey: run.sessionKey })
            : { ok: false, output: "no tools are available" };
          sessions.append(run.sessionKey, {
            kind: "tool_result",
            runId: run.runId,
            tool: c.name,
            callId: c.id,
            ok: result.ok,
            text: result.output,
          });
          this.#agentEvent(run, "tool", {
            phase: "result",
            name: c.name,
            toolCallId: c.id,
            ok: result.ok,
            result: result.output,
          });
          messages.push({ role: "tool", tool_call_id: c.id, content: result.output });
        }
        if (signal.aborted) break;
      }
      if (signal.aborted) throw new DOMException("aborted", "AbortError");
      const msg = `the turn used ${maxRounds} model rounds without finishing; stopped`;
      sessions.append(run.sessionKey, { kind: "error", runId: run.runId, text: msg });
      this.#chat(run, "error", { errorMessage: msg, errorKind: "limit" });
      this.#end(run, "error", msg);
    } catch (e) {
      if (signal.aborted) {
        if (run.text)
          sessions.append(run.sessionKey, { kind: "assistant", runId: run.runId, text: run.text, incomplete: true });
        sessions.append(run.sessionKey, { kind: "system", runId: run.runId, text: "turn aborted" });
        this.#chat(run, "aborted", {
          stopReason: "aborted",
          ...(run.text ? { message: { role: "assistant", content: [{ type: "text", text: run.text }] } } : {}),
        });
        this.#end(run, "aborted");
        return;
      }
      const err = e instanceof LoopgateError ? e.oneLine() : e instanceof Error ? e.message : String(e);
      log.warn("agent turn failed", { runId: run.runId, err });
      if (run.text)
        sessions.append(run.sessionKey, { kind: "assistant", runId: run.runId, text: run.text, incomplete: true });
      sessions.append(run.sessionKey, { kind: "error", runId: run.runId, text: err });
      this.#chat(run, "error", { errorMessage: err, errorKind: "provider" });
      this.#end(run, "error", err);
    }
  }

  /** The model's view of the session: system prompt, then recent user/assistant/tool entries. */
  #context(sessionKey: string): ChatMessage[] {
    const entries: SessionEntry[] = this.#d.sessions.history(sessionKey, { limit: this.#d.contextEntries ?? 50 });
    const out: ChatMessage[] = [];
    if (this.#d.systemPrompt) out.push({ role: "system", content: this.#d.systemPrompt });
    for (const e of entries) {
      if (e.kind === "user" && e.text !== undefined) out.push({ role: "user", content: e.text });
      else if (e.kind === "assistant" && e.text) out.push({ role: "assistant", content: e.text });
    }
    return out;
  }
}
