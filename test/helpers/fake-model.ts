/**
 * A fake OpenAI-compatible chat-completions server on 127.0.0.1 that streams
 * (SSE), for agent tests. Behaviour follows the last user message:
 * - "use tool NAME ARGSJSON": first answer is that tool call; after the tool
 *   result it answers "tool said: <result>";
 * - "stall": streams "partial" and then never finishes (for crash and abort tests);
 * - "say TEXT": streams TEXT verbatim in three pieces (Markdown, hostile replies);
 * - anything else: streams "Hello", ", ", "world".
 * `failNext(n, status)` makes the next n requests fail with that status.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface FakeModel {
  baseUrl: string;
  requests: {
    messages: { role: string; content: string | null }[];
    tools?: { function: { name: string } }[];
    authorization?: string;
  }[];
  failNext(n: number, status: number, retryAfter?: string): void;
  close(): Promise<void>;
}

function sse(res: ServerResponse, obj: unknown): void {
  res.write(`data: ${JSON.stringify(obj)}\n\n`);
}

export async function startFakeModel(): Promise<FakeModel> {
  const requests: FakeModel["requests"] = [];
  let failures: { n: number; status: number; retryAfter?: string } = { n: 0, status: 500 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url !== "/v1/chat/completions") {
        res.writeHead(404).end("no such endpoint");
        return;
      }
      const parsed = JSON.parse(body) as FakeModel["requests"][number];
      requests.push({
        messages: parsed.messages,
        ...(parsed.tools ? { tools: parsed.tools } : {}),
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      });
      if (failures.n > 0) {
        failures.n--;
        res.writeHead(failures.status, failures.retryAfter ? { "retry-after": failures.retryAfter } : {}).end("busy");
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const msgs = parsed.messages;
      const last = msgs[msgs.length - 1]!;
      const lastUser = [...msgs].reverse().find((m) => m.role === "user")?.content ?? "";
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        sse(res, { choices: [{ index: 0, delta, finish_reason: finish }] });
      if (last.role === "tool") {
        chunk({ content: `tool said: ${String(last.content).slice(0, 200)}` });
        chunk({}, "stop");
        res.end("data: [DONE]\n\n");
        return;
      }
      const m = /^use tool (\S+) (.*)$/.exec(lastUser);
      if (m) {
        // Arguments arrive in two pieces, as real servers send them.
        const args = m[2]!;
        chunk({
          tool_calls: [
            { index: 0, id: "call_1", type: "function", function: { name: m[1], arguments: args.slice(0, 3) } },
          ],
        });
        chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(3) } }] });
        chunk({}, "tool_calls");
        res.end("data: [DONE]\n\n");
        return;
      }
      const say = /^say ([\s\S]+)$/.exec(lastUser);
      if (say) {
        const t = say[1]!;
        const third = Math.ceil(t.length / 3);
        for (let i = 0; i < t.length; i += third) chunk({ content: t.slice(i, i + third) });
        chunk({}, "stop");
        res.end("data: [DONE]\n\n");
        return;
      }
      if (lastUser === "stall") {
        chunk({ content: "partial" });
        return; // never ends
      }
      for (const piece of ["Hello", ", ", "world"]) chunk({ content: piece });
      chunk({}, "stop");
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext: (n, status, retryAfter) => {
      failures = { n, status, ...(retryAfter !== undefined ? { retryAfter } : {}) };
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
