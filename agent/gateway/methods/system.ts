/**
 * Gateway-level methods OpenClaw's CLI and UIs call, answered for real where
 * loopgate has the thing: system-presence (this gateway and its connected
 * clients), logs.tail (the gateway's own log), channels.status (WebChat only),
 * diagnostics.stability, doctor.memory.status, update.status (no updater),
 * last-heartbeat, usage.status. Scopes are the ones OpenClaw documents.
 */
import { hostname, platform, release } from "node:os";
import type { LogRing } from "../../log/ring.ts";
import type { MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";
import { int, obj } from "./agent.ts";

type Obj = Record<string, unknown>;

/** One connected client as system-presence shows it. */
export interface PresenceClient {
  connId: string;
  clientId: string;
  mode: string;
  version: string;
  scopes: readonly string[];
  connectedAt: number;
  relayed: boolean;
}

export interface SystemDeps {
  version: string;
  instanceId: string;
  startedAt: number;
  clients: () => PresenceClient[];
  log: LogRing;
}

/** PresenceEntry rows: the gateway itself, then each connected client. */
export function presenceEntries(deps: SystemDeps): Obj[] {
  const now = Date.now();
  const host = hostname();
  const self = {
    host,
    version: deps.version,
    platform: `${platform()} ${release()}`,
    mode: "gateway",
    reason: "self",
    instanceId: deps.instanceId,
    text: `Gateway: ${host} · loopgate ${deps.version} · mode gateway`,
    ts: now,
    onlineSince: deps.startedAt,
  };
  const clients = deps.clients().map((c) => ({
    host: c.relayed ? "relayed client" : "local client",
    version: c.version,
    mode: c.mode,
    reason: "connect",
    instanceId: c.connId,
    roles: ["operator"],
    scopes: [...c.scopes],
    text: `${c.clientId} ${c.version} · mode ${c.mode}${c.relayed ? " · via relay" : ""}`,
    ts: now,
    onlineSince: c.connectedAt,
  }));
  return [self, ...clients];
}

export function registerSystemMethods(registry: MethodRegistry, deps: SystemDeps): void {
  registry.registerEvent("presence");
  registry.registerEvent("health");

  registry.register({ name: "system-presence", scope: Scopes.READ, handler: () => presenceEntries(deps) });

  registry.register({
    name: "logs.tail",
    scope: Scopes.READ,
    handler: (params) => {
      const p = obj(params);
      const cursor = int(p, "cursor", 0, Number.MAX_SAFE_INTEGER);
      const limit = int(p, "limit", 1, 5000);
      const maxBytes = int(p, "maxBytes", 1, 1_000_000);
      return deps.log.tail({
        ...(cursor !== undefined ? { cursor } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(maxBytes !== undefined ? { maxBytes } : {}),
      });
    },
  });

  registry.register({
    name: "channels.status",
    scope: Scopes.READ,
    handler: () => ({
      ts: Date.now(),
      channelOrder: [],
      channelLabels: {},
      channelDetailLabels: {},
      channelSystemImages: {},
      channelMeta: [],
      channels: {},
      channelAccounts: {},
      channelDefaultAccountId: {},
    }),
  });

  registry.register({
    name: "diagnostics.stability",
    scope: Scopes.READ,
    handler: () => ({ generatedAt: new Date().toISOString(), capacity: 0, count: 0, dropped: 0, events: [] }),
  });

  registry.register({
    name: "doctor.memory.status",
    scope: Scopes.READ,
    handler: () => ({
      agentId: "main",
      embedding: { ok: false, checked: false, error: "loopgate has no memory store; nothing to check" },
      dreaming: { enabled: false },
    }),
  });

  registry.register({
    name: "update.status",
    scope: Scopes.ADMIN,
    handler: () => ({ sentinel: null, updateAvailable: null }),
  });

  registry.register({ name: "last-heartbeat", scope: Scopes.READ, handler: () => null });

  registry.register({
    name: "usage.status",
    scope: Scopes.READ,
    handler: () => ({ updatedAt: Date.now(), providers: [] }),
  });
}
