/**
 * A protocol v4 client for any OpenClaw-protocol gateway (ours, a real
 * OpenClaw gateway, or either through an ssh -L tunnel or the relay).
 * URL safety is checked before dialing; TLS pins are checked before a byte of
 * HTTP is written (agent/tls/pinned-connect.ts); credentials go only in
 * `connect`, and to the relay as the upgrade's bearer header when asked.
 */
import { randomUUID } from "node:crypto";
import { lookup } from "node:dns/promises";
import type { WebSocket } from "ws";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { parseGatewayUrl, checkUrlSafety, classifyIp, type AddressClass } from "../../shared/url-safety.ts";
import { openWebSocket } from "../tls/pinned-connect.ts";
import { VERSION } from "../version.ts";

export const CLIENT_PROTOCOL = { min: 4, max: 4 } as const;

export interface ClientOptions {
  url: string;
  token?: string | undefined;
  password?: string | undefined;
  pins?: string[] | undefined;
  timeoutMs?: number | undefined;
  /** Send the token to the relay as `Authorization: Bearer` on the upgrade (wss:// only). */
  bearerOnUpgrade?: boolean | undefined;
  clientId?: string;
  clientMode?: string;
  scopes?: string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Resolve host names for the ws:// safety rule (tests may stub). */
  resolveHost?: (host: string) => Promise<AddressClass[]>;
}

export interface HelloOk {
  type: "hello-ok";
  protocol: number;
  server: { version: string; connId: string };
  features: { methods: string[]; events: string[] };
  snapshot: Record<string, unknown>;
  auth: { role: string; scopes: string[] };
  policy: { maxPayload: number; maxBufferedBytes: number; tickIntervalMs: number };
}

interface ResFrame {
  type: "res";
  id: string;
  ok: boolean;
  payload?: unknown;
  error?: {
    code: string;
    message: string;
    details?: { code?: string } & Record<string, unknown>;
    retryable?: boolean;
    retryAfterMs?: number;
  };
}

export interface EventFrame {
  type: "event";
  event: string;
  payload?: unknown;
  seq?: number;
}

async function resolveClasses(host: string): Promise<AddressClass[]> {
  try {
    const addrs = await lookup(host, { all: true });
    return addrs.map((a) => classifyIp(a.address) ?? "public");
  } catch {
    return [];
  }
}

function gatewayError(err: NonNullable<ResFrame["error"]>, during: string): LoopgateError {
  const detail = err.details?.code;
  if (detail === "PROTOCOL_MISMATCH")
    return new LoopgateError(ErrorCodes.PROTOCOL_MISMATCH, `${during}: ${err.message}`, {
      hint: "upgrade loopgate or the gateway so both speak protocol 4",
    });
  if (typeof detail === "string" && detail.startsWith("AUTH_")) {
    return new LoopgateError(ErrorCodes.AUTH_REFUSED, `${during}: ${err.message}`, {
      hint:
        detail === "AUTH_RATE_LIMITED"
          ? "wait and retry"
          : "check --token/--password or the configured credentials (loopgate status --deep shows which source was used)",
      details: { gatewayCode: err.code, detail },
    });
  }
  return new LoopgateError(ErrorCodes.REQUEST_FAILED, `${during}: ${err.code}: ${err.message}`, {
    details: {
      gatewayCode: err.code,
      ...(detail ? { detail } : {}),
      ...(err.retryable !== undefined ? { retryable: err.retryable } : {}),
    },
  });
}

export class GatewayClient {
  readonly ws: WebSocket;
  readonly hello: HelloOk;
  readonly connectMs: number;
  #pending = new Map<
    string,
    {
      resolve: (f: ResFrame) => void;
      reject: (e: Error) => void;
      expectFinal: boolean;
      onInterim?: (payload: unknown) => void;
    }
  >();
  #eventListeners = new Set<(e: EventFrame) => void>();
  #closed: { code: number; reason: string } | undefined;

  private constructor(ws: WebSocket, hello: HelloOk, connectMs: number) {
    this.ws = ws;
    this.hello = hello;
    this.connectMs = connectMs;
    ws.on("message", (data) => this.#onMessage(String(data)));
    ws.on("close", (code, reason) => {
      this.#closed = { code, reason: String(reason) };
      const err = new LoopgateError(
        ErrorCodes.CONNECTION_CLOSED,
        `the gateway closed the connection (${code}${String(reason) ? `: ${String(reason)}` : ""})`,
        {
          hint:
            code === 1012
              ? "the gateway is restarting; retry in a moment"
              : "retry; loopgate status --deep shows the target",
        },
      );
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
  }

  /**
   * Connects and completes the handshake. A gateway that answers "starting,
   * retry shortly" (UNAVAILABLE, retryable) is retried until the timeout.
   */
  static async connect(opts: ClientOptions): Promise<GatewayClient> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      try {
        return await GatewayClient.#connectOnce({ ...opts, timeoutMs: Math.max(1, deadline - Date.now()) });
      } catch (e) {
        const retryable =
          e instanceof LoopgateError && e.details?.gatewayCode === "UNAVAILABLE" && e.details?.retryable === true;
        if (!retryable || Date.now() + 500 > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  static async #connectOnce(opts: ClientOptions): Promise<GatewayClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const target = parseGatewayUrl(opts.url);
    if (!target.secure && opts.pins && opts.pins.length > 0) {
      throw new LoopgateError(
        ErrorCodes.PIN_INVALID,
        "a TLS fingerprint pin needs a wss:// URL; this target is plaintext ws://",
        {
          hint: "drop --tls-fingerprint for ws:// targets, or use the relay's wss:// URL",
        },
      );
    }
    const classes =
      !target.secure && classifyIp(target.host) === undefined && target.host !== "localhost"
        ? await (opts.resolveHost ?? resolveClasses)(target.host)
        : undefined;
    checkUrlSafety(target, opts.env ?? process.env, classes);

    const t0 = performance.now();
    const headers: Record<string, string> = {};
    if (opts.bearerOnUpgrade && target.secure && opts.token) headers.authorization = `Bearer ${opts.token}`;
    // Frames that arrive with the upgrade answer are queued until the handshake listens.
    const early: unknown[] = [];
    const queue = (data: unknown) => early.push(data);
    const ws = await openWebSocket(target.url.toString(), {
      ...(opts.pins && opts.pins.length > 0 ? { pins: opts.pins } : {}),
      headers,
      timeoutMs,
      beforeOpen: (w) => w.on("message", queue),
    });
    try {
      const hello = await GatewayClient.#handshake(ws, opts, timeoutMs - (performance.now() - t0), early, queue);
      return new GatewayClient(ws, hello, performance.now() - t0);
    } catch (e) {
      ws.terminate();
      throw e;
    }
  }

  static #handshake(
    ws: WebSocket,
    opts: ClientOptions,
    timeoutMs: number,
    early: unknown[],
    queue: (d: unknown) => void,
  ): Promise<HelloOk> {
    return new Promise<HelloOk>((resolve, reject) => {
      const id = randomUUID();
      let sent = false;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        ws.off("message", onMessage);
        ws.off("close", onClose);
        fn();
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new LoopgateError(
                ErrorCodes.TIMEOUT,
                sent ? "the gateway did not answer connect in time" : "the gateway sent no connect.challenge in time",
                { hint: "is this an OpenClaw-protocol gateway? raise --timeout if the link is slow" },
              ),
            ),
          ),
        Math.max(1, timeoutMs),
      );
      const sendConnect = () => {
        if (sent) return;
        sent = true;
        const auth: Record<string, string> = {};
        if (opts.token) auth.token = opts.token;
        if (opts.password) auth.password = opts.password;
        ws.send(
          JSON.stringify({
            type: "req",
            id,
            method: "connect",
            params: {
              minProtocol: CLIENT_PROTOCOL.min,
              maxProtocol: CLIENT_PROTOCOL.max,
              client: {
                id: opts.clientId ?? "cli",
                version: VERSION,
                platform: process.platform,
                mode: opts.clientMode ?? "cli",
                displayName: "loopgate",
              },
              role: "operator",
              scopes: opts.scopes ?? ["operator.admin"],
              caps: [],
              auth,
              userAgent: `loopgate/${VERSION}`,
            },
          }),
        );
      };
      const onMessage = (data: unknown) => {
        let f: ResFrame | EventFrame;
        try {
          f = JSON.parse(String(data)) as ResFrame | EventFrame;
        } catch {
          done(() =>
            reject(
              new LoopgateError(ErrorCodes.PROTOCOL_ERROR, "the server sent a frame that is not JSON", {
                hint: "is the URL an OpenClaw-protocol gateway?",
              }),
            ),
          );
          return;
        }
        if (f.type === "event" && f.event === "connect.challenge") sendConnect();
        else if (f.type === "res" && f.id === id) {
          if (f.ok) {
            const hello = f.payload as HelloOk;
            if (hello?.type !== "hello-ok")
              done(() => reject(new LoopgateError(ErrorCodes.PROTOCOL_ERROR, "connect answered without hello-ok")));
            else done(() => resolve(hello));
          } else
            done(() =>
              reject(gatewayError(f.error ?? { code: "UNKNOWN", message: "connect refused" }, "connect refused")),
            );
        }
      };
      const onClose = (code: number, reason: Buffer) => {
        const r = String(reason);
        done(() =>
          reject(
            code === 1002 && /protocol/i.test(r)
              ? new LoopgateError(ErrorCodes.PROTOCOL_MISMATCH, `the gateway closed the connection: ${r}`)
              : code === 1008 && /unauthori|auth/i.test(r)
                ? new LoopgateError(ErrorCodes.AUTH_REFUSED, `the gateway refused the credentials (${code}: ${r})`, {
                    hint: "check --token/--password",
                  })
                : new LoopgateError(
                    ErrorCodes.CONNECTION_CLOSED,
                    `the gateway closed the connection during the handshake (${code}${r ? `: ${r}` : ""})`,
                  ),
          ),
        );
      };
      ws.off("message", queue);
      ws.on("message", onMessage);
      ws.on("close", onClose);
      for (const d of early.splice(0)) onMessage(d);
    });
  }

  #onMessage(text: string): void {
    let f: ResFrame | EventFrame;
    try {
      f = JSON.parse(text) as ResFrame | EventFrame;
    } catch {
      return;
    }
    if (f.type === "res") {
      const p = this.#pending.get(f.id);
      if (!p) return;
      // With expectFinal, an "accepted" answer is an interim one: keep waiting for the final res.
      const status = (f.payload as { status?: unknown } | undefined)?.status;
      if (p.expectFinal && f.ok && status === "accepted") return void p.onInterim?.(f.payload);
      this.#pending.delete(f.id);
      p.resolve(f);
    } else if (f.type === "event") {
      for (const l of this.#eventListeners) l(f);
    }
  }

  onEvent(listener: (e: EventFrame) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Sends a request and resolves with its payload; a gateway error becomes a LoopgateError. */
  async request<T = unknown>(
    method: string,
    params?: unknown,
    opts: { timeoutMs?: number; expectFinal?: boolean; onInterim?: (payload: unknown) => void } = {},
  ): Promise<T> {
    if (this.#closed)
      throw new LoopgateError(ErrorCodes.CONNECTION_CLOSED, `the connection is closed (${this.#closed.code})`);
    const id = randomUUID();
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const frame = await new Promise<ResFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new LoopgateError(ErrorCodes.TIMEOUT, `${method} got no answer within ${timeoutMs} ms`, {
            hint: "raise --timeout, or check the gateway (loopgate status --deep)",
          }),
        );
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (f) => (clearTimeout(timer), resolve(f)),
        reject: (e) => (clearTimeout(timer), reject(e)),
        expectFinal: Boolean(opts.expectFinal),
        ...(opts.onInterim ? { onInterim: opts.onInterim } : {}),
      });
      this.ws.send(JSON.stringify({ type: "req", id, method, ...(params !== undefined ? { params } : {}) }));
    });
    if (!frame.ok) throw gatewayError(frame.error ?? { code: "UNKNOWN", message: "request failed" }, method);
    return frame.payload as T;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === 3) return resolve();
      this.ws.once("close", () => resolve());
      this.ws.close(1000, "bye");
      setTimeout(() => (this.ws.terminate(), resolve()), 1000).unref();
    });
  }
}
