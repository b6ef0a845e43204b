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
