/**
 * The byte-level floor: what Node does when it only moves bytes along the
 * relay's route. Two processes, as the relay and the host are:
 *
 *   node bench/floor.ts relay CERT KEY     prints "ready CLIENT_PORT LINK_PORT"
 *   node bench/floor.ts host LINK_PORT UPSTREAM_PORT
 *
 * Clients reach the relay over TLS; the relay multiplexes every client's
 * bytes over one TLS link to the host as [stream u32][length u32][bytes]
 * (length 0 ends the stream), coalescing what one tick writes; the host pipes
 * each stream to a TCP connection to the upstream. No WebSocket parsing, no
 * credit, no auth: a floor for the link's per-message work, not a product.
 */
import { createServer as createTlsServer, connect as tlsConnect, type TLSSocket } from "node:tls";
import { connect as tcpConnect, type Socket, type AddressInfo } from "node:net";
import { readFileSync } from "node:fs";

const HEADER = 8;
const MAX_CHUNK = 64 * 1024;

/** Splits the link's byte stream into frames; a frame split across reads is copied once, when whole. */
function frameReader(onFrame: (id: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** Bytes the pending frame needs in all (header included), once its header is in. */
  let need = 0;
  return (chunk) => {
    let buf = chunk;
    if (pendingBytes > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (need === 0 && pendingBytes >= HEADER) {
        const joined = Buffer.concat(pending, pendingBytes);
        pending = [joined];
        need = HEADER + joined.readUInt32BE(4);
      }
      if (need === 0 || pendingBytes < need) return;
      buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      need = 0;
    }
    let off = 0;
    while (buf.length - off >= HEADER) {
      const id = buf.readUInt32BE(off);
      const len = buf.readUInt32BE(off + 4);
      if (buf.length - off - HEADER < len) {
        need = HEADER + len;
        break;
      }
      onFrame(id, buf.subarray(off + HEADER, off + HEADER + len));
      off += HEADER + len;
    }
    if (off < buf.length) {
      pending = [buf.subarray(off)];
      pendingBytes = buf.length - off;
    }
  };
}

/** Writes frames to the link, corked for the rest of the tick so small ones share a TLS record. */
function frameWriter(link: Socket): (id: number, payload: Buffer) => void {
  let corked = false;
  return (id, payload) => {
    if (!corked) {
      corked = true;
      link.cork();
      process.nextTick(() => {
        corked = false;
        link.uncork();
      });
    }
    for (let off = 0; off < payload.length || (payload.length === 0 && off === 0); off += MAX_CHUNK) {
      const part = payload.subarray(off, off + MAX_CHUNK);
      const h = Buffer.allocUnsafe(HEADER);
      h.writeUInt32BE(id, 0);
      h.writeUInt32BE(part.length, 4);
      link.write(h);
      if (part.length > 0) link.write(part);
      if (payload.length === 0) break;
    }
  };
}

function relay(certFile: string, keyFile: string): void {
  const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  let link: TLSSocket | undefined;
  let send: ((id: number, payload: Buffer) => void) | undefined;
  const clients = new Map<number, TLSSocket>();
  let nextId = 1;
  const linkServer = createTlsServer(tls, (s) => {
    link = s;
    s.setNoDelay(true);
    send = frameWriter(s);
    s.on(
      "data",
      frameReader((id, payload) => {
        const c = clients.get(id);
        if (!c) return;
        if (payload.length === 0) {
          clients.delete(id);
          c.end();
        } else c.write(payload);
      }),
    );
    s.on("error", () => {});
  });
  const clientServer = createTlsServer(tls, (c) => {
    const id = nextId++;
    clients.set(id, c);
    c.setNoDelay(true);
    c.on("data", (d: Buffer) => send?.(id, d));
    const end = () => {
      if (clients.delete(id)) send?.(id, Buffer.alloc(0));
    };
    c.on("end", end);
    c.on("close", end);
    c.on("error", () => {});
  });
  linkServer.listen(0, "127.0.0.1", () => {
    clientServer.listen(0, "127.0.0.1", () => {
      process.stdout.write(
        `ready ${(clientServer.address() as AddressInfo).port} ${(linkServer.address() as AddressInfo).port}\n`,
      );
    });
  });
  void link;
}

function host(linkPort: number, upstreamPort: number): void {
  const link = tlsConnect({ host: "127.0.0.1", port: linkPort, rejectUnauthorized: false }, () =>
    process.stdout.write("linked\n"),
  );
  link.setNoDelay(true);
  const send = frameWriter(link);
  const upstreams = new Map<number, Socket>();
  link.on(
    "data",
    frameReader((id, payload) => {
      let u = upstreams.get(id);
      if (payload.length === 0) {
        upstreams.delete(id);
        u?.end();
        return;
      }
      if (!u) {
        const sock = tcpConnect({ host: "127.0.0.1", port: upstreamPort, noDelay: true });
        upstreams.set(id, sock);
        sock.on("data", (d: Buffer) => send(id, d));
        const end = () => {
          if (upstreams.delete(id)) send(id, Buffer.alloc(0));
        };
        sock.on("end", end);
        sock.on("close", end);
        sock.on("error", () => {});
        u = sock;
      }
      u.write(payload);
    }),
  );
  link.on("close", () => process.exit(0));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "relay" && a && b) relay(a, b);
else if (mode === "host" && a && b) host(Number(a), Number(b));
else {
  process.stderr.write("usage: floor.ts relay CERT KEY | floor.ts host LINK_PORT UPSTREAM_PORT\n");
  process.exit(2);
}
