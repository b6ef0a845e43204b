/**
 * A local TLS terminator for tests: accepts TLS on 127.0.0.1:0 with a
 * self-signed certificate and pipes the plaintext to a TCP port. It counts
 * the application bytes each TLS connection delivered, so a test can prove a
 * client with a wrong pin sent nothing.
 */
import { createServer, type TLSSocket } from "node:tls";
import { connect } from "node:net";
import { loadOrCreateRelayCert, type RelayCert } from "../../relay/node/certificate.ts";
import { tempDir } from "./proc.ts";

export interface Terminator {
  port: number;
  cert: RelayCert;
  /** Application bytes received over TLS, summed over all connections. */
  bytesReceived(): number;
  /** TCP connections accepted (a pin check needs the TLS handshake, so it counts too). */
  connections(): number;
  close(): Promise<void>;
}

export async function startTlsTerminator(targetPort: number, cert?: RelayCert): Promise<Terminator> {
  const c = cert ?? (await loadOrCreateRelayCert(tempDir("loopgate-cert-")));
  let bytes = 0;
  let conns = 0;
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: c.certPem, key: c.keyPem }, (tls) => {
    sockets.add(tls);
    const up = connect(targetPort, "127.0.0.1");
    tls.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    tls.pipe(up).pipe(tls);
    const end = () => {
      tls.destroy();
      up.destroy();
      sockets.delete(tls);
    };
    tls.on("error", end);
    up.on("error", end);
    tls.on("close", end);
    up.on("close", end);
  });
  server.on("connection", () => conns++);
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : 0,
    cert: c,
    bytesReceived: () => bytes,
    connections: () => conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
