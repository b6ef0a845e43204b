/**
 * The relay's metrics core, in process: rendering (checked by Prometheus'
 * own OpenMetrics parser when python3-prometheus-client is installed),
 * summing the snapshots of several Durable Objects, host ids only on opt-in,
 * and who may read /metrics on the Hono app.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startProcessMetrics } from "../../relay/node/process-metrics.ts";
import { spawnSync } from "node:child_process";
import { createRelayApp, type RelayAdapter } from "../../relay/core/app.ts";
import { DEFAULT_RELAY_LIMITS } from "../../relay/core/limits.ts";
import {
  RelayMetrics,
  mergeSnapshots,
  metricFamilies,
  BUFFER_PEAK_BOUNDS,
  REFUSAL_REASONS,
} from "../../relay/core/metrics.ts";
import { renderOpenMetrics, MetricNameError, OPENMETRICS_CONTENT_TYPE } from "../../relay/core/openmetrics.ts";

const HOST = "A".repeat(43);

function pythonWithParser(): string | undefined {
  for (const python of [process.env.LOOPGATE_PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string =>
    Boolean(c),
  )) {
    if (
      spawnSync(python, ["-c", "import prometheus_client.openmetrics.parser"], { stdio: "ignore", timeout: 10_000 })
        .status === 0
    )
      return python;
  }
  return undefined;
}
const PYTHON = pythonWithParser();
if (!PYTHON)
  console.warn(
    "\n*** SKIPPING the OpenMetrics parser checks: no python3 with prometheus_client (Debian: python3-prometheus-client) ***\n",
  );

function sampleMetrics(): RelayMetrics {
  const m = new RelayMetrics();
  m.refused("token_missing");
  m.refused("token_missing");
  m.refused("stream_cap");
  m.authFailed("client");
  m.linkConnected(false);
  m.linkConnected(true);
  m.linkDropped("closed");
  m.streamOpened("ws");
  m.observeBufferPeak(0);
  m.observeBufferPeak(5000);
  m.observeBufferPeak(10 ** 9);
  return m;
}

test("the page: counters with _total, cumulative buckets, every label value present, # EOF last", () => {
  const text = renderOpenMetrics(
    metricFamilies(
      sampleMetrics().snapshot({
        hostsAllowed: 2,
        hosts: [{ hostId: HOST, linked: true, streams: 3, bytesFromHost: 10, bytesToHost: 20 }],
      }),
      { perHost: false },
    ),
  );
  assert.ok(text.endsWith("\n# EOF\n"));
  assert.match(text, /^# TYPE loopgate_relay_refusals counter$/m);
  assert.match(text, /^loopgate_relay_refusals_total\{reason="token_missing"\} 2$/m);
  for (const r of REFUSAL_REASONS)
    assert.match(text, new RegExp(`^loopgate_relay_refusals_total\\{reason="${r}"\\} \\d+$`, "m"));
  assert.match(text, /^loopgate_relay_link_reconnects_total 1$/m);
  assert.match(text, /^loopgate_relay_hosts_linked 1$/m);
  assert.match(text, /^loopgate_relay_client_streams 3$/m);
  assert.match(text, /^loopgate_relay_link_bytes_total\{direction="from_hosts"\} 10$/m);
  // 0 → first bucket; 5000 → ≤16 KiB; 1e9 → only +Inf.
  assert.match(text, /^loopgate_relay_stream_buffer_peak_bytes_bucket\{le="1024\.0"\} 1$/m);
  assert.match(text, /^loopgate_relay_stream_buffer_peak_bytes_bucket\{le="16384\.0"\} 2$/m);
  assert.match(
    text,
    new RegExp(`^loopgate_relay_stream_buffer_peak_bytes_bucket\\{le="${BUFFER_PEAK_BOUNDS.at(-1)}\\.0"\\} 2$`, "m"),
  );
  assert.match(text, /^loopgate_relay_stream_buffer_peak_bytes_bucket\{le="\+Inf"\} 3$/m);
  assert.match(text, /^loopgate_relay_stream_buffer_peak_bytes_count 3$/m);
  assert.ok(!text.includes(HOST), "no host id without the opt-in");
});

test("per-host families only on opt-in; label values are escaped", () => {
  const snap = new RelayMetrics().snapshot({
    hostsAllowed: 1,
    hosts: [{ hostId: HOST, linked: true, streams: 1, bytesFromHost: 5, bytesToHost: 6 }],
  });
  const text = renderOpenMetrics(metricFamilies(snap, { perHost: true }));
  assert.match(text, new RegExp(`^loopgate_relay_host_linked\\{host="${HOST}"\\} 1$`, "m"));
  assert.match(
    text,
    new RegExp(`^loopgate_relay_host_link_bytes_total\\{host="${HOST}",direction="to_host"\\} 6$`, "m"),
  );
  const odd = renderOpenMetrics([
    { type: "gauge", name: "x", help: "a\nb", samples: [{ labels: { v: 'q"\\\n' }, value: 1 }] },
  ]);
  assert.match(odd, /^# HELP x a\\nb$/m);
  assert.ok(odd.includes('x{v="q\\"\\\\\\n"} 1'));
  assert.throws(
    () => renderOpenMetrics([{ type: "counter", name: "bad_total", help: "", samples: [] }]),
    MetricNameError,
  );
  assert.throws(
    () =>
      renderOpenMetrics([
        { type: "gauge", name: "ok", help: "", samples: [{ labels: { "bad-label": "v" }, value: 1 }] },
      ]),
    MetricNameError,
  );
});

test("the Workers entry's sum of its objects' snapshots", () => {
  const a = sampleMetrics().snapshot({
    hostsAllowed: 0,
    hosts: [{ hostId: HOST, linked: true, streams: 2, bytesFromHost: 1, bytesToHost: 2 }],
  });
  const b = sampleMetrics().snapshot({ hostsAllowed: 0, hosts: [] });
  const sum = mergeSnapshots([a, b], 7);
  assert.equal(sum.refusals.token_missing, 4);
  assert.equal(sum.linkReconnects, 2);
  assert.equal(
    sum.bufferPeak.counts.reduce((x, y) => x + y, 0),
    6,
  );
  assert.equal(sum.hostsAllowed, 7);
  assert.equal(sum.hosts.length, 1);
});

test("Prometheus' OpenMetrics parser accepts the page", {
  skip: PYTHON ? false : "python3-prometheus-client is not installed",
}, () => {
  const snap = sampleMetrics().snapshot({
    hostsAllowed: 1,
    hosts: [{ hostId: HOST, linked: false, streams: 0, bytesFromHost: 0, bytesToHost: 0 }],
  });
  const text = renderOpenMetrics(metricFamilies(snap, { perHost: true }));
  const py =
    "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\nprint(sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read())))";
  const r = spawnSync(PYTHON!, ["-c", py], { input: text, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(Number(r.stdout.trim()), text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length);
  // And a page it must refuse (no # EOF), so this check can fail.
  assert.notEqual(
    spawnSync(PYTHON!, ["-c", py], { input: text.replace("# EOF\n", ""), encoding: "utf8", timeout: 20_000 }).status,
    0,
  );
});

function app(endpoint: RelayAdapter["metricsEndpoint"]) {
  const adapter: RelayAdapter = {
    limits: { ...DEFAULT_RELAY_LIMITS, authFailures: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } },
    audiences: ["https://relay.test"],
    claimLinkToken: () => true,
    isAllowed: () => false,
    singleHost: () => true,
    hostRecord: () => undefined,
    clientAddr: () => "192.0.2.9",
    upgradeLink: (c) => c.text("linked"),
    upgradeClient: (c) => c.text("client"),
    forwardHttp: async (c) => c.text("forwarded"),
    stats: () => ({}),
    metrics: new RelayMetrics(),
    ...(endpoint ? { metricsEndpoint: endpoint } : {}),
    log: { info: () => {}, warn: () => {} },
  };
  return { app: createRelayApp(adapter), metrics: adapter.metrics };
}

test("/metrics: no token configured → 404; the right bearer token only; wrong tokens count and lock out", async () => {
  const none = app(undefined).app;
  assert.equal(
    (await none.request("https://relay.test/metrics", { headers: { authorization: "Bearer anything-at-all-here" } }))
      .status,
    404,
  );

  const TOKEN = "metrics-token-0123456789";
  const { app: a, metrics } = app({ token: TOKEN, render: () => "# EOF\n" });
  const ok = await a.request("https://relay.test/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("content-type"), OPENMETRICS_CONTENT_TYPE);
  assert.equal(await ok.text(), "# EOF\n");
  const missing = await a.request("https://relay.test/metrics");
  assert.equal(missing.status, 401);
  assert.doesNotMatch(await missing.text(), /EOF/);
  for (const bad of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) {
    assert.equal((await a.request("https://relay.test/metrics", { headers: { authorization: bad } })).status, 401, bad);
  }
  // Two presented-and-wrong Bearer tokens (Basic is "missing"), one more locks the address out, even with the right token.
  assert.equal(metrics.snapshot({ hostsAllowed: 0, hosts: [] }).authFailures.metrics, 2);
  assert.equal(
    (await a.request("https://relay.test/metrics", { headers: { authorization: "Bearer wrong-wrong-wrong-wrong" } }))
      .status,
    401,
  );
  assert.equal(
    (await a.request("https://relay.test/metrics", { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    429,
  );
});

test("relay serve's metrics token: the file first, else LOOPGATE_METRICS_TOKEN; short ones refused", async () => {
  const { metricsToken } = await import("../../agent/cli/relay-serve.ts");
  const { mkdtempSync, writeFileSync, rmSync, chmodSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const { LoopgateError } = await import("../../shared/errors.ts");
  const warnings: string[] = [];
  const warn = (m: string) => void warnings.push(m);
  assert.equal(metricsToken({}, {}, warn), undefined);
  assert.equal(metricsToken({}, { LOOPGATE_METRICS_TOKEN: "  env-token-0123456789  " }, warn), "env-token-0123456789");
  const dir = mkdtempSync(join(tmpdir(), "loopgate-mt-"));
  try {
    const file = join(dir, "t");
    writeFileSync(file, "file-token-0123456789\n", { mode: 0o600 });
    assert.equal(
      metricsToken({ metricsTokenFile: file }, { LOOPGATE_METRICS_TOKEN: "env-token-0123456789" }, warn),
      "file-token-0123456789",
    );
    assert.deepEqual(warnings, []);
    writeFileSync(file, "short\n");
    chmodSync(file, 0o644);
    assert.throws(
      () => metricsToken({ metricsTokenFile: file }, {}, warn),
      (e: unknown) => e instanceof LoopgateError && e.code === "USAGE" && /at least 16/.test(e.message),
    );
    assert.equal(warnings.length, 1, "a file others can read is warned about");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(
    () => metricsToken({}, { LOOPGATE_METRICS_TOKEN: "short" }, warn),
    (e: unknown) => e instanceof LoopgateError && e.code === "USAGE",
  );
});

test("process metrics: garbage collection pauses are counted by kind, into the right buckets", async () => {
  const pm = startProcessMetrics();
  try {
    // Enough short-lived objects for several young-generation collections.
    let keep = 0;
    for (let i = 0; i < 200; i++) keep += new Array(50_000).fill(i).length;
    assert.ok(keep > 0);
    await new Promise((r) => setTimeout(r, 50)); // the observer runs after the collections
    const gc = pm.families().find((f) => f.name === "nodejs_gc_duration_seconds");
    assert.ok(gc && gc.type === "histogram");
    const minor = gc.samples.find((s) => s.labels?.kind === "minor");
    assert.ok(minor, "a series for minor collections");
    const count = minor.counts.reduce((a, b) => a + b, 0);
    assert.ok(count > 0, "the collections were counted");
    assert.ok(minor.sum > 0 && minor.sum < count * 5, "sum of pauses in seconds");
    assert.equal(minor.counts.length, minor.bounds.length + 1);
  } finally {
    pm.stop();
  }
});
