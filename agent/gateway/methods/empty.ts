/**
 * Methods for features loopgate does not have, answered with the honest
 * empty form the published schemas allow (no approvals pending, no questions,
 * no cron jobs, no paired devices, no progress card) rather than "unknown
 * method", so OpenClaw's clients render an empty pane instead of an error.
 * Scopes are the ones OpenClaw documents.
 */
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";
import { obj, paging } from "./agent.ts";

/** The revision of an inventory that is always empty. */
const EMPTY_REVISION = "sha256:empty";

/** OpenClaw's scope for question.list (admin implies it). */
export const QUESTIONS_SCOPE = "operator.questions";

export function registerEmptyMethods(registry: MethodRegistry): void {
  const empty: [string, string, () => unknown][] = [
    ["exec.approval.list", Scopes.APPROVALS, () => []],
    ["plugin.approval.list", Scopes.APPROVALS, () => []],
    ["openclaw.approval.list", Scopes.APPROVALS, () => []],
    ["question.list", QUESTIONS_SCOPE, () => ({ questions: [] })],
    ["progressCard.get", Scopes.READ, () => ({ card: null })],
    ["cron.status", Scopes.READ, () => ({ enabled: false, triggersEnabled: false, jobs: 0, nextWakeAtMs: null })],
    ["device.pair.list", Scopes.PAIRING, () => ({ pending: [], paired: [] })],
    ["node.list", Scopes.READ, () => ({ ts: Date.now(), nodes: [] })],
    ["commands.list", Scopes.READ, () => ({ commands: [] })],
    ["tasks.list", Scopes.READ, () => ({ tasks: [] })],
    ["sessions.branches.list", Scopes.READ, () => ({ branches: [] })],
    ["sessions.companion.state", Scopes.READ, () => ({ exchanges: [] })],
    [
      "talk.catalog",
      Scopes.READ,
      () => ({
        modes: [],
        transports: [],
        brains: [],
        speech: { ready: false, providers: [] },
        transcription: { ready: false, providers: [] },
        realtime: { ready: false, providers: [] },
      }),
    ],
  ];
  for (const [name, scope, answer] of empty) registry.register({ name, scope, handler: answer });
  registry.register({
    name: "cron.list",
    scope: Scopes.READ,
    handler: (params) => {
      const { limit, offset } = paging(obj(params), 50, 1000);
      return { jobs: [], snapshotRevision: EMPTY_REVISION, total: 0, offset, limit, hasMore: false, nextOffset: null };
    },
  });
}
