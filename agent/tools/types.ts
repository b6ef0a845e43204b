/** The runtime's view of the built-in tools (policy is applied inside). */
import type { ToolSchema } from "../runtime/provider-types.ts";

export interface ToolResult {
  ok: boolean;
  output: string;
  truncated?: boolean;
  durationMs?: number;
}

export interface ToolRunner {
  schemas(): ToolSchema[];
  execute(name: string, argsJson: string, ctx: { signal: AbortSignal; sessionKey: string }): Promise<ToolResult>;
}
