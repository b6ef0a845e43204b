/** The provider's model list (GET /models): read with the key, cached, bounded by a timeout, failures reported. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { ModelCatalog, listModels, CATALOG_TIMEOUT_MS } from "../../agent/gateway/methods/models.ts";

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; baseUrl: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return { server, baseUrl: `http://127.0.0.1:${port}/v1` };
}

test("lists the provider's models with its key, and caches them", async () => {
  let calls = 0;
  let auth: string | undefined;
  const { server, baseUrl } = await serve((req, res) => {
    calls++;
    auth = req.headers.authorization;
    res
      .writeHead(req.url === "/v1/models" ? 200 : 404, { "content-type": "application/json" })
      .end(JSON.stringify({ data: [{ id: "fake-1" }, { id: "fake-2" }, { nope: 1 }] }));
  });
  try {
    const catalog = new ModelCatalog({ baseUrl, apiKey: "sk-catalog-key" });
    const info = { name: "A", workspace: "/w", model: { provider: "localhost", id: "fake-1", baseUrl } };
    const all = await listModels(info, catalog, {});
    assert.deepEqual(
      (all.models as { id: string }[]).map((m) => m.id),
      ["fake-1", "fake-2"],
    );
    assert.equal(auth, "Bearer sk-catalog-key");
    await listModels(info, catalog, {});
    assert.equal(calls, 1, "cached");
    await listModels(info, catalog, { refresh: true });
    assert.equal(calls, 2, "refresh reads again");
    const configured = await listModels(info, catalog, { view: "configured" });
    assert.deepEqual(
      (configured.models as { id: string }[]).map((m) => m.id),
      ["fake-1"],
    );
    assert.deepEqual(
      await listModels({ name: "A", workspace: "/w" }, undefined, {}),
      { models: [] },
      "no provider, no models",
    );
  } finally {
    server.close();
  }
});

test("a provider that never answers costs at most the timeout; the configured model is still listed", async () => {
  const { server, baseUrl } = await serve(() => {
    /* never answers */
  });
  try {
    const catalog = new ModelCatalog({ baseUrl });
    const t0 = Date.now();
    const r = await catalog.list();
    assert.ok(Date.now() - t0 < CATALOG_TIMEOUT_MS + 1500);
    assert.match(r.error ?? "", /no answer within/);
    const info = { name: "A", workspace: "/w", model: { provider: "localhost", id: "fake-1", baseUrl } };
    const all = await listModels(info, catalog, {});
    assert.deepEqual(
      (all.models as { id: string }[]).map((m) => m.id),
      ["fake-1"],
    );
    assert.deepEqual(all.providerOutcomes, [{ provider: "localhost", status: "unavailable" }]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
