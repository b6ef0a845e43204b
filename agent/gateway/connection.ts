/**
 * One client WebSocket on the gateway: the v4 handshake (challenge, connect,
 * hello-ok), then request dispatch with scope checks, then close. Limits:
 * 64 KiB frames before auth, policy.maxPayload after (oversize closes 1009),
 * a connect deadline, and a buffered-bytes ceiling for slow readers.
 */
import { randomUUID, randomBytes } from "node:crypto";
import type { Logger } from "../log/logger.ts";
import type { GatewayAuth } from "./auth.ts";
import type { PeerInfo } from "./peer.ts";
import type { MethodRegistry, MethodContext } from "./methods.ts";
import { MethodError } from "./methods.ts";
import {
  CloseCodes,
  GatewayErrorCodes,
  ConnectErrorDetails,
  PROTOCOL_VERSION,
  parseClientFrame,
  checkConnectParams,
  negotiateProtocol,
  resOk,
  resErr,
  eventFrame,
  missingScopeError,
  type ErrorShape,
} from "./protocol.ts";
import { grantScopes, hasScope } from "./scopes.ts";
import type { ClientSocket, InboundMessage } from "./client-socket.ts";
import { sendableClose } from "../../shared/close.ts";

export const CONNECT_TIMEOUT_MS = 10_000;

export interface ConnectionEnv {
  registry: MethodRegistry;
  auth: GatewayAuth;
  log: Logger;
  limits: { maxPayload: number; maxBufferedBytes: number; tickIntervalMs: number; preAuthMaxPayload: number };
  helloSnapshot: () => Record<string, unknown>;
  serverInfo: { version: string; bootId: string };
  onReady?: (c: GatewayConnection) => void;
  onClose?: (c: GatewayConnection) => void;
}

type State = "challenge" | "authenticating" | "ready" | "closed";

export class GatewayConnection {
  readonly id = randomUUID();
  readonly peer: PeerInfo;
  readonly connectedAt = Date.now();
  #socket: ClientSocket;
  #env: ConnectionEnv;
  #state: State = "challenge";
  #nonce = randomBytes(16).toString("base64url");
  #scopes: string[] = [];
  #role = "operator";
  #clientInfo: { id: string; mode: string; version: string; caps: readonly string[] } | undefined;
  #authMethod: string | undefined;
  #tokenId: string | undefined;
  #seq = 0;
  /** canonical session key → the alias this client used for it (events echo the client's form). */
  #keyAliases = new Map<string, string>();
  #connectTimer: NodeJS.Timeout | undefined;
  #abort = new AbortController();
  #maxPayloadEnforcedByParser: boolean;

  /** `socket` is the client's transport: a WebSocket, or a stream of the gateway's own relay link. */
  constructor(socket: ClientSocket, peer: PeerInfo, env: ConnectionEnv) {
    this.#socket = socket;
    this.peer = peer;
    this.#env = env;
    this.#maxPayloadEnforcedByParser = socket.limitMessageBytes(env.limits.preAuthMaxPayload);
    socket.onmessage = (m) => this.#onMessage(m);
    socket.onclose = () => this.#onClosed();
    socket.onerror = (err) => this.#env.log.debug("client socket error", { conn: this.id, err: err.message });
    this.#connectTimer = setTimeout(
      () => this.close(CloseCodes.POLICY_VIOLATION, "connect timeout: send connect within 10s"),
      CONNECT_TIMEOUT_MS,
    );
    this.#connectTimer.unref();
    this.#send(
      eventFrame("connect.challenge", {
        nonce: this.#nonce,
        ts: Date.now(),
        capabilities: env.registry.capabilityNames(),
      }),
    );
  }

  get ready(): boolean {
    return this.#state === "ready";
  }
  get scopes(): readonly string[] {
    return this.#scopes;
  }
  get client(): { id: string; mode: string; version: string; caps: readonly string[] } | undefined {
    return this.#clientInfo;
  }
  get authMethod(): string | undefined {
    return this.#authMethod;
  }
  /** The id of the host-minted client token this connection authenticated with, if any. */
  get tokenId(): string | undefined {
    return this.#tokenId;
  }
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  /** Sends an event; droppable events are skipped for a slow reader, others close it past the ceiling. */
  sendEvent(event: string, payload: unknown, opts: { droppable?: boolean } = {}): void {
    if (this.#state !== "ready") return;
    if (this.#socket.bufferedAmount > this.#env.limits.maxBufferedBytes) {
      if (opts.droppable) return;
      this.close(CloseCodes.POLICY_VIOLATION, "slow consumer: buffered bytes over policy.maxBufferedBytes");
      return;
    }
    this.#send(eventFrame(event, this.#aliased(payload), ++this.#seq));
  }

  #aliased(payload: unknown): unknown {
    if (this.#keyAliases.size === 0 || payload === null || typeof payload !== "object") return payload;
    const key = (payload as { sessionKey?: unknown }).sessionKey;
    const alias = typeof key === "string" ? this.#keyAliases.get(key) : undefined;
    return alias === undefined ? payload : { ...payload, sessionKey: alias };
  }

  close(code: number, reason: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#connectTimer);
    this.#abort.abort();
    try {
      const c = sendableClose(code, reason);
      this.#socket.close(c.code, c.reason);
    } catch {
      this.#socket.terminate();
    }
    // A peer that never answers the close handshake is cut off.
    setTimeout(() => this.#socket.terminate(), 2000).unref();
  }

  #send(text: string): void {
    if (this.#socket.open) this.#socket.send(text);
  }

  #onClosed(): void {
    if (this.#state !== "closed") {
      this.#state = "closed";
      clearTimeout(this.#connectTimer);
      this.#abort.abort();
    }
    this.#env.onClose?.(this);
  }

  #onMessage(m: InboundMessage): void {
    if (this.#state === "closed") return;
    if (m.binary) {
      this.close(1003, "binary frames are not supported: send JSON text frames");
      return;
    }
    const size = m.bytes;
    const limit = this.#state === "ready" ? this.#env.limits.maxPayload : this.#env.limits.preAuthMaxPayload;
    if (!this.#maxPayloadEnforcedByParser && size > limit) {
      this.close(CloseCodes.TOO_BIG, `frame of ${size} bytes exceeds the ${limit}-byte limit`);
      return;
    }
    const parsed = parseClientFrame(m.text());
    if (this.#state === "challenge") {
      if (!parsed.ok) {
        if (parsed.id !== undefined) this.#send(resErr(parsed.id, parsed.error));
        this.close(CloseCodes.POLICY_VIOLATION, `first frame must be a valid connect request: ${parsed.error.message}`);
        return;
      }
      void this.#handleConnect(parsed.frame.id, parsed.frame.method, parsed.frame.params);
      return;
    }
    if (this.#state === "authenticating") {
      // Nothing may overtake the handshake.
      this.close(CloseCodes.POLICY_VIOLATION, "wait for hello-ok before sending requests");
      return;
    }
    if (!parsed.ok) {
      if (parsed.id !== undefined) this.#send(resErr(parsed.id, parsed.error));
      else this.close(CloseCodes.PROTOCOL_ERROR, parsed.error.message);
      return;
    }
    void this.#dispatch(parsed.frame.id, parsed.frame.method, parsed.frame.params);
  }

  #fail(id: string, error: ErrorShape, closeCode: number, reason: string): void {
    this.#send(resErr(id, error));
    this.close(closeCode, reason);
  }

  async #handleConnect(id: string, method: string, params: unknown): Promise<void> {
    if (method !== "connect") {
      this.#fail(
        id,
        {
          code: GatewayErrorCodes.INVALID_REQUEST,
          message: `the first request must be connect, not ${method.slice(0, 64)}`,
        },
        CloseCodes.POLICY_VIOLATION,
        "first request must be connect",
      );
      return;
    }
    this.#state = "authenticating";
    const checked = checkConnectParams(params);
    if (!checked.ok) {
      this.#fail(
        id,
        { code: GatewayErrorCodes.INVALID_REQUEST, message: checked.message },
        CloseCodes.POLICY_VIOLATION,
        "invalid connect params",
      );
      return;
    }
    const p = checked.params;
    const protocol = negotiateProtocol(p);
    if (protocol === undefined) {
      this.#fail(
        id,
        {
          code: GatewayErrorCodes.INVALID_REQUEST,
          message: `protocol mismatch: client speaks ${p.minProtocol}-${p.maxProtocol}, gateway speaks ${PROTOCOL_VERSION}`,
          details: { code: ConnectErrorDetails.PROTOCOL_MISMATCH, expectedProtocol: PROTOCOL_VERSION },
        },
        CloseCodes.PROTOCOL_ERROR,
        "protocol mismatch",
      );
      return;
    }
    const result = await this.#env.auth.verify(p.auth, this.peer);
    if ((this.#state as State) === "closed") return;
    if (!result.ok) {
      this.#env.log.warn("auth refused", {
        conn: this.id,
        client: this.peer.clientAddr,
        forwarded: this.peer.forwarded,
        detail: result.detail,
      });
      this.#fail(
        id,
        {
          code: GatewayErrorCodes.INVALID_REQUEST,
          message: result.message,
          details: { code: result.detail },
          ...(result.retryAfterMs !== undefined ? { retryable: true, retryAfterMs: result.retryAfterMs } : {}),
        },
        result.rateLimited ? CloseCodes.TRY_AGAIN_LATER : CloseCodes.POLICY_VIOLATION,
        result.rateLimited ? "rate limited" : "unauthorized",
      );
      return;
    }
    clearTimeout(this.#connectTimer);
    this.#role = p.role ?? result.role;
    this.#scopes = grantScopes(p.scopes, result.allowedScopes);
    this.#clientInfo = { id: p.client.id, mode: p.client.mode, version: p.client.version, caps: p.caps ?? [] };
    this.#authMethod = result.method;
    this.#tokenId = result.tokenId;
    if (!this.#socket.limitMessageBytes(this.#env.limits.maxPayload)) this.#maxPayloadEnforcedByParser = false;
    const hello = {
      type: "hello-ok",
      protocol,
      server: { version: this.#env.serverInfo.version, connId: this.id, bootId: this.#env.serverInfo.bootId },
      features: {
        methods: this.#env.registry.methodNames(),
        events: this.#env.registry.eventNames(),
        capabilities: this.#env.registry.capabilityNames(),
      },
      snapshot: this.#env.helloSnapshot(),
      auth: { role: this.#role, scopes: this.#scopes },
      policy: {
        maxPayload: this.#env.limits.maxPayload,
        maxBufferedBytes: this.#env.limits.maxBufferedBytes,
        tickIntervalMs: this.#env.limits.tickIntervalMs,
      },
    };
    this.#state = "ready";
    this.#send(resOk(id, hello));
    this.#env.log.info("client connected", {
      conn: this.id,
      client: this.peer.clientAddr,
      forwarded: this.peer.forwarded,
      authMethod: result.method,
      clientId: p.client.id,
      mode: p.client.mode,
    });
    this.#env.onReady?.(this);
  }

  async #dispatch(id: string, method: string, params: unknown): Promise<void> {
    if (method === "connect") {
      this.#send(resErr(id, { code: GatewayErrorCodes.INVALID_REQUEST, message: "already connected" }));
      return;
    }
    const def = this.#env.registry.get(method);
    if (!def) {
      this.#send(
        resErr(id, { code: GatewayErrorCodes.INVALID_REQUEST, message: `unknown method: ${method.slice(0, 128)}` }),
      );
      return;
    }
    if (!hasScope(this.#scopes, def.scope)) {
      this.#send(resErr(id, missingScopeError(def.scope, [def.scope])));
      return;
    }
    const bad = def.validate?.(params);
    if (bad !== undefined) {
      this.#send(resErr(id, { code: GatewayErrorCodes.INVALID_REQUEST, message: `invalid ${method} params: ${bad}` }));
      return;
    }
    const ctx: MethodContext = {
      connId: this.id,
      scopes: this.#scopes,
      role: this.#role,
      clientAddr: this.peer.clientAddr,
      relayed: this.peer.forwarded,
      emit: (event, payload) => this.sendEvent(event, payload),
      aliasSessionKey: (requested, canonical) => {
        // The form the client used last wins; at most 64 aliases per connection.
        if (requested === canonical) this.#keyAliases.delete(canonical);
        else if (this.#keyAliases.has(canonical) || this.#keyAliases.size < 64)
          this.#keyAliases.set(canonical, requested);
      },
      interim: (payload) => this.#send(resOk(id, payload ?? {})),
      signal: this.#abort.signal,
    };
    try {
      const payload = await def.handler(params, ctx);
      this.#send(resOk(id, payload ?? {}));
    } catch (e) {
      if (e instanceof MethodError) this.#send(resErr(id, e.shape));
      else {
        this.#env.log.error("method failed", {
          conn: this.id,
          method,
          err: e instanceof Error ? e.message : String(e),
        });
        this.#send(resErr(id, { code: GatewayErrorCodes.UNAVAILABLE, message: `${method} failed: internal error` }));
      }
    }
  }
}
