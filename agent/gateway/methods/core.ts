/** Core methods: health and status. */
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";
import { openclawStatusSummary } from "./status-summary.ts";

export interface CoreDeps {
  version: string;
  startedAt: number;
  connections: () => { total: number; ready: number };
  status: () => Record<string, unknown>;
  /** The agent's display name (OpenClaw clients show it in `status`). */
  agentName?: string;
}

const noParams = (params: unknown): string | undefined =>
  params === undefined || params === null || (typeof params === "object" && !Array.isArray(params))
    ? undefined
    : "params must be an object";

export function registerCoreMethods(registry: MethodRegistry, deps: CoreDeps): void {
  registry.register({
    name: "health",
    scope: Scopes.READ,
    validate: noParams,
    handler: () => {
      const t0 = performance.now();
      const now = Date.now();
      return {
        ok: true,
        ts: now,
        durationMs: Math.round(performance.now() - t0),
        uptimeMs: now - deps.startedAt,
        version: deps.version,
        connections: deps.connections(),
      };
    },
  });
  registry.register({
    name: "status",
    scope: Scopes.READ,
    validate: noParams,
    handler: (params: { includeCliProjection?: unknown } | undefined) => ({
      // OpenClaw's summary first: loopgate's own fields (and the agent's real `sessions`) follow and win.
      ...openclawStatusSummary({
        version: deps.version,
        agentName: deps.agentName ?? "main",
        includeCliProjection: params?.includeCliProjection === true,
      }),
      ok: true,
      ts: Date.now(),
      version: deps.version,
      uptimeMs: Date.now() - deps.startedAt,
      connections: deps.connections(),
      ...deps.status(),
    }),
  });
}
