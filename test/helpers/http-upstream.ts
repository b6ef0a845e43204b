/**
 * An HTTP + WebSocket upstream behind `loopgate link`, standing in for a
 * gateway that serves a web UI the way real ones do: compressed assets,
 * large bodies, every method, its own `Authorization`, and (for the
 * hostile-host tests) pages and headers that try to reach beyond their
 * origin. It records what it received.
 */
import { createServer, type IncomingMessage } from "node:http";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { createHash, randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
}

export interface HttpUpstream {
  port: number;
  seen: SeenRequest[];
  wsOpens: SeenRequest[];
  /** Bodies of /br and /gz before compression, and their compressed bytes as sent. */
  text: string;
  brotli: Buffer;
  gzip: Buffer;
  big: Buffer;
  close(): Promise<void>;
}

export async function startHttpUpstream(
  opts: { pages?: Record<string, { type: string; body: string; headers?: Record<string, string> }> } = {},
): Promise<HttpUpstream> {
  const seen: SeenRequest[] = [];
  const wsOpens: SeenRequest[] = [];
  const text = "<!doctype html><title>compressed</title>" + "loopgate relays bytes as they were sent. ".repeat(2000);
  const brotli = brotliCompressSync(Buffer.from(text));
  const gzip = gzipSync(Buffer.from(text));
  const big = randomBytes(3 * 1024 * 1024 + 17);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
      const path = (req.url ?? "/").split("?")[0]!;
      const page = opts.pages?.[path];
      if (page) {
        res.writeHead(200, { "content-type": page.type, ...page.headers }).end(page.body);
        return;
      }
      switch (path) {
        case "/br":
          res
            .writeHead(200, {
              "content-type": "text/html; charset=utf-8",
              "content-encoding": "br",
              vary: "accept-encoding",
            })
            .end(brotli);
          return;
        case "/gz":
          res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-encoding": "gzip" }).end(gzip);
          return;
        case "/big": {
          // Streamed in pieces, no content-length: the relay must pass it on as it comes.
          res.writeHead(200, { "content-type": "application/octet-stream" });
          let off = 0;
          const pump = () => {
            while (off < big.length) {
              const piece = big.subarray(off, off + 64 * 1024);
              off += piece.length;
              if (!res.write(piece)) return void res.once("drain", pump);
            }
            res.end();
          };
          pump();
          return;
        }
        case "/echo": {
          const body = Buffer.concat(chunks);
          res.writeHead(200, { "content-type": "application/json" }).end(
            JSON.stringify({
              method: req.method,
              bytes: body.length,
              sha256: createHash("sha256").update(body).digest("hex"),
              authorization: req.headers.authorization ?? null,
            }),
          );
          return;
        }
        case "/headers":
          res
            .writeHead(200, {
              "content-type": "text/plain",
              "service-worker-allowed": "/",
              "set-cookie": "planted=1; Domain=localhost; Path=/",
              "clear-site-data": '"cookies", "storage"',
              "cross-origin-opener-policy": "unsafe-none",
              "x-upstream": "kept",
            })
            .end("headers");
          return;
        default:
          res.writeHead(200, { "content-type": "text/plain" }).end(`upstream ${req.method} ${path}`);
      }
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, sock, head) => {
    wsOpens.push({ method: "GET", url: req.url ?? "", headers: req.headers });
    wss.handleUpgrade(req, sock, head, (ws) => ws.on("message", (d, bin) => ws.send(d, { binary: bin })));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    wsOpens,
    text,
    brotli,
    gzip,
    big,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
