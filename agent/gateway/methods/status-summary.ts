/**
 * The parts of OpenClaw's `status` result that OpenClaw's clients read
 * (`openclaw status --json` maps `sessions.byAgent`, reads `cliProjection`
 * when it asks for it, and renders the heartbeat, channel and task
 * summaries). loopgate has one agent, no heartbeat agents, no channels
 * beyond WebChat and no task registry, so those are the honest empty forms
 * OpenClaw itself reports on a fresh gateway; the sessions part is real and
 * comes from the agent's status section.
 */
export const DEFAULT_AGENT_ID = "main";

export interface SessionRow {
  key: string;
  updatedAt: number;
}

/** OpenClaw's `sessions` block of a status summary, from this gateway's sessions (most recent first). */
export function sessionsSummary(
  rows: readonly SessionRow[],
  total: number,
  defaults: { model: string | null; contextTokens: number | null },
  now = Date.now(),
) {
  const recent = rows
    .slice(0, 10)
    .map((r) => ({ key: r.key, updatedAt: r.updatedAt, age: Math.max(0, now - r.updatedAt) }));
  return {
    paths: [] as string[],
    count: total,
    defaults,
    recent,
    byAgent: [{ agentId: DEFAULT_AGENT_ID, path: null, count: total, recent }],
  };
}

const taskCounts = () => ({ queued: 0, running: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, lost: 0 });

/** The rest of OpenClaw's status summary: what a gateway with one agent, no heartbeats and no tasks reports. */
export function openclawStatusSummary(o: { version: string; agentName: string; includeCliProjection: boolean }) {
  return {
    runtimeVersion: o.version,
    heartbeat: { defaultAgentId: DEFAULT_AGENT_ID, agents: [] as unknown[] },
    channelSummary: [] as unknown[],
    queuedSystemEvents: [] as unknown[],
    degradedSecretOwners: [] as unknown[],
    degradedPlugins: [] as unknown[],
    tasks: {
      total: 0,
      active: 0,
      terminal: 0,
      failures: 0,
      byStatus: taskCounts(),
      byRuntime: { subagent: 0, acp: 0, cli: 0, cron: 0 },
    },
    taskAudit: {
      total: 0,
      warnings: 0,
      errors: 0,
      byCode: {
        stale_queued: 0,
        stale_running: 0,
        lost: 0,
        delivery_failed: 0,
        missing_cleanup: 0,
        inconsistent_timestamps: 0,
      },
    },
    ...(o.includeCliProjection
      ? {
          cliProjection: {
            agents: {
              defaultId: DEFAULT_AGENT_ID,
              ownership: null,
              selectionRequired: false,
              rows: [{ id: DEFAULT_AGENT_ID, name: o.agentName }],
            },
            updateChannel: null,
          },
        }
      : {}),
  };
}
