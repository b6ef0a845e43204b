/** A minimal protocol v4 client for tests: handshake, requests, events, close info. */
import WebSocket from "ws";

/** A JSON value the test reads by path; the assertions are what check its shape. */
// biome-ignore lint/suspicious/noExplicitAny: one alias for test-side JSON, so a typo in a path fails at run time in an assert, not in tsc
export type AnyJson = any;

export interface Frame {
  type: string;
  id?: string;
  ok?: boolean;
  payload?: AnyJson;
  error?: { code: string; message: string; details?: AnyJson };
  event?: string;
  seq?: number;
}

export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  #n = 0;

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, opts);
    this.ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as Frame;
      this.frames.push(f);
      for (const w of [...this.#waiters])
        if (w.pred(f)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(f);
        }
    });
    this.closed = new Promise((resolve) =>
      this.ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );
    this.ws.on("error", () => {});
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
      this.ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  waitFor(pred: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error("timed out waiting for a frame; got " + JSON.stringify(this.frames).slice(0, 2000))),
        timeoutMs,
      );
      this.#waiters.push({ pred, resolve: (f) => (clearTimeout(t), resolve(f)) });
    });
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  request(method: string, params?: unknown): Promise<Frame> {
    const id = `t${++this.#n}`;
    this.ws.send(JSON.stringify({ type: "req", id, method, ...(params !== undefined ? { params } : {}) }));
    return this.waitFor((f) => f.type === "res" && f.id === id);
  }

  connect(auth: { token?: string; password?: string } = {}, extra: Record<string, unknown> = {}): Promise<Frame> {
    return this.request("connect", connectParams(auth, extra));
  }

  close(): void {
    this.ws.close();
  }
}

/** Protocol v4 `connect` params for a test or bench client (an operator; admin unless `extra` says otherwise). */
export function connectParams(
  auth: { token?: string; password?: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    minProtocol: 4,
    maxProtocol: 4,
    client: { id: "test", version: "0.0.0", platform: "linux", mode: "test" },
    role: "operator",
    scopes: ["operator.admin"],
    auth,
    ...extra,
  };
}

export async function connectedClient(
  url: string,
  auth: { token?: string; password?: string },
  extra: Record<string, unknown> = {},
): Promise<TestClient> {
  const c = new TestClient(url);
  await c.opened();
  await c.waitFor((f) => f.event === "connect.challenge");
  const res = await c.connect(auth, extra);
  if (!res.ok) throw new Error("connect failed: " + JSON.stringify(res.error));
  return c;
}
