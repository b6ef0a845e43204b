/**
 * fetch_local_url reaches this machine's loopback and nothing else: no other
 * host, no other scheme, and no redirect followed off the first answer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { BuiltinTools } from "../../agent/tools/builtin.ts";

const ctx = { signal: new AbortController().signal, sessionKey: "t" };
const tools = new BuiltinTools({ allow: ["*"], deny: [], workspace: "/", maxOutputBytes: 4096, timeoutMs: 5000 });
const fetchUrl = (url: string) => tools.execute("fetch_local_url", JSON.stringify({ url }), ctx);

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test("fetch_local_url returns a loopback answer with its status", async () => {
  const { server, base } = await serve((req, res) => {
    res.writeHead(req.url === "/missing" ? 404 : 200).end(`path ${req.url}`);
  });
  try {
    const ok = await fetchUrl(`${base}/status?x=1`);
    assert.deepEqual([ok.ok, ok.output], [true, "HTTP 200\npath /status?x=1"]);
    const missing = await fetchUrl(`${base}/missing`);
    assert.deepEqual([missing.ok, missing.output], [false, "HTTP 404\npath /missing"]);
  } finally {
    server.close();
  }
});

test("fetch_local_url does not follow a redirect, even to another loopback server", async () => {
  let reached = 0;
  const target = await serve((_req, res) => {
    reached++;
    res.end("followed");
  });
  const first = await serve((_req, res) => {
    res.writeHead(302, { location: `${target.base}/` }).end();
  });
  try {
    const r = await fetchUrl(`${first.base}/`);
    assert.equal(r.output, "HTTP 302\n");
    assert.equal(reached, 0);
  } finally {
    first.server.close();
    target.server.close();
  }
});

test("fetch_local_url reads no more than one output's worth of an endless answer, and hangs up", async () => {
  let closed = false;
  let sent = 0;
  const { server, base } = await serve((_req, res) => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const pump = () => {
      while (!closed && res.write(chunk)) sent += chunk.length;
      if (!closed) res.once("drain", pump);
    };
    res.on("close", () => (closed = true));
    pump();
  });
  try {
    const t0 = performance.now();
    const r = await fetchUrl(`${base}/endless`);
    assert.equal(r.truncated, true);
    assert.match(r.output, /^HTTP 200\na+\n\[… output truncated at 4096 bytes\]$/);
    assert.ok(performance.now() - t0 < 4000, "it did not wait for the timeout");
    for (let i = 0; i < 50 && !closed; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(closed, true, "the connection was closed");
    // What the kernel's socket buffers took in before the hang-up, not an endless answer.
    assert.ok(sent < 64 * 1024 * 1024, `the server got to send ${sent} bytes`);
  } finally {
    server.close();
  }
});

test("fetch_local_url refuses other hosts and schemes before connecting", async () => {
  for (const url of [
    "http://192.0.2.1/",
    "https://example.invalid/",
    "file:///etc/passwd",
    "ftp://127.0.0.1/",
    "nonsense",
  ]) {
    const r = await fetchUrl(url);
    assert.equal(r.ok, false, url);
    assert.match(
      r.output,
      /fetch_local_url (only reaches this machine's loopback|needs an absolute http\(s\) URL)/,
      url,
    );
  }
});
