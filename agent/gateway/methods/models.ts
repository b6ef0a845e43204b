/**
 * The model catalog as OpenClaw clients read it: models.list (the configured
 * model, plus what an OpenAI-compatible server lists at GET /models, fetched
 * with a timeout and cached), models.authStatus, chat.metadata (models and
 * slash commands for the composer) and the live models.snapshot event.
 */
import type { MethodContext, MethodRegistry } from "../methods.ts";
import { Scopes } from "../scopes.ts";
import { obj, str } from "./agent.ts";
import type { AgentInfo } from "./agent-view.ts";

type Obj = Record<string, unknown>;

export const CATALOG_TIMEOUT_MS = 3000;
export const CATALOG_TTL_MS = 60_000;
/** A listing this large is cut off: a catalog is for a picker, not a dump. */
const MAX_MODELS = 500;

export interface CatalogResult {
  ids: string[];
  /** Why the provider's list could not be read (unreachable, refused, not JSON…). */
  error?: string;
}

/** Reads and caches GET <baseUrl>/models of an OpenAI-compatible server. */
export class ModelCatalog {
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;
  #cached: { at: number; result: CatalogResult } | undefined;
  #inflight: Promise<CatalogResult> | undefined;

  constructor(o: { baseUrl: string; apiKey?: string; fetchImpl?: typeof fetch }) {
    this.#baseUrl = o.baseUrl.replace(/\/+$/, "");
    this.#apiKey = o.apiKey;
    this.#fetch = o.fetchImpl ?? fetch;
  }

  async list(opts: { refresh?: boolean } = {}): Promise<CatalogResult> {
    if (!opts.refresh && this.#cached && Date.now() - this.#cached.at < CATALOG_TTL_MS) return this.#cached.result;
    this.#inflight ??= this.#load().finally(() => (this.#inflight = undefined));
    const result = await this.#inflight;
    this.#cached = { at: Date.now(), result };
    return result;
  }

  async #load(): Promise<CatalogResult> {
    try {
      const res = await this.#fetch(`${this.#baseUrl}/models`, {
        headers: { accept: "application/json", ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}) },
        signal: AbortSignal.timeout(CATALOG_TIMEOUT_MS),
        redirect: "error",
      });
      if (!res.ok) {
        await res.body?.cancel();
        return { ids: [], error: `GET /models answered HTTP ${res.status}` };
      }
      const body = (await res.json()) as { data?: unknown };
      const data = Array.isArray(body?.data) ? body.data : [];
      const ids = data
        .map((m) =>
          m !== null && typeof m === "object" && typeof (m as { id?: unknown }).id === "string"
            ? (m as { id: string }).id
            : undefined,
        )
        .filter((id): id is string => id !== undefined && id.length > 0 && id.length <= 256)
        .slice(0, MAX_MODELS);
      return { ids };
    } catch (e) {
      const why =
        e instanceof Error
          ? e.name === "TimeoutError"
            ? `no answer within ${CATALOG_TIMEOUT_MS} ms`
            : e.message
          : String(e);
      return { ids: [], error: `GET /models failed: ${why.slice(0, 200)}` };
    }
  }
}

function choice(info: AgentInfo, id: string, available: boolean): Obj {
  return { id, name: id, provider: info.model!.provider, available, supportsTools: true, input: ["text"] };
}

/** models.list: the configured model always; with any view but "configured", the provider's others too. */
export async function listModels(info: AgentInfo, catalog: ModelCatalog | undefined, p: Obj): Promise<Obj> {
  if (!info.model) return { models: [] };
  const view = str(p, "view", { max: 32 });
  if (view === "configured" || !catalog) return { models: [choice(info, info.model.id, true)] };
  const listed = await catalog.list({ refresh: p.refresh === true });
  const others = listed.ids.filter((id) => id !== info.model!.id);
  return {
    models: [choice(info, info.model.id, true), ...others.map((id) => choice(info, id, true))],
    providerOutcomes: [{ provider: info.model.provider, status: listed.error ? "unavailable" : "ready" }],
  };
}

export interface ModelDeps {
  info: AgentInfo;
  catalog: ModelCatalog | undefined;
  /** True when the provider is configured with an API key. */
  hasApiKey: boolean;
}

export function registerModelMethods(registry: MethodRegistry, deps: ModelDeps): void {
  const { info, catalog } = deps;
  registry.registerEvent("models.snapshot");

  registry.register({
    name: "models.list",
    scope: Scopes.READ,
    handler: (params) => listModels(info, catalog, obj(params)),
  });

  registry.register({
    name: "models.authStatus",
    scope: Scopes.READ,
    handler: () => ({
      ts: Date.now(),
      providers: info.model
        ? [
            {
              provider: info.model.provider,
              authProvider: info.model.provider,
              displayName: info.model.provider,
              status: deps.hasApiKey ? "static" : "ok",
              profiles: [],
            },
          ]
        : [],
      providerCapabilities: [],
    }),
  });

  registry.register({
    name: "chat.metadata",
    scope: Scopes.READ,
    handler: async () => ({ models: (await listModels(info, catalog, { view: "configured" })).models, commands: [] }),
  });
}

/** Sends `models.snapshot` to a new connection, as OpenClaw does after hello-ok for clients that list models. */
export async function sendModelsSnapshot(
  info: AgentInfo,
  catalog: ModelCatalog | undefined,
  emit: MethodContext["emit"],
): Promise<void> {
  const target = {};
  emit("models.snapshot", {
    target,
    scope: { agentId: "main" },
    catalog: await listModels(info, catalog, { view: "configured" }),
  });
}
