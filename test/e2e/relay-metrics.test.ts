/**
 * `/metrics` on a real relay (Node, and Workers under local workerd) after
 * real traffic: the page parses with Prometheus' own OpenMetrics parser
 * (python3-prometheus-client), and its counters move exactly as the traffic
 * says. Without the metrics token the page gives nothing away.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import type WebSocket from "ws";
import { tempDir } from "../helpers/proc.ts";
import {
  RELAY_KINDS,
  skipUnlessRunnable,
  echoRigForSuite,
  startLinkProc,
  startRelay,
  type RelayProc,
  type RelayKind,
} from "../helpers/relay.ts";
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";

const METRICS_TOKEN = "0f3c9a7e5b1d4c2a8e6f0b9d7c5a3e1f";

/** A python3 with the official OpenMetrics parser, or why there is none. */
function findParser(): { python: string } | { missing: string } {
  const candidates = [process.env.LOOPGATE_PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string =>
    Boolean(c),
  );
  for (const python of candidates) {
    const r = spawnSync(
      python,
      ["-c", "from prometheus_client.openmetrics.parser import text_string_to_metric_families"],
      { stdio: "ignore", timeout: 10_000 },
    );
    if (r.status === 0) return { python };
  }
  return {
    missing:
      "no python3 with prometheus_client (Debian: apt-get install python3-prometheus-client; or set LOOPGATE_PYTHON)",
  };
}

const PARSER = findParser();
if ("missing" in PARSER) console.warn(`\n*** SKIPPING the /metrics suite: ${PARSER.missing} ***\n`);

/** Each sample, as Prometheus' parser reads the page (it throws on anything that is not valid OpenMetrics). */
const PARSE_PY = `
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
`;

interface ParsedSample {
  family: string;
  type: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseOpenMetrics(text: string): ParsedSample[] {
  if ("missing" in PARSER) throw new Error(PARSER.missing);
  const r = spawnSync(PARSER.python, ["-c", PARSE_PY], { input: text, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, `the OpenMetrics parser refused the page: ${r.stderr}\n${text}`);
  return JSON.parse(r.stdout) as ParsedSample[];
}

/** One value: the sample with this name and exactly these labels. */
function value(samples: ParsedSample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find(
    (x) =>
      x.name === name &&
      JSON.stringify(Object.entries(x.labels).sort()) === JSON.stringify(Object.entries(labels).sort()),
  );
  assert.ok(s, `no sample ${name}${JSON.stringify(labels)}`);
  return s.value;
}

function certPem(relay: RelayProc): string {
  return readFileSync(
    relay.kind === "node" ? join(relay.stateDir, "relay", "relay-cert.pem") : join(relay.stateDir, "relay-cert.pem"),
    "utf8",
  );
}

/** GET over TLS that trusts only the relay's own certificate (the pin, as `ca`). */
function get(
  relay: RelayProc,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: relay.port,
        path,
        method: "GET",
        headers,
        ca: certPem(relay),
        servername: "localhost",
        timeout: 15_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

async function scrape(relay: RelayProc): Promise<{ text: string; samples: ParsedSample[] }> {
  const r = await get(relay, "/metrics", { authorization: `Bearer ${METRICS_TOKEN}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  assert.ok(r.body.endsWith("# EOF\n"));
  return { text: r.body, samples: parseOpenMetrics(r.body) };
}

/** Scrapes until `pred` holds (the relay counts a closed stream once the close has travelled), bounded. */
async function scrapeUntil(
  relay: RelayProc,
  pred: (s: ParsedSample[]) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<ParsedSample[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { samples } = await scrape(relay);
    if (pred(samples)) return samples;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function wsTo(relay: RelayProc, hostId: string, token: string | undefined): Promise<WebSocket> {
  return openWebSocket(`${relay.url}/h/${hostId}`, {
    pins: [relay.pin],
    headers: token ? { authorization: `Bearer ${token}` } : {},
    timeoutMs: 10_000,
  });
}

async function refusedStatus(relay: RelayProc, hostId: string, token: string | undefined): Promise<number> {
  try {
    const ws = await wsTo(relay, hostId, token);
    ws.close();
    return 101;
  } catch (e) {
    return (e as Error & { details?: { status?: number } }).details?.status ?? -1;
  }
}

function relayArgs(kind: RelayKind): string[] {
  if (kind === "workers") return ["--var", `METRICS_TOKEN:${METRICS_TOKEN}`];
  const dir = tempDir("loopgate-metrics-");
  const file = join(dir, "metrics-token");
  writeFileSync(file, METRICS_TOKEN + "\n", { mode: 0o600 });
  return ["--metrics-token-file", file];
}

for (const kind of RELAY_KINDS) {
  const skip = "missing" in PARSER ? { skip: PARSER.missing } : skipUnlessRunnable(kind, "the /metrics suite");
  describe(`relay (${kind}): /metrics`, skip, () => {
    const rig = echoRigForSuite(kind, () => relayArgs(kind));

    test("without the metrics token, /metrics gives nothing away", async () => {
      const attempts: Record<string, string>[] = [
        {},
        { authorization: "Bearer wrong-token-wrong-token" },
        { authorization: `Basic ${btoa(`x:${METRICS_TOKEN}`)}` },
        { "x-loopgate-client-token": METRICS_TOKEN },
      ];
      for (const headers of attempts) {
        const r = await get(rig.relay, "/metrics", headers);
        assert.equal(r.status, 401, JSON.stringify(headers));
        assert.doesNotMatch(r.body, /loopgate_relay|# TYPE|process_/);
      }
      // The token is the relay's, not a host's: a host's origin path /h/<id>/metrics is the host's own business.
      const viaHost = await get(rig.relay, `/h/${rig.host.hostId}/metrics`, {
        authorization: `Bearer ${METRICS_TOKEN}`,
      });
      assert.notEqual(viaHost.status, 200);
      assert.doesNotMatch(viaHost.body, /loopgate_relay/);
    });

    test("the page parses as OpenMetrics, and its counters move as the traffic says", async () => {
      const s0 = (
        await scrapeUntil(rig.relay, (s) => value(s, "loopgate_relay_hosts_linked") === 1, "the host to be linked")
      ).slice();
      assert.equal(value(s0, "loopgate_relay_hosts_allowed"), 1);
      assert.ok(value(s0, "loopgate_relay_link_connects_total") >= 1);

      // Refused: no token, a forged one; and a wrong metrics token.
      assert.equal(await refusedStatus(rig.relay, rig.host.hostId, undefined), 401);
      // A token of this host's with its signature broken (a non-JWT Authorization would be the upstream's own, not ours).
      const forged = `${rig.token.slice(0, rig.token.lastIndexOf(".") + 1)}${"A".repeat(86)}`;
      assert.equal(await refusedStatus(rig.relay, rig.host.hostId, forged), 401);
      assert.equal((await get(rig.relay, "/metrics", { authorization: "Bearer wrong-token-wrong-token" })).status, 401);

      // Carried: one WebSocket client, 20 messages of 10 KiB each way; one HTTP request (the echo answers 426).
      const ws = await wsTo(rig.relay, rig.host.hostId, rig.token);
      const payload = Buffer.alloc(10 * 1024, 7);
      for (let i = 0; i < 20; i++) {
        const echoed = new Promise<Buffer>((r) => ws.once("message", (d) => r(d as Buffer)));
        ws.send(payload);
        assert.equal((await echoed).length, payload.length);
      }
      const open = await scrape(rig.relay);
      assert.equal(value(open.samples, "loopgate_relay_client_streams"), 1);
      await new Promise<void>((r) => {
        ws.once("close", () => r());
        ws.close(1000, "done");
      });
      const http = await get(rig.relay, `/h/${rig.host.hostId}/anything`, { authorization: `Bearer ${rig.token}` });
      assert.equal(http.status, 426);

      const s1 = await scrapeUntil(
        rig.relay,
        (s) =>
          value(s, "loopgate_relay_client_streams") === 0 &&
          value(s, "loopgate_relay_stream_buffer_peak_bytes_count") -
            value(s0, "loopgate_relay_stream_buffer_peak_bytes_count") >=
            2,
        "both streams to end",
      );
      const d = (name: string, labels: Record<string, string> = {}) =>
        value(s1, name, labels) - value(s0, name, labels);
      assert.equal(d("loopgate_relay_client_streams_opened_total", { kind: "ws" }), 1);
      assert.equal(d("loopgate_relay_client_streams_opened_total", { kind: "http" }), 1);
      assert.equal(d("loopgate_relay_refusals_total", { reason: "token_missing" }), 1);
      assert.equal(d("loopgate_relay_refusals_total", { reason: "token_invalid" }), 1);
      assert.equal(d("loopgate_relay_refusals_total", { reason: "host_offline" }), 0);
      assert.equal(d("loopgate_relay_auth_failures_total", { kind: "client" }), 1);
      assert.equal(d("loopgate_relay_auth_failures_total", { kind: "metrics" }), 1);
      assert.equal(d("loopgate_relay_stream_buffer_peak_bytes_count"), 2);
      // 200 KiB each way, plus framing.
      assert.ok(
        d("loopgate_relay_link_bytes_total", { direction: "to_hosts" }) >= 20 * payload.length,
        "bytes to the host",
      );
      assert.ok(
        d("loopgate_relay_link_bytes_total", { direction: "from_hosts" }) >= 20 * payload.length,
        "bytes from the host",
      );
      assert.ok(
        d("loopgate_relay_stream_buffer_peak_bytes_sum") >= payload.length,
        "the WebSocket stream held at least one message",
      );
      // No host id and no secret in any label unless the operator opts in.
      assert.ok(
        !open.text.includes(rig.host.hostId) && !open.text.includes(rig.token) && !open.text.includes(METRICS_TOKEN),
      );
      if (kind === "node") {
        assert.ok(value(s1, "process_resident_memory_bytes") > 10 * 1024 * 1024);
        assert.ok(value(s1, "nodejs_heap_size_used_bytes") > 0);
        // Garbage collection pauses: a series per kind, from the first scrape on (counts start at 0).
        for (const kind of ["minor", "major", "incremental", "weakcb"])
          assert.equal(
            value(s1, "nodejs_gc_duration_seconds_bucket", { kind, le: "+Inf" }),
            value(s1, "nodejs_gc_duration_seconds_count", { kind }),
          );
      }
    });

    test("a link that drops and comes back counts as a drop and a reconnect", async () => {
      const s0 = await scrape(rig.relay);
      await rig.link.kill();
      await scrapeUntil(rig.relay, (s) => value(s, "loopgate_relay_hosts_linked") === 0, "the link to drop");
      // While the host is offline a client is refused as such.
      assert.equal(await refusedStatus(rig.relay, rig.host.hostId, rig.token), 503);
      rig.link = await startLinkProc(rig.host, rig.relay, rig.echo.port);
      const s1 = await scrapeUntil(
        rig.relay,
        (s) => value(s, "loopgate_relay_hosts_linked") === 1,
        "the link to come back",
      );
      const d = (name: string, labels: Record<string, string> = {}) =>
        value(s1, name, labels) - value(s0.samples, name, labels);
      assert.equal(d("loopgate_relay_link_connects_total"), 1);
      assert.equal(d("loopgate_relay_link_reconnects_total"), 1);
      assert.equal(d("loopgate_relay_link_drops_total", { reason: "closed" }), 1);
      assert.equal(d("loopgate_relay_refusals_total", { reason: "host_offline" }), 1);
    });

    test("a relay started without a metrics token has no /metrics at all", async () => {
      const bare = await startRelay(kind, { allowHosts: [rig.host.hostId] });
      try {
        for (const headers of [{}, { authorization: `Bearer ${METRICS_TOKEN}` }] as Record<string, string>[]) {
          const r = await get(bare, "/metrics", headers);
          assert.equal(r.status, 404);
          assert.doesNotMatch(r.body, /loopgate_relay|# TYPE|process_/);
        }
      } finally {
        await bare.kill();
      }
    });

    test("host ids appear in labels only when the operator opts in", {
      skip: kind === "node" ? false : "the opt-in is the same renderer; its Workers switch is a var",
    }, async () => {
      const other = await startRelay("node", {
        allowHosts: [rig.host.hostId],
        args: [...relayArgs("node"), "--metrics-per-host"],
      });
      const otherLink = await startLinkProc(rig.host, other, rig.echo.port);
      try {
        const samples = await scrapeUntil(
          other,
          (s) => value(s, "loopgate_relay_hosts_linked") === 1,
          "the host to link",
        );
        assert.equal(value(samples, "loopgate_relay_host_linked", { host: rig.host.hostId }), 1);
        assert.equal(value(samples, "loopgate_relay_host_client_streams", { host: rig.host.hostId }), 0);
        assert.ok(
          value(samples, "loopgate_relay_host_link_bytes_total", { host: rig.host.hostId, direction: "from_host" }) > 0,
        );
      } finally {
        await otherLink.kill();
        await other.kill();
      }
    });
  });
}
