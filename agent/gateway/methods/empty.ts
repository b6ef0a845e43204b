/**
 * Methods for features loopgate does not have, answered with the honest
 * empty form the published schemas allow (no approvals pending, no questions,
 * no cron jobs, no paired devices, no progress card) rather than "unknown
 * method", so OpenClaw's clients render an empty pane instead of an error.
 * Scopes are the ones OpenClaw documents.
 */
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";

/** OpenClaw's scope for question.list (admin implies it). */
export const QUESTIONS_SCOPE = "operator.questions";

export function registerEmptyMethods(registry: MethodRegistry): void {
  const empty: [string, string, () => unknown][] = [
    ["exec.approval.list", Scopes.APPROVALS, () => []],
    ["plugin.approval.list", Scopes.APPROVALS, () => []],
    ["openclaw.approval.list", Scopes.APPROVALS, () => []],
    ["question.list", QUESTIONS_SCOPE, () => ({ questions: [] })],
    ["progressCard.get", Scopes.READ, () => ({ card: null })],
    ["cron.list", Scopes.READ, () => ({ jobs: [], total: 0, offset: 0, limit: 0, hasMore: false, nextOffset: null })],
    ["cron.status", Scopes.READ, () => ({ enabled: false, triggersEnabled: false, jobs: 0, nextWakeAtMs: null })],
    ["device.pair.list", Scopes.PAIRING, () => ({ pending: [], paired: [] })],
    ["node.list", Scopes.READ, () => ({ ts: Date.now(), nodes: [] })],
    ["commands.list", Scopes.READ, () => ({ commands: [] })],
  ];
  for (const [name, scope, answer] of empty) registry.register({ name, scope, handler: answer });
}
