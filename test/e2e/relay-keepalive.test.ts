/**
 * The Node relay's socket keepalive, with a short interval: a peer is dropped
 * only after the timeout (three silent intervals), any frame it sends counts
 * as a sign of life (a client that is busy sending but slow to pong stays),
 * and one that is silent past the timeout is cut.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { echoRigForSuite } from "../helpers/relay.ts";

const HB = 300;

describe("Node relay keepalive", () => {
  const rig = echoRigForSuite("node", ["--heartbeat-ms", String(HB)]);

  /** A client that never answers pings by itself (the pin is checked elsewhere; this is 127.0.0.1 only). */
  function noPongClient(): Promise<WebSocket> {
    const ws = new WebSocket(`${rig.relay.url}/h/${rig.host.hostId}`, {
      rejectUnauthorized: false,
      autoPong: false,
      headers: { authorization: `Bearer ${rig.token}` },
    });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
  }

  const closedWithin = (ws: WebSocket, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve(true);
      const t = setTimeout(() => resolve(false), ms);
      ws.once("close", () => {
        clearTimeout(t);
        resolve(true);
      });
    });

  test("a client that sends but never pongs stays; one that is silent is cut after the timeout", async () => {
    const busy = await noPongClient();
    const silent = await noPongClient();
    let pings = 0;
    silent.on("ping", () => pings++);
    let echoed = 0;
    busy.on("message", () => echoed++);
    const sender = setInterval(() => busy.send("still working"), HB / 2);
    const openedAt = Date.now();
    try {
      assert.equal(await closedWithin(silent, HB * 3 + HB * 3), true, "the silent client was dropped");
      const droppedAfter = Date.now() - openedAt;
      assert.ok(droppedAfter >= HB * 3, `not before the timeout (dropped after ${droppedAfter} ms)`);
      assert.ok(pings >= 2, `it was pinged first (${pings} pings)`);
      // Well past the silent one's end, the busy client is still open and echoing.
      assert.equal(await closedWithin(busy, HB * 6), false, "the busy client was not dropped");
      assert.ok(echoed > 10, `its messages kept flowing (${echoed} echoes)`);
    } finally {
      clearInterval(sender);
      busy.terminate();
      silent.terminate();
    }
  });
});
