/**
 * WebSocket upgrades on the Node relay. The Hono app decides (auth, routing,
 * limits); when it accepts, it leaves an `onOpen` in the request's env and
 * this module completes the handshake with `ws`. Unlike @hono/node-server's
 * upgradeWebSocket, nothing of the request (Hono context, Request, headers,
 * the IncomingMessage, the token) stays reachable from the open socket: at
 * 10,000 idle clients that was ~10 KiB each. A refusal is answered with its
 * status, headers and (short) text, so clients can say why.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Context } from "hono";
import type { WebSocketServer, WebSocket } from "ws";
import { isHopByHop } from "../../shared/http-headers.ts";

/** What the relay's handlers see as `c.env` on Node. */
export interface NodeEnv {
  incoming: IncomingMessage;
  /** Set by acceptUpgrade: the handshake completes after the app returns. */
  onOpen?: (ws: WebSocket) => void;
  /** Set by acceptUpgrade: the server (and so the limits) this socket is completed with, if not the default. */
  wss?: WebSocketServer;
}

export function incomingOf(c: Context): IncomingMessage {
  return (c.env as NodeEnv).incoming;
}

/**
 * Accepts the upgrade this request asks for. `onOpen` must not close over
 * the request or context (build it in a function that does not see them).
 * `wss`: a server other than handleUpgrades' default (its own maxPayload).
 */
export function acceptUpgrade(c: Context, onOpen: (ws: WebSocket) => void, wss?: WebSocketServer): Response {
  (c.env as NodeEnv).onOpen = onOpen;
  if (wss) (c.env as NodeEnv).wss = wss;
  // A placeholder: the 101 is written by ws once the app has returned.
  return new Response(null, { status: 204 });
}

const MAX_REFUSAL_TEXT = 1024;
const ignore = () => {};

function requestOf(req: IncomingMessage): Request | undefined {
  const target = req.url ?? "";
  if (!target.startsWith("/")) return undefined;
  let url: URL;
  try {
    url = new URL(`https://${req.headers.host ?? "localhost"}${target}`);
  } catch {
    return undefined;
  }
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    try {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    } catch {
      return undefined; // a header the Fetch API refuses
    }
  }
  return new Request(url, { method: req.method ?? "GET", headers });
}

async function refuse(socket: Duplex, status: number, res?: Response): Promise<void> {
  let text = "";
  const lines = ["Connection: close"];
  if (res) {
    text = (await res.text().catch(() => "")).slice(0, MAX_REFUSAL_TEXT);
    res.headers.forEach((v, k) => {
      if (!isHopByHop(k) && k !== "content-length") lines.push(`${k}: ${v}`);
    });
  }
  if (socket.destroyed) return;
  const body = Buffer.from(text);
  lines.push(`Content-Length: ${body.length}`);
  socket.end(
    Buffer.concat([
      Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n${lines.join("\r\n")}\r\n\r\n`),
      body,
    ]),
  );
}

/** Routes every upgrade request on `server` through `fetch`, completing the accepted ones with `wss`. */
export function handleUpgrades(
  server: Server,
  fetch: (req: Request, env: NodeEnv) => Response | Promise<Response>,
  wss: WebSocketServer,
): void {
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", ignore);
    void (async () => {
      const request = (req.headers.upgrade ?? "").toLowerCase() === "websocket" ? requestOf(req) : undefined;
      if (!request) return refuse(socket, 400);
      const env: NodeEnv = { incoming: req };
      let res: Response;
      try {
        res = await fetch(request, env);
      } catch {
        return refuse(socket, 500);
      }
      const onOpen = env.onOpen;
      if (!onOpen) return refuse(socket, Math.max(res.status, 400), res);
      if (socket.destroyed) return;
      (env.wss ?? wss).handleUpgrade(req, socket, head, (ws) => {
        socket.off("error", ignore);
        onOpen(ws);
      });
    })();
  });
}
