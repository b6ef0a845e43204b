/**
 * Sessions on disk: one append-only JSON-lines file per session under
 * `<state>/sessions/`, each entry written and fsync'd before the call
 * returns, so a crash mid-turn loses at most the line being written. On open,
 * a torn last line is cut off (and the file repaired). Summaries of every
 * session are kept in memory (built once at start by reading each file's
 * last line and size), so listing thousands of sessions is cheap.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { canonicalSessionKey, isCanonicalSessionKey } from "./keys.ts";
import type { NewEntry, SessionEntry, SessionLog, SessionSummary } from "./types.ts";

const KEY = /^[A-Za-z0-9][A-Za-z0-9:._@+-]{0,199}$/;

/**
 * Session keys become file names, so only a safe alphabet is accepted (no "/",
 * no "..", no leading dot). Returns the canonical key (`main` → `agent:main:main`).
 */
export function checkSessionKey(key: unknown): string {
  if (typeof key !== "string" || !KEY.test(key) || key.includes("..")) {
    throw new LoopgateError(ErrorCodes.SESSION_INVALID, "invalid session key", {
      hint: "use 1-200 characters from A-Z a-z 0-9 : . _ @ + -, e.g. main or agent:main:webchat",
    });
  }
  const canonical = canonicalSessionKey(key);
  if (!KEY.test(canonical))
    throw new LoopgateError(ErrorCodes.SESSION_INVALID, "session key too long", {
      hint: "use at most 189 characters after agent:main:",
    });
  return canonical;
}

function fileName(key: string): string {
  // ":" is legal on Linux but not everywhere; keep names portable.
  return `${key.replace(/:/g, "~")}.jsonl`;
}

function keyOf(file: string): string {
  return file.slice(0, -".jsonl".length).replace(/~/g, ":");
}

/** True for a canonical key of this gateway's agent. */
function isOurs(key: string): boolean {
  try {
    return canonicalSessionKey(key) === key;
  } catch {
    return false;
  }
}

/** What changed in the store, for live session events. */
export type SessionChange =
  | { type: "append"; key: string; entry: SessionEntry }
  | { type: "reset" | "remove"; key: string };

interface Meta extends SessionSummary {
  nextSeq: number;
}

export class SessionStore implements SessionLog {
  readonly dir: string;
  readonly #meta = new Map<string, Meta>();
  readonly #listeners = new Set<(c: SessionChange) => void>();

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#migrateShortKeys();
    for (const f of readdirSync(dir)) {
      if (!f.endsWith(".jsonl")) continue;
      const key = keyOf(f);
      if (!KEY.test(key) || !isOurs(key)) continue;
      const entries = this.#read(key, true);
      const st = statSync(join(dir, f));
      const last = entries[entries.length - 1];
      const lastText = [...entries].reverse().find((e) => e.text !== undefined)?.text;
      this.#meta.set(key, {
        key,
        createdAt: entries[0]?.ts ?? st.birthtimeMs,
        updatedAt: last?.ts ?? st.mtimeMs,
        entries: entries.length,
        nextSeq: (last?.seq ?? -1) + 1,
        ...(lastText !== undefined ? { lastText: lastText.slice(0, 200) } : {}),
      });
    }
  }

  /**
   * Files stored under a short key (before keys were canonical) move to the
   * canonical name; when both exist, their entries are merged by time.
   */
  #migrateShortKeys(): void {
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".jsonl")) continue;
      const key = keyOf(f);
      if (!KEY.test(key) || isCanonicalSessionKey(key)) continue;
      let canonical: string;
      try {
        canonical = canonicalSessionKey(key);
      } catch {
        continue; // another agent's key: leave the file alone
      }
      const from = join(this.dir, f);
      const to = this.#path(canonical);
      if (!existsSync(to)) {
        renameSync(from, to);
        continue;
      }
      const merged = [...this.#read(canonical, true), ...this.#read(key, true)]
        .sort((a, b) => a.ts - b.ts || a.seq - b.seq)
        .map((e, i) => ({ ...e, seq: i }));
      const tmp = `${to}.migrating`;
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeSync(fd, merged.map((e) => JSON.stringify(e) + "\n").join(""));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, to);
      unlinkSync(from);
    }
  }

  /** Calls `fn` after every append, reset and removal; returns the unsubscribe function. */
  onChange(fn: (c: SessionChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #changed(c: SessionChange): void {
    for (const fn of this.#listeners) {
      try {
        fn(c);
      } catch {
        // a listener never breaks the store
      }
    }
  }

  #path(key: string): string {
    return join(this.dir, fileName(key));
  }

  /** Reads a session; with `repair`, a torn last line is cut from the file. */
  #read(key: string, repair = false): SessionEntry[] {
    const path = this.#path(key);
    if (!existsSync(path)) return [];
    const raw = readFileSync(path, "utf8");
    const out: SessionEntry[] = [];
    let good = 0;
    let offset = 0;
    for (const line of raw.split("\n")) {
      const end = offset + Buffer.byteLength(line) + 1;
      if (line.trim() !== "") {
        try {
          out.push(JSON.parse(line) as SessionEntry);
          good = Math.min(end, Buffer.byteLength(raw));
        } catch {
          // A torn write can only be the last line; anything after it is dropped too.
          break;
        }
      }
      offset = end;
    }
    if (repair && good < Buffer.byteLength(raw)) truncateSync(path, good);
    return out;
  }

  append(rawKey: string, entry: NewEntry): SessionEntry {
    const key = checkSessionKey(rawKey);
    let meta = this.#meta.get(key);
    const now = Date.now();
    if (!meta) {
      meta = { key, createdAt: now, updatedAt: now, entries: 0, nextSeq: 0 };
      this.#meta.set(key, meta);
    }
    const full: SessionEntry = { seq: meta.nextSeq, ts: now, ...entry };
    const fd = openSync(this.#path(key), "a", 0o600);
    try {
      writeSync(fd, JSON.stringify(full) + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    meta.nextSeq++;
    meta.entries++;
    meta.updatedAt = now;
    if (entry.text !== undefined) meta.lastText = entry.text.slice(0, 200);
    this.#changed({ type: "append", key, entry: full });
    return full;
  }

  history(rawKey: string, opts: { limit?: number; afterSeq?: number } = {}): SessionEntry[] {
    const key = checkSessionKey(rawKey);
    let entries = this.#read(key);
    if (opts.afterSeq !== undefined) entries = entries.filter((e) => e.seq > opts.afterSeq!);
    const limit = opts.limit ?? 200;
    return entries.slice(-limit);
  }

  list(opts: { limit?: number; search?: string } = {}): SessionSummary[] {
    const q = opts.search?.toLowerCase();
    const all = [...this.#meta.values()].filter(
      (m) => !q || m.key.toLowerCase().includes(q) || (m.lastText ?? "").toLowerCase().includes(q),
    );
    all.sort((a, b) => b.updatedAt - a.updatedAt);
    return all.slice(0, opts.limit ?? 100).map(({ nextSeq: _n, ...s }) => s);
  }

  has(key: string): boolean {
    return this.#meta.has(checkSessionKey(key));
  }

  /** The summary of one session, if it exists. */
  get(key: string): SessionSummary | undefined {
    const m = this.#meta.get(checkSessionKey(key));
    if (!m) return undefined;
    const { nextSeq: _n, ...s } = m;
    return s;
  }

  /** Clears a session's history (the session stays, empty). */
  reset(rawKey: string): boolean {
    const key = checkSessionKey(rawKey);
    const meta = this.#meta.get(key);
    if (!meta) return false;
    truncateSync(this.#path(key), 0);
    meta.entries = 0;
    meta.updatedAt = Date.now();
    delete meta.lastText;
    this.#changed({ type: "reset", key });
    return true;
  }

  remove(rawKey: string): boolean {
    const key = checkSessionKey(rawKey);
    if (!this.#meta.delete(key)) return false;
    try {
      unlinkSync(this.#path(key));
    } catch {
      // already gone
    }
    this.#changed({ type: "remove", key });
    return true;
  }

  /**
   * After a crash: turns whose user message has no final entry are marked
   * incomplete, so a reader sees the turn ended without an answer.
   */
  markInterruptedTurns(): number {
    let n = 0;
    for (const key of this.#meta.keys()) {
      const entries = this.#read(key);
      const lastUser = [...entries].reverse().find((e) => e.kind === "user");
      if (!lastUser?.runId) continue;
      const ended = entries.some(
        (e) =>
          e.runId === lastUser.runId &&
          e.seq > lastUser.seq &&
          ((e.kind === "assistant" && !e.incomplete) || e.kind === "error" || e.kind === "system"),
      );
      if (ended) continue;
      this.append(key, {
        kind: "system",
        runId: lastUser.runId,
        text: "turn incomplete: the gateway stopped during this turn",
        incomplete: true,
      });
      n++;
    }
    return n;
  }
}
