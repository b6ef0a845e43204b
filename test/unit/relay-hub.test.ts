/**
 * The relay's per-host hub (relay/core/hub.ts), in process: fake client
 * sockets and a host LinkMux on an in-memory link (test/helpers/hub-link.ts).
 * A host links, client streams open, messages flow both ways in order, close
 * codes travel, revocation closes a token's streams, the stream caps refuse,
 * a client that does not read stalls only itself, link loss and link
 * replacement close the streams with 1012, and a reused stream id fails only
 * the stream it hit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { HostHub } from "../../relay/core/hub.ts";
import { DEFAULT_RELAY_LIMITS, RelayClose } from "../../relay/core/limits.ts";
import type { RelayMetrics } from "../../relay/core/metrics.ts";
import { FakeClient, clientMeta, linkHost, makeHub, openClient, settle } from "../helpers/hub-link.ts";

const snap = (m: RelayMetrics) => m.snapshot({ hostsAllowed: 1, hosts: [] });

test("offline: a client is refused with 1013, admission with 503, HTTP with a 503 page; each counted", async () => {
  const { hub, metrics } = await makeHub();
  assert.equal(hub.linked, false);
  const c = openClient(hub);
  assert.equal(c.handle, undefined);
  assert.deepEqual(c.sock.closed, { code: RelayClose.TRY_AGAIN, reason: "host offline: its link is not connected" });
  assert.equal(hub.admission(clientMeta())?.status, 503);
  const reply = await hub.forwardHttp(clientMeta({ kind: "http", method: "GET" }), undefined);
  assert.equal(reply.status, 503);
  assert.match(await new Response(reply.body).text(), /host offline/);
  assert.equal(snap(metrics).refusals.host_offline, 3);
});

test("a linked host: messages flow both ways in order, text stays text and binary binary", async () => {
  const { hub, publicJwk } = await makeHub();
  const host = linkHost(hub, publicJwk);
  assert.equal(hub.linked, true);
  assert.equal(hub.admission(clientMeta()), undefined);
  const a = openClient(hub);
  const b = openClient(hub, { tokenId: "tok-2", clientAddr: "192.0.2.2" });
  assert.ok(a.handle && b.handle);
  assert.notEqual(a.handle.streamId, b.handle.streamId);
  const sent: (string | Uint8Array)[] = [];
  for (let i = 0; i < 40; i++) {
    const m = i % 3 === 0 ? new Uint8Array([i, i, i]) : `a-${i}`;
    sent.push(m);
    a.handle.message(m);
    b.handle.message(`b-${i}`);
  }
  await settle();
  assert.deepEqual(a.sock.received, sent);
  assert.deepEqual(
    b.sock.received,
    Array.from({ length: 40 }, (_, i) => `b-${i}`),
  );
  // The host saw the client's OPEN as the relay built it.
  assert.deepEqual(host.stream(a.handle.streamId).meta?.tokenId, "tok-1");
  assert.equal(hub.stats().streams, 2);
  assert.ok(hub.stats().bytesIn > 0 && hub.stats().bytesOut > 0);
});

test("close codes and reasons travel both ways; an abnormal client close reaches the host as 1011, no status as 1000", async () => {
  const { hub, publicJwk } = await makeHub();
  const host = linkHost(hub, publicJwk);
  const fromHost = openClient(hub);
  fromHost.handle!.message("close:4123:done here");
  await settle();
  assert.deepEqual(fromHost.sock.closed, { code: 4123, reason: "done here" });

  const cases: [number, string, number][] = [
    [4000, "bye", 4000],
    [1001, "tab closed", 1001],
    [1006, "", 1011],
    [1005, "", 1000],
  ];
  for (const [code, reason, seen] of cases) {
    const c = openClient(hub);
    await settle();
    const s = host.stream(c.handle!.streamId);
    const got = new Promise<[number, string]>((r) => {
      s.onClose = (cc, rr) => r([cc, rr]);
    });
    c.handle!.closed(code, reason);
    assert.deepEqual(await got, [seen, reason], `client close ${code}`);
    c.handle!.message("after close");
  }
  await settle();
  assert.equal(hub.stats().streams, 0, "closed streams leave the hub");
});

test("HTTP over the link: one body message each way, the host's status and headers", async () => {
  const { hub, publicJwk } = await makeHub();
  linkHost(hub, publicJwk);
  const reply = await hub.forwardHttp(
    clientMeta({ kind: "http", method: "POST", path: "/api" }),
    new TextEncoder().encode("ping"),
  );
  assert.equal(reply.status, 200);
  assert.equal(reply.headers["content-type"], "text/plain");
  assert.equal(await new Response(reply.body).text(), "POST /api ping");
  const get = await hub.forwardHttp(clientMeta({ kind: "http", method: "GET", path: "/x" }), undefined);
  assert.equal(await new Response(get.body).text(), "GET /x", "a GET sends no body message");
});

test("revocation pushed by the host closes that token's streams with 4401, and only those", async () => {
  const pushed: string[][] = [];
  const { hub, publicJwk } = await makeHub({}, { onRevocations: (ids) => pushed.push(ids) });
  const host = linkHost(hub, publicJwk);
  const bad1 = openClient(hub, { tokenId: "bad" });
  const bad2 = openClient(hub, { tokenId: "bad", clientAddr: "192.0.2.9" });
  const good = openClient(hub, { tokenId: "good" });
  await settle();
  const hostSide = host.stream(bad1.handle!.streamId);
  const hostClose = new Promise<number>((r) => {
    hostSide.onClose = (code) => r(code);
  });
  host.mux.sendControl({ type: "revocations", ids: ["bad", 42, "x".repeat(300)] });
  await settle();
  for (const c of [bad1, bad2]) assert.deepEqual(c.sock.closed, { code: RelayClose.REVOKED, reason: "token revoked" });
  assert.equal(await hostClose, RelayClose.REVOKED, "the host is told too");
  assert.equal(good.sock.closed, undefined);
  good.handle!.message("still here");
  await settle();
  assert.deepEqual(good.sock.received, ["still here"]);
  assert.equal(hub.isRevoked("bad"), true);
  assert.deepEqual(pushed, [["bad"]], "only well-formed ids are kept");
  // A new list replaces the old one.
  host.mux.sendControl({ type: "revocations", ids: [] });
  await settle();
  assert.equal(hub.isRevoked("bad"), false);
});

test("per-host stream cap: the next client is refused with 1013 and HTTP with 503", async () => {
  const { hub, publicJwk, metrics } = await makeHub({
    maxStreamsPerHost: 3,
    maxStreamsPerToken: 3,
    maxStreamsPerClientAddr: 3,
  });
  linkHost(hub, publicJwk);
  const open = [0, 1, 2].map((i) => openClient(hub, { tokenId: `t${i}`, clientAddr: `192.0.2.${i}` }));
  assert.ok(open.every((c) => c.handle));
  const over = openClient(hub, { tokenId: "t9", clientAddr: "192.0.2.9" });
  assert.equal(over.handle, undefined);
  assert.deepEqual(over.sock.closed, { code: RelayClose.TRY_AGAIN, reason: "too many streams for this host" });
  const reply = await hub.forwardHttp(clientMeta({ kind: "http", method: "GET", tokenId: "t9" }), undefined);
  assert.equal(reply.status, 503);
  assert.equal(snap(metrics).refusals.stream_cap, 2);
  open[0]!.handle!.closed(1000, "");
  await settle();
  assert.ok(openClient(hub, { tokenId: "t9", clientAddr: "192.0.2.9" }).handle, "a freed slot is usable again");
});

test("per-token and per-address caps refuse below the per-host one, and free up when streams close", async () => {
  const { hub, publicJwk } = await makeHub({
    maxStreamsPerHost: 16,
    maxStreamsPerToken: 2,
    maxStreamsPerClientAddr: 3,
  });
  linkHost(hub, publicJwk);
  const t1a = openClient(hub, { tokenId: "t1", clientAddr: "192.0.2.1" });
  openClient(hub, { tokenId: "t1", clientAddr: "192.0.2.2" });
  const t1c = openClient(hub, { tokenId: "t1", clientAddr: "192.0.2.3" });
  assert.equal(t1c.handle, undefined);
  assert.deepEqual(t1c.sock.closed, { code: RelayClose.TRY_AGAIN, reason: "too many streams for this token (2)" });
  assert.deepEqual(hub.admission(clientMeta({ tokenId: "t1", clientAddr: "192.0.2.3" })), {
    status: 429,
    text: "too many streams for this token (2)\n",
  });
  openClient(hub, { tokenId: "t2", clientAddr: "192.0.2.1" });
  openClient(hub, { tokenId: "t3", clientAddr: "192.0.2.1" });
  const addr = openClient(hub, { tokenId: "t4", clientAddr: "192.0.2.1" });
  assert.equal(addr.handle, undefined);
  assert.equal(addr.sock.closed?.reason, "too many streams from this address (3)");
  const http = await hub.forwardHttp(clientMeta({ kind: "http", method: "GET", tokenId: "t5" }), undefined);
  assert.equal(http.status, 429, "HTTP counts against the same caps");
  t1a.handle!.closed(1000, "");
  assert.ok(openClient(hub, { tokenId: "t1", clientAddr: "192.0.2.4" }).handle, "the token's slot is free again");
});

test("a client that does not read stalls only its own stream (credit); it catches up when it reads", async () => {
  const { hub, publicJwk } = await makeHub();
  const host = linkHost(hub, publicJwk);
  const slow = openClient(hub, { tokenId: "slow" });
  const fast = openClient(hub, { tokenId: "fast" });
  await settle();
  slow.sock.hold = true;
  const chunk = new Uint8Array(64 * 1024);
  const hostSlow = host.stream(slow.handle!.streamId);
  for (let i = 0; i < 32; i++) hostSlow.sendMessage(chunk); // 2 MiB, eight windows
  await settle(20);
  const stalledAt = slow.sock.received.length;
  assert.ok(stalledAt < 32, `the slow client got ${stalledAt} of 32 before credit ran out`);
  assert.ok(hostSlow.queuedBytes > 0, "the rest waits at the host, not at the relay");
  for (let i = 0; i < 10; i++) host.stream(fast.handle!.streamId).sendMessage(`fast-${i}`);
  await settle();
  assert.equal(fast.sock.received.length, 10, "the other stream is not blocked");
  slow.sock.drain();
  await settle(40);
  assert.equal(slow.sock.received.length, 32, "everything arrives once the client reads");
});

test("a host that does not read pauses the sending client, and only that one; it resumes on drain", async () => {
  const { hub, publicJwk } = await makeHub();
  const host = linkHost(hub, publicJwk, { echo: false });
  const pusher = openClient(hub, { tokenId: "pusher" });
  const other = openClient(hub, { tokenId: "other" });
  await settle();
  // The receive window (1 MiB granted at open) plus the high-water mark (512 KiB) and more: credit runs out, the queue grows.
  const big = new Uint8Array(128 * 1024);
  const pushed = 16;
  for (let i = 0; i < pushed; i++) pusher.handle!.message(big);
  other.handle!.message("small");
  await settle();
  assert.equal(pusher.sock.paused, true);
  assert.equal(other.sock.paused, false);
  const heldBefore = host.held.length;
  assert.ok(
    heldBefore < pushed + 1,
    `the host got ${heldBefore} of ${pushed + 1} messages: the rest waits at the relay`,
  );
  // The host reads now: everything it got and gets is released.
  host.stream(pusher.handle!.streamId).onMessage = (_d, _b, release) => {
    host.held.push(() => {});
    release();
  };
  for (const release of host.held.splice(0, heldBefore)) release();
  await settle(40);
  assert.equal(pusher.sock.paused, false, "resumed once its queue drained");
  assert.equal(host.held.length + heldBefore, pushed + 1, "every message reached the host");
});

test("link loss closes every client stream with 1012 (reconnect) and the host goes offline", async () => {
  const { hub, publicJwk, metrics } = await makeHub();
  const host = linkHost(hub, publicJwk);
  const clients = [openClient(hub), openClient(hub, { tokenId: "t2" })];
  await settle();
  host.handle.closed();
  for (const c of clients)
    assert.deepEqual(c.sock.closed, { code: RelayClose.RESTART, reason: "host link lost; reconnect" });
  assert.equal(hub.linked, false);
  assert.equal(hub.admission(clientMeta())?.status, 503);
  assert.equal(snap(metrics).linkDrops.closed, 1);
});

test("a newer link replaces the old one: old streams and the old link close with 1012, new clients use the new link", async () => {
  const { hub, publicJwk, metrics } = await makeHub();
  const first = linkHost(hub, publicJwk);
  const old = openClient(hub);
  await settle();
  const second = linkHost(hub, publicJwk);
  assert.deepEqual(old.sock.closed, { code: RelayClose.RESTART, reason: "host link replaced; reconnect" });
  assert.equal(first.linkClosed?.code, 1012);
  first.handle.closed(); // the old socket's close arrives late: it must not drop the new link
  assert.equal(hub.linked, true);
  const fresh = openClient(hub);
  fresh.handle!.message("hello");
  await settle();
  assert.deepEqual(fresh.sock.received, ["hello"]);
  assert.equal(second.streams.length, 1);
  const s = snap(metrics);
  assert.deepEqual([s.linkConnects, s.linkReconnects, s.linkDrops.replaced], [2, 1, 1]);
});

test("a stream id reused after an eviction fails only the stream it hit; the link and other streams go on", async () => {
  const { hub, publicJwk, hostId } = await makeHub();
  const host = linkHost(hub, publicJwk);
  const a = openClient(hub, { tokenId: "a" });
  const b = openClient(hub, { tokenId: "b" });
  await settle();
  const oldA = host.stream(a.handle!.streamId);
  const oldAClosed = new Promise<[number, string]>((r) => {
    oldA.onClose = (code, reason) => r([code, reason]);
  });
  // The hub is evicted and rebuilt with a stale next-stream id; b's socket survived, a's state was lost.
  const log = { info: () => {}, warn: () => {} };
  const reborn = new HostHub(hostId, publicJwk, DEFAULT_RELAY_LIMITS, log, { heartbeat: "external" });
  let linkClosed: number | undefined;
  host.handle = reborn.restoreLink(
    {
      send: (f) => typeof f !== "string" && queueMicrotask(() => host.mux.receive(f)),
      close: (code) => {
        linkClosed = code;
      },
    },
    a.handle!.streamId,
  );
  const bSock = new FakeClient();
  const bAgain = reborn.restoreClient(bSock, b.handle!.streamId, "b");
  const c = new FakeClient();
  const cHandle = reborn.attachClient(c, clientMeta({ tokenId: "c" }));
  assert.equal(cHandle?.streamId, a.handle!.streamId, "the stale id is handed out again");
  await settle();
  assert.deepEqual(await oldAClosed, [1011, "the relay reused this stream id"]);
  cHandle!.message("new stream");
  bAgain!.message("old stream");
  await settle();
  assert.deepEqual(c.received, ["new stream"]);
  assert.deepEqual(bSock.received, ["old stream"]);
  assert.equal(linkClosed, undefined, "the link stayed up");
  assert.equal(reborn.linked, true);
});
