/** What a session log holds, as the agent runtime and the gateway methods see it. */
export type EntryKind = "user" | "assistant" | "tool_call" | "tool_result" | "system" | "error";

export interface SessionEntry {
  seq: number;
  ts: number;
  kind: EntryKind;
  runId?: string;
  text?: string;
  tool?: string;
  callId?: string;
  args?: string;
  ok?: boolean;
  channel?: string;
  /** The turn ended before this entry was complete (abort, crash). */
  incomplete?: boolean;
}

export type NewEntry = Omit<SessionEntry, "seq" | "ts">;

export interface SessionSummary {
  key: string;
  createdAt: number;
  updatedAt: number;
  entries: number;
  lastText?: string;
}

export interface SessionLog {
  append(key: string, entry: NewEntry): SessionEntry;
  history(key: string, opts?: { limit?: number; afterSeq?: number }): SessionEntry[];
  list(opts?: { limit?: number; search?: string }): SessionSummary[];
  reset(key: string): boolean;
  remove(key: string): boolean;
}
