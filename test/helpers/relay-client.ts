/**
 * A client of a relay under test, pinned to its certificate: a WebSocket to
 * a host, one echo round trip (is the host still reachable?), and a raw
 * HTTPS/1.1 request for what a well-behaved client library would not send.
 * One copy for the relay e2e, hostile-request and chaos suites.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { importJWK, type CryptoKey, type JWK } from "jose";
import type WebSocket from "ws";
import { connectVerifiedTls, openWebSocket } from "../../agent/tls/pinned-connect.ts";

/** What a client needs to know of a relay: its URL and port, and its certificate's pin. */
export interface RelayAddress {
  url: string;
  port: number;
  pin: string;
}

/** A WebSocket to `hostId` through the relay; `token` as `Authorization: Bearer`. Rejects with the HTTP status in `details`. */
export function relayWebSocket(
  relay: RelayAddress,
  hostId: string,
  token: string | undefined,
  opts: { pin?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<WebSocket> {
  return openWebSocket(`${relay.url}/h/${hostId}`, {
    pins: [opts.pin ?? relay.pin],
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...opts.headers },
    timeoutMs: opts.timeoutMs ?? 10_000,
  });
}

/** One message to the host's echo upstream and its answer. */
export async function echoOnce(
  relay: RelayAddress,
  hostId: string,
  token: string,
  text: string,
  timeoutMs?: number,
): Promise<string> {
  const ws = await relayWebSocket(relay, hostId, token, timeoutMs ? { timeoutMs } : {});
  const got = await new Promise<string>((resolve) => {
    ws.once("message", (d) => resolve(String(d)));
    ws.send(text);
  });
  ws.close();
  return got;
}

/**
 * A raw HTTPS/1.1 request (`head` as written, blank line included) over a
 * pinned TLS connection. Resolves once the response is complete (by its
 * length or its last chunk: some servers keep the socket open anyway), when
 * the connection ends, or after 10 s with whatever came.
 */
export async function rawHttps(
  relay: Pick<RelayAddress, "port" | "pin">,
  head: string,
): Promise<{ status: number; headers: string; body: string }> {
  const sock = await connectVerifiedTls("127.0.0.1", relay.port, { pins: [relay.pin] });
  return new Promise((resolve) => {
    let raw = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      const [h, ...rest] = raw.split("\r\n\r\n");
      resolve({ status: Number(h!.split(" ")[1]), headers: h!, body: rest.join("\r\n\r\n") });
    };
    sock.on("data", (d) => {
      raw += String(d);
      const end = raw.indexOf("\r\n\r\n");
      if (end < 0) return;
      const h = raw.slice(0, end);
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(h);
      if (len && Buffer.byteLength(raw.slice(end + 4)) >= Number(len[1])) finish();
      else if (/\r\ntransfer-encoding:\s*chunked/i.test(h) && raw.endsWith("\r\n0\r\n\r\n")) finish();
    });
    sock.on("error", finish);
    sock.on("end", finish);
    sock.on("close", finish);
    setTimeout(finish, 10_000).unref();
    sock.write(head);
  });
}

/** A raw GET of `path` with these headers (Host: the relay's address). */
export function rawGet(
  relay: Pick<RelayAddress, "port" | "pin">,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: string; body: string }> {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return rawHttps(
    relay,
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\nConnection: close\r\n${lines.join("")}\r\n`,
  );
}

/** A host's key pair from its state dir, to sign tokens no CLI would mint: the private key, and the public JWK a link token carries. */
export async function hostKeys(host: { stateDir: string }): Promise<{ privateKey: CryptoKey; publicJwk: JWK }> {
  const jwk = JSON.parse(readFileSync(join(host.stateDir, "host-key.json"), "utf8")) as JWK;
  const { d: _private, ...publicJwk } = jwk;
  return { privateKey: (await importJWK(jwk, "EdDSA")) as CryptoKey, publicJwk };
}

/** A host's private key from its state dir, to sign tokens no CLI would mint. */
export async function hostSigningKey(host: { stateDir: string }): Promise<CryptoKey> {
  return (await hostKeys(host)).privateKey;
}
