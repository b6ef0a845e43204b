/** The link's HTTP forwarding against a real local server, with a stream whose client stops reading and leaves. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { brotliCompressSync } from "node:zlib";
import { LinkStream, type StreamLimits } from "../../shared/link/stream.ts";
import { forwardHttpStream } from "../../agent/link/http-forward.ts";
import { encodeData } from "../../shared/link/codec.ts";

const LIMITS: StreamLimits = {
  initialWindow: 64 * 1024,
  maxMessageBytes: 1 << 20,
  maxQueuedBytes: 1 << 20,
  highWaterBytes: 32 * 1024,
  chunkBytes: 16 * 1024,
};

function stream(path: string): { s: LinkStream; frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  const s = new LinkStream(
    1,
    {
      sendFrame: (f) => frames.push(f),
      sendData: (id, c, b, fin) => frames.push(encodeData(id, c, b, fin)),
      remove: () => {},
    },
    LIMITS,
    {
      kind: "http",
      path,
      method: "GET",
      headers: {},
      clientAddr: "203.0.113.9",
    },
  );
  return { s, frames };
}

test("a response stalled on credit ends when its stream closes, and the upstream request is dropped", async () => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const server = createServer((_q, res) => {
    res.on("close", () => upstreamClosed());
    res.writeHead(200, { "content-type": "application/octet-stream" });
    const piece = Buffer.alloc(64 * 1024, 1);
    const pump = () => {
      while (res.write(piece));
      res.once("drain", pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const { s } = stream("/big");
    const done = forwardHttpStream(s, { url: new URL(`http://127.0.0.1:${port}/big`), method: "GET", headers: {} });
    // No credit is ever granted: the forwarder soon waits for a drain that will not come.
    await new Promise((r) => setTimeout(r, 300));
    s.handleClose(1001, "client went away");
    const outcome = await Promise.race([
      done.then(() => "ended"),
      new Promise((r) => setTimeout(() => r("still waiting"), 3000)),
    ]);
    assert.equal(outcome, "ended");
    await Promise.race([
      closed,
      new Promise((_r, rej) => setTimeout(() => rej(new Error("upstream request still open")), 3000)),
    ]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("a compressed body is forwarded as sent, with its content-encoding", async () => {
  const body = brotliCompressSync(Buffer.from("x".repeat(10_000)));
  const server = createServer((_q, res) =>
    res.writeHead(200, { "content-encoding": "br", "content-type": "text/plain" }).end(body),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const { s } = stream("/");
    let headers: Record<string, string> = {};
    const orig = s.accept.bind(s);
    s.accept = (info = {}) => {
      headers = info.headers ?? {};
      orig(info);
    };
    const sent: Uint8Array[] = [];
    const send = s.sendMessage.bind(s);
    s.sendMessage = (d) => {
      sent.push(typeof d === "string" ? new TextEncoder().encode(d) : d);
      return send(d);
    };
    await forwardHttpStream(s, {
      url: new URL(`http://127.0.0.1:${port}/`),
      method: "GET",
      headers: { "accept-encoding": "br" },
    });
    assert.equal(headers["content-encoding"], "br");
    assert.ok(Buffer.concat(sent).equals(body));
  } finally {
    server.close();
  }
});
