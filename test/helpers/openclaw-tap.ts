/**
 * A frame tap: a WebSocket proxy on 127.0.0.1 in front of a gateway that
 * records every frame each side sends, so an interop test can say exactly
 * which methods a real OpenClaw client called and which of them failed.
 * Request headers (Origin, forwarding headers from a link) pass through, and
 * the gateway sees a loopback peer, as it would without the tap. Plain HTTP
 * (the gateway's own Control UI) is proxied too.
 */
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import WebSocket, { WebSocketServer, type RawData } from "ws";

export interface TappedFrame {
  conn: number;
  dir: "in" | "out";
  at: number;
  frame: {
    type?: string;
    id?: string;
    method?: string;
    ok?: boolean;
    event?: string;
    params?: unknown;
    payload?: unknown;
    error?: { code?: string; message?: string };
  };
}

export interface FailedCall {
  conn: number;
  method: string;
  code: string;
  message: string;
}

export interface FrameTap {
  port: number;
  url: string;
  frames: TappedFrame[];
  /** Methods the clients called, in order (connect included). */
  methods(since?: number): string[];
  /** Requests answered with ok:false, with the method named. */
  failures(since?: number): FailedCall[];
  /** Events the gateway sent, by name. */
  events(since?: number): string[];
  /** The `chat` events the gateway sent in this state (delta, final, aborted…). */
  chatEvents(state: string): TappedFrame[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "upgrade",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-accept",
  "host",
  "content-length",
  "transfer-encoding",
]);

function passHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

function parse(data: RawData): TappedFrame["frame"] {
  try {
    const v: unknown = JSON.parse(String(data));
    return v !== null && typeof v === "object" ? (v as TappedFrame["frame"]) : {};
  } catch {
    return {};
  }
}

export async function startFrameTap(upstreamPort: number): Promise<FrameTap> {
  const frames: TappedFrame[] = [];
  let nextConn = 0;
  const server = createServer((req, res) => {
    const up = httpRequest(
      {
        host: "127.0.0.1",
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: { ...passHeaders(req), host: req.headers.host ?? `127.0.0.1:${upstreamPort}` },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  // The tap answers with the subprotocol the gateway chose.
  const chosen = new WeakMap<IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024 * 1024,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => chosen.get(req) ?? false,
  });
  server.on("upgrade", (req, socket, head) => {
    const protocols =
      req.headers["sec-websocket-protocol"]
        ?.split(",")
        .map((s) => s.trim())
        .filter(Boolean) ?? [];
    const headers = passHeaders(req);
    delete headers["sec-websocket-protocol"];
    // The gateway checks Origin against its Host: the tap keeps the client's Host.
    const up = new WebSocket(`ws://127.0.0.1:${upstreamPort}${req.url ?? "/"}`, protocols, {
      headers: { ...headers, host: req.headers.host ?? "" },
      maxPayload: 64 * 1024 * 1024,
      perMessageDeflate: false,
    });
    up.once("unexpected-response", (_q, res) => {
      socket.end(
        `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? "Bad Gateway"}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    });
    up.once("error", () => socket.destroy());
    const conn = ++nextConn;
    let client: WebSocket | undefined;
    const early: { data: RawData; isBinary: boolean }[] = [];
    up.on("message", (data, isBinary) => {
      if (!isBinary) frames.push({ conn, dir: "out", at: Date.now(), frame: parse(data) });
      if (!client) early.push({ data, isBinary });
      else if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
    up.once("open", () => {
      if (up.protocol) chosen.set(req, up.protocol);
      wss.handleUpgrade(req, socket, head, (ws) => {
        client = ws;
        for (const m of early.splice(0)) ws.send(m.data, { binary: m.isBinary });
        ws.on("message", (data, isBinary) => {
          if (!isBinary) frames.push({ conn, dir: "in", at: Date.now(), frame: parse(data) });
          if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
        });
        const safeCode = (c: number) => (c === 1005 || c === 1006 || c < 1000 ? 1000 : c);
        ws.on("close", (code, reason) => up.close(safeCode(code), reason));
        up.on("close", (code, reason) => ws.close(safeCode(code), reason));
        ws.on("error", () => up.terminate());
        up.on("error", () => ws.terminate());
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  const methodOf = (conn: number, id: string | undefined): string => {
    const req = frames.find((f) => f.dir === "in" && f.conn === conn && f.frame.type === "req" && f.frame.id === id);
    return req?.frame.method ?? "?";
  };
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    frames,
    methods: (since = 0) =>
      frames
        .slice(since)
        .filter((f) => f.dir === "in" && f.frame.type === "req")
        .map((f) => f.frame.method ?? "?"),
    failures: (since = 0) =>
      frames
        .slice(since)
        .filter((f) => f.dir === "out" && f.frame.type === "res" && f.frame.ok === false)
        .map((f) => ({
          conn: f.conn,
          method: methodOf(f.conn, f.frame.id),
          code: f.frame.error?.code ?? "?",
          message: f.frame.error?.message ?? "",
        })),
    events: (since = 0) =>
      frames
        .slice(since)
        .filter((f) => f.dir === "out" && f.frame.type === "event")
        .map((f) => f.frame.event ?? "?"),
    chatEvents: (state) =>
      frames.filter(
        (f) =>
          f.dir === "out" &&
          f.frame.event === "chat" &&
          (f.frame.payload as { state?: string } | undefined)?.state === state,
      ),
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
