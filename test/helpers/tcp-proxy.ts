/**
 * A TCP proxy on 127.0.0.1 that can turn into a black hole: after
 * `blackhole()` it keeps every connection open but silently drops all bytes
 * both ways, like a middlebox that lost its state. Links must notice through
 * heartbeats, since no FIN or RST ever arrives.
 */
import { createServer, connect, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  blackhole(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let dropping = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.on("data", (d) => {
      if (!dropping) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!dropping) client.write(d);
    });
    // A black hole passes no FIN or RST either: each side only learns from its own heartbeats.
    client.on("close", () => {
      if (!dropping) upstream.destroy();
    });
    upstream.on("close", () => {
      if (!dropping) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const a = server.address();
  return {
    port: typeof a === "object" && a ? a.port : 0,
    blackhole: () => {
      dropping = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
