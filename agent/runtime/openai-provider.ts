/**
 * An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM,
 * llama.cpp server, LM Studio…) over undici, streaming: server-sent events
 * are parsed into text deltas and tool calls (assembled from their deltas by
 * index). 429 and 5xx answers and connection failures are retried with
 * jittered exponential backoff (honouring Retry-After) as long as nothing of
 * the answer has been delivered yet. The API key is never logged or put in
 * an error.
 */
import type { Agent, request } from "undici";
import { undici } from "../lazy-undici.ts";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import type { ChatMessage, ModelEvent, ModelProvider, ToolSchema } from "./provider-types.ts";

export interface OpenAiProviderOptions {
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Time to the response headers, and the longest silence inside a stream. */
  timeoutMs?: number;
  maxRetries?: number;
  /** Base of the retry backoff (tests make it small). */
  retryBaseMs?: number;
}

/** One connection pool for every provider, made with the first call. */
let dispatcher: Agent | undefined;

function retryDelay(attempt: number, base: number, retryAfter: string | string[] | undefined): number {
  const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  if (ra !== undefined) {
    const s = Number(ra);
    if (Number.isFinite(s) && s >= 0) return Math.min(s * 1000, 30_000);
    const d = Date.parse(ra);
    if (Number.isFinite(d)) return Math.min(Math.max(0, d - Date.now()), 30_000);
  }
  const ceil = Math.min(base * 2 ** attempt, 10_000);
  return Math.round(ceil * (0.5 + Math.random() * 0.5));
}

export class OpenAiCompatibleProvider implements ModelProvider {
  readonly name: string;
  readonly #o: Required<Omit<OpenAiProviderOptions, "apiKey">> & { apiKey?: string };

  constructor(o: OpenAiProviderOptions) {
    let url: URL;
    try {
      url = new URL(o.baseUrl);
    } catch {
      throw new LoopgateError(
        ErrorCodes.CONFIG_INVALID,
        `agent.provider.baseUrl is not a URL: ${o.baseUrl.slice(0, 100)}`,
        { hint: "e.g. http://127.0.0.1:11434/v1 for Ollama" },
      );
    }
    this.name = `${url.host}/${o.model}`;
    this.#o = { timeoutMs: 60_000, maxRetries: 3, retryBaseMs: 500, ...o, baseUrl: o.baseUrl.replace(/\/+$/, "") };
  }

  async *streamChat(
    messages: ChatMessage[],
    opts: { tools?: ToolSchema[]; signal: AbortSignal },
  ): AsyncIterable<ModelEvent> {
    const body = JSON.stringify({
      model: this.#o.model,
      messages,
      stream: true,
      ...(opts.tools?.length ? { tools: opts.tools } : {}),
    });
    const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
    if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;
    let res: Awaited<ReturnType<typeof request>> | undefined;
    for (let attempt = 0; ; attempt++) {
      let retryAfter: string | string[] | undefined;
      let why: string;
      try {
        const { Agent, request } = await undici();
        dispatcher ??= new Agent({ keepAliveTimeout: 10_000, connections: 16 });
        res = await request(`${this.#o.baseUrl}/chat/completions`, {
          method: "POST",
          headers,
          body,
          dispatcher,
          signal: opts.signal,
          headersTimeout: this.#o.timeoutMs,
          bodyTimeout: this.#o.timeoutMs,
        });
        if (res.statusCode === 200) break;
        const text = (await res.body.text().catch(() => "")).slice(0, 300);
        why = `HTTP ${res.statusCode}${text ? `: ${text.replace(/\s+/g, " ")}` : ""}`;
        retryAfter = res.headers["retry-after"];
        if (res.statusCode !== 429 && res.statusCode < 500) {
          throw new LoopgateError(
            ErrorCodes.PROVIDER_FAILED,
            `the model provider ${this.name} refused the request: ${why}`,
            {
              hint:
                res.statusCode === 401 || res.statusCode === 403
                  ? "check agent.provider.apiKey"
                  : res.statusCode === 404
                    ? "check agent.provider.baseUrl (it usually ends in /v1) and model"
                    : "check the provider's logs",
            },
          );
        }
      } catch (e) {
        if (e instanceof LoopgateError) throw e;
        if (opts.signal.aborted) throw e;
        why = e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
      }
      if (attempt >= this.#o.maxRetries) {
        throw new LoopgateError(
          ErrorCodes.PROVIDER_FAILED,
          `the model provider ${this.name} failed after ${attempt + 1} attempts: ${why}`,
          { hint: "is it running and reachable? retry later, or raise agent.provider.maxRetries" },
        );
      }
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, retryDelay(attempt, this.#o.retryBaseMs, retryAfter));
        opts.signal.addEventListener(
          "abort",
          () => (clearTimeout(t), reject(new DOMException("aborted", "AbortError"))),
          { once: true },
        );
      });
    }
    yield* this.#events(res.body, opts.signal);
  }

  async *#events(body: AsyncIterable<Buffer | Uint8Array>, signal: AbortSignal): AsyncIterable<ModelEvent> {
    const calls = new Map<number, { id: string; name: string; args: string }>();
    let finish = "stop";
    let buf = "";
    const dec = new TextDecoder();
    const flushCalls = function* (): Iterable<ModelEvent> {
      for (const [idx, c] of [...calls].sort((a, b) => a[0] - b[0]))
        yield { type: "tool_call", id: c.id || `call_${idx}`, name: c.name, argsJson: c.args || "{}" };
      calls.clear();
    };
    for await (const chunk of body) {
      if (signal.aborted) throw new DOMException("aborted", "AbortError");
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, "");
        buf = buf.slice(i + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") {
          yield* flushCalls();
          yield { type: "done", finishReason: finish };
          return;
        }
        let parsed: {
          choices?: {
            delta?: {
              content?: string | null;
              tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
            };
            finish_reason?: string | null;
          }[];
          error?: { message?: string };
        };
        try {
          parsed = JSON.parse(data);
        } catch {
          throw new LoopgateError(
            ErrorCodes.PROVIDER_FAILED,
            `the model provider ${this.name} sent a malformed stream event`,
            { hint: "is baseUrl an OpenAI-compatible /v1 endpoint?" },
          );
        }
        if (parsed.error)
          throw new LoopgateError(
            ErrorCodes.PROVIDER_FAILED,
            `the model provider ${this.name} reported: ${String(parsed.error.message ?? "error").slice(0, 300)}`,
          );
        const choice = parsed.choices?.[0];
        if (!choice) continue;
        if (choice.delta?.content) yield { type: "text", delta: choice.delta.content };
        for (const tc of choice.delta?.tool_calls ?? []) {
          const idx = tc.index ?? 0;
          const cur = calls.get(idx) ?? { id: "", name: "", args: "" };
          if (tc.id) cur.id = tc.id;
          if (tc.function?.name) cur.name += tc.function.name;
          if (tc.function?.arguments) cur.args += tc.function.arguments;
          calls.set(idx, cur);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    // Some servers end the stream without [DONE].
    yield* flushCalls();
    yield { type: "done", finishReason: finish };
  }
}
