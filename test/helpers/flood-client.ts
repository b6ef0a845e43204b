/**
 * A separate process that floods one host through the relay (so the flood
 * does not share the measuring test's event loop): `node flood-client.ts
 * URL PIN TOKEN STREAMS BYTES`. Prints "ready", then echoed MiB each second,
 * until killed.
 */
import { openWebSocket } from "../../agent/tls/pinned-connect.ts";

const [url, pin, token, streams, size] = process.argv.slice(2);
const blob = Buffer.alloc(Number(size), 1);
let received = 0;
const sockets = await Promise.all(Array.from({ length: Number(streams) }, () => openWebSocket(url!, { pins: [pin!], headers: { authorization: `Bearer ${token}` }, timeoutMs: 15_000 })));
for (const ws of sockets) {
  ws.on("message", (d: Buffer) => (received += d.length));
  ws.on("error", () => {});
  const pump = () => {
    if (ws.readyState === ws.OPEN) ws.send(blob, () => setImmediate(pump));
  };
  pump();
}
console.log("ready");
setInterval(() => console.log(`mib ${(received / 1048576).toFixed(0)}`), 1000);
