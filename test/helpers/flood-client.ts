/**
 * A separate process that floods one host through the relay (so the flood
 * does not share the measuring test's event loop): `node flood-client.ts
 * URL PIN TOKEN STREAMS BYTES [MAX_IN_FLIGHT]`. With MAX_IN_FLIGHT, each
 * socket keeps at most that many bytes sent but not yet echoed (a relay that
 * cannot pause its readers, like Workers, closes a client that outruns its
 * credit). Prints "ready", then echoed MiB each second, until killed; a
 * socket that closes prints "closed CODE REASON".
 */
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";

const [url, pin, token, streams, size, inFlight] = process.argv.slice(2);
const blob = Buffer.alloc(Number(size), 1);
const maxInFlight = Number(inFlight ?? 0) || Infinity;
let received = 0;
const sockets = await Promise.all(
  Array.from({ length: Number(streams) }, () =>
    openWebSocket(url!, { pins: [pin!], headers: { authorization: `Bearer ${token}` }, timeoutMs: 15_000 }),
  ),
);
for (const ws of sockets) {
  let sent = 0;
  let echoed = 0;
  let waiting = false;
  const pump = () => {
    waiting = false;
    if (ws.readyState !== ws.OPEN) return;
    if (sent - echoed + blob.length > maxInFlight) {
      waiting = true;
      return;
    }
    sent += blob.length;
    ws.send(blob, () => setImmediate(pump));
  };
  ws.on("message", (d: Buffer) => {
    received += d.length;
    echoed += d.length;
    if (waiting) pump();
  });
  ws.on("close", (code, reason) => console.log(`closed ${code} ${String(reason)}`));
  ws.on("error", () => {});
  pump();
}
console.log("ready");
setInterval(() => console.log(`mib ${(received / 1048576).toFixed(1)}`), 250);
