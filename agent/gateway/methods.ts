/**
 * The method registry: each gateway method names the scope it needs, an
 * optional params validator, and a handler. Later features register more.
 */
import type { ErrorShape } from "./protocol.ts";

export interface MethodContext {
  connId: string;
  scopes: readonly string[];
  role: string;
  /** The client address the gateway trusts for this connection (the real client for relayed ones). */
  clientAddr: string;
  relayed: boolean;
  /** Sends an event to this connection only. */
  emit(event: string, payload: unknown): void;
  /**
   * Records that this client names a session by a short alias (`main` for
   * `agent:main:main`): its events then carry the key as it wrote it.
   */
  aliasSessionKey?(requested: string, canonical: string): void;
  /** Sends an interim answer now (e.g. {status: "accepted"}); the handler's result follows as the final one. */
  interim(payload: unknown): void;
  signal: AbortSignal;
}

export class MethodError extends Error {
  readonly shape: ErrorShape;
  constructor(shape: ErrorShape) {
    super(shape.message);
    this.shape = shape;
  }
}

export interface MethodDef<P = unknown, R = unknown> {
  name: string;
  scope: string;
  /** Returns an error message for bad params, or undefined when they are fine. */
  validate?: (params: unknown) => string | undefined;
  handler: (params: P, ctx: MethodContext) => Promise<R> | R;
}

export class MethodRegistry {
  readonly #methods = new Map<string, MethodDef>();
  readonly #events = new Set<string>(["connect.challenge", "tick", "shutdown"]);
  readonly #capabilities = new Set<string>();

  register<P, R>(def: MethodDef<P, R>): void {
    if (this.#methods.has(def.name)) throw new Error(`method ${def.name} registered twice`);
    this.#methods.set(def.name, def as MethodDef);
  }

  registerEvent(name: string): void {
    this.#events.add(name);
  }

  /** A hello-ok `features.capabilities` entry (what OpenClaw clients check before relying on a feature). */
  registerCapability(name: string): void {
    this.#capabilities.add(name);
  }

  capabilityNames(): string[] {
    return [...this.#capabilities].sort();
  }

  get(name: string): MethodDef | undefined {
    return this.#methods.get(name);
  }

  methodNames(): string[] {
    return [...this.#methods.keys()].sort();
  }

  eventNames(): string[] {
    return [...this.#events].sort();
  }
}
