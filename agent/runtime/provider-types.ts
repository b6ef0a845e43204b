/** One interface for model providers: a streamed chat completion with tool calls. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | {
      role: "assistant";
      content: string | null;
      tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[];
    }
  | { role: "tool"; tool_call_id: string; content: string };

export interface ToolSchema {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export type ModelEvent =
  | { type: "text"; delta: string }
  | { type: "tool_call"; id: string; name: string; argsJson: string }
  | { type: "done"; finishReason: string };

export interface ModelProvider {
  readonly name: string;
  streamChat(messages: ChatMessage[], opts: { tools?: ToolSchema[]; signal: AbortSignal }): AsyncIterable<ModelEvent>;
}
