import { test } from "node:test";
import assert from "node:assert/strict";
import type { JWK } from "jose";
import { HOST_OFFLINE, HostHub, type LinkSocket } from "../../relay/core/hub.ts";
import { whenAdmitted } from "../../relay/core/hub-adapter.ts";
import { DEFAULT_RELAY_LIMITS } from "../../relay/core/limits.ts";
import { RelayMetrics } from "../../relay/core/metrics.ts";
import { LINK_PING_TEXT, LINK_PONG_TEXT } from "../../shared/link/heartbeat.ts";

const quiet = { info: () => {}, warn: () => {} };
const META = { kind: "http" as const, path: "/", method: "GET", headers: {}, clientAddr: "192.0.2.1" };
const hubWith = (metrics: RelayMetrics) =>
  new HostHub("h".repeat(43), {} as JWK, DEFAULT_RELAY_LIMITS, quiet, { metrics, heartbeat: "external" });

test("a host with no hub, or a hub with no link, is refused 503 and counted; the request never runs", async () => {
  for (const withHub of [false, true]) {
    const metrics = new RelayMetrics();
    let ran = false;
    const res = whenAdmitted(withHub ? hubWith(metrics) : undefined, META, metrics, () => {
      ran = true;
      return new Response("ok");
    });
    assert.equal(ran, false);
    assert.equal(res.status, 503);
    assert.equal(await res.text(), `${HOST_OFFLINE}\n`);
    assert.equal(metrics.snapshot({ hostsAllowed: 1, hosts: [] }).refusals.host_offline, 1);
  }
});

test("a linked hub runs the request", async () => {
  const metrics = new RelayMetrics();
  const hub = hubWith(metrics);
  hub.attachLink({ send: () => {}, close: () => {} }, {} as JWK);
  const res = whenAdmitted(hub, META, metrics, (h) => new Response(h === hub ? "ran" : "other"));
  assert.equal(await res.text(), "ran");
  hub.shutdown(1001, "test over");
});

test("on the link, the host's text keepalive is answered; any other text closes the link with 1003", () => {
  const sent: (string | Uint8Array)[] = [];
  const closed: [number, string][] = [];
  const sock: LinkSocket = { send: (f) => sent.push(f), close: (code, reason) => closed.push([code, reason]) };
  const hub = hubWith(new RelayMetrics());
  const handle = hub.attachLink(sock, {} as JWK);
  handle.message(LINK_PING_TEXT);
  assert.deepEqual(sent, [LINK_PONG_TEXT]);
  assert.deepEqual(closed, []);
  handle.message("hello");
  assert.deepEqual(closed, [[1003, "the link carries binary frames only"]]);
  hub.shutdown(1001, "test over");
});
