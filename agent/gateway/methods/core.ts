/** Core methods: health and status. */
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";

export interface CoreDeps {
  version: string;
  startedAt: number;
  connections: () => { total: number; ready: number };
  status: () => Record<string, unknown>;
}

const noParams = (params: unknown): string | undefined =>
  params === undefined || params === null || (typeof params === "object" && !Array.isArray(params)) ? undefined : "params must be an object";

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
    handler: () => ({
      ok: true,
      ts: Date.now(),
      version: deps.version,
      uptimeMs: Date.now() - deps.startedAt,
      connections: deps.connections(),
      ...deps.status(),
    }),
  });
}
