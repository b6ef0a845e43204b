/**
 * Opening WebSockets (and raw TLS sockets) to gateways and relays, with the
 * TLS pin checked on the raw socket before a single byte of HTTP is written:
 * a server whose certificate does not match never sees the upgrade request,
 * headers or credentials. Without a pin, CA verification and host-name checks
 * apply, and a failure shows the certificate's pin so the user can pin it
 * after checking it out of band.
 */
import {
  connect as tlsConnect,
  checkServerIdentity,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
} from "node:tls";
import { isIP } from "node:net";
import WebSocket from "ws";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { formatPin, normalizePin, pinMatches } from "../../shared/pin.ts";
import { setBounded } from "../../shared/bounded-map.ts";

export interface OpenOptions {
  pins?: string[];
  headers?: Record<string, string>;
  protocols?: string[];
  timeoutMs?: number;
  maxPayload?: number;
  /**
   * Send frames with an all-zero mask, which both ends skip. Masking guards
   * browsers' traffic against confused intermediaries; our own link runs
   * inside TLS between our own processes, where it is pure per-byte cost.
   */
  zeroMask?: boolean;
  /** Extra CA certificate(s) (PEM) to trust without pinning. */
  ca?: string;
  /**
   * Called with the socket before it opens, so listeners see every message:
   * a server may send its first frame in the same packet as the 101 answer.
   */
  beforeOpen?: (ws: WebSocket) => void;
}

function netError(e: NodeJS.ErrnoException, host: string, port: number): LoopgateError {
  switch (e.code) {
    case "ECONNREFUSED":
      return new LoopgateError(ErrorCodes.UNREACHABLE, `nothing is listening on ${host}:${port} (connection refused)`, {
        hint: "is the gateway (or the ssh -L tunnel, or the relay) running? check the URL and port",
      });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new LoopgateError(ErrorCodes.UNREACHABLE, `cannot resolve ${host}`, {
        hint: "check the host name in the URL",
      });
    case "ETIMEDOUT":
      return new LoopgateError(ErrorCodes.TIMEOUT, `connecting to ${host}:${port} timed out`, {
        hint: "check the network path, or raise --timeout",
      });
    case "ECONNRESET":
    case "EPIPE":
      return new LoopgateError(ErrorCodes.UNREACHABLE, `${host}:${port} reset the connection`, {
        hint: "is it a TLS server? for plaintext use ws://",
      });
    default:
      return new LoopgateError(ErrorCodes.UNREACHABLE, `cannot connect to ${host}:${port}: ${e.code ?? e.message}`, {
        hint: "check the URL",
      });
  }
}

/**
 * One client context per set of trusted CAs (the default store, or an extra
 * `ca`). Without one, tls.connect builds a context per connection, loading
 * the CA store each time: about a millisecond of every connect. A context
 * holds only what to trust; each socket is still verified on its own below.
 * No session is cached anywhere: a resumed TLS 1.3 session carries no peer
 * certificate, so its pin could not be checked.
 */
const contexts = new Map<string, SecureContext>();
const MAX_CONTEXTS = 16;

function clientContext(ca?: string): SecureContext {
  const key = ca ?? "";
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = createSecureContext(ca ? { ca } : {});
    setBounded(contexts, key, ctx, MAX_CONTEXTS);
  }
  return ctx;
}

/**
 * Connects TLS and verifies the server (pin, or CA + host name) before
 * returning the socket. Nothing has been written on it yet.
 */
export function connectVerifiedTls(
  host: string,
  port: number,
  opts: { pins?: string[]; timeoutMs?: number; ca?: string; alpn?: string[] } = {},
): Promise<TLSSocket> {
  const pins = (opts.pins ?? []).map(normalizePin);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      // Verification happens below, before anything is written, so one code path covers pins and CAs.
      rejectUnauthorized: false,
      ALPNProtocols: opts.alpn ?? ["http/1.1"],
      secureContext: clientContext(opts.ca),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new LoopgateError(ErrorCodes.TIMEOUT, `TLS connection to ${host}:${port} timed out after ${timeoutMs} ms`, {
          hint: "check the address, or raise --timeout",
        }),
      );
    }, timeoutMs);
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code
          ? netError(e, host, port)
          : new LoopgateError(ErrorCodes.TLS_FAILED, `TLS handshake with ${host}:${port} failed: ${e.message}`, {
              hint: "is it a TLS server?",
            }),
      );
    });
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      // Checked before getPeerX509Certificate(): after it, Node 24's getPeerCertificate() has no
      // subjectaltname, and every host name would be refused.
      const identityError =
        pins.length === 0 && socket.authorized ? checkServerIdentity(host, socket.getPeerCertificate()) : undefined;
      const cert = socket.getPeerX509Certificate();
      if (!cert) {
        socket.destroy();
        reject(new LoopgateError(ErrorCodes.TLS_FAILED, `${host}:${port} presented no certificate`));
        return;
      }
      const actual = normalizePin(cert.fingerprint256);
      if (pins.length > 0) {
        if (!pinMatches(actual, pins)) {
          socket.destroy();
          reject(
            new LoopgateError(
              ErrorCodes.PIN_MISMATCH,
              `TLS pin mismatch for ${host}:${port}: expected ${pins.map(formatPin).join(" or ")}, got ${formatPin(actual)}`,
              {
                hint: "nothing was sent. If the certificate was rotated on purpose, verify the new pin out of band and update tlsFingerprint; otherwise someone may be intercepting",
                details: { expected: pins, actual },
              },
            ),
          );
          return;
        }
        resolve(socket);
        return;
      }
      if (!socket.authorized || identityError) {
        socket.destroy();
        const why = identityError
          ? identityError.message
          : String(socket.authorizationError ?? "unverified certificate");
        reject(
          new LoopgateError(
            ErrorCodes.TLS_FAILED,
            `TLS verification of ${host}:${port} failed (${why}); its certificate pin is ${formatPin(actual)}`,
            {
              hint: "if you run this relay, check that pin (loopgate relay fingerprint on the relay) and pass it with --tls-fingerprint or gateway.remote.tlsFingerprint",
              details: { actual, reason: why },
            },
          ),
        );
        return;
      }
      resolve(socket);
    });
  });
}

async function refusalBody(res: import("node:http").IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => {
      if (body.length < 512) body += d;
    });
    res.on("end", () => resolve(body.slice(0, 512).trim()));
    res.on("error", () => resolve(body));
    setTimeout(() => resolve(body), 1000).unref();
  });
}

/** Opens a WebSocket; for wss:// the TLS socket is verified (pin or CA) first. */
/** A WebSocket mask generator that leaves the mask all zeros (see OpenOptions.zeroMask). */
export function zeroMask(mask: Uint8Array): void {
  mask.fill(0);
}

export async function openWebSocket(url: string, opts: OpenOptions = {}): Promise<WebSocket> {
  const u = new URL(url);
  const secure = u.protocol === "wss:" || u.protocol === "https:";
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  if (!secure && opts.pins && opts.pins.length > 0) {
    throw new LoopgateError(ErrorCodes.PIN_INVALID, "a TLS pin needs a wss:// URL", {
      hint: "drop the pin for ws:// URLs, or use wss://",
    });
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = Date.now();
  let socket: TLSSocket | undefined;
  if (secure)
    socket = await connectVerifiedTls(host, port, {
      ...(opts.pins ? { pins: opts.pins } : {}),
      timeoutMs,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
  const wsUrl = new URL(url);
  if (wsUrl.protocol === "https:") wsUrl.protocol = "wss:";
  if (wsUrl.protocol === "http:") wsUrl.protocol = "ws:";
  const ws = new WebSocket(wsUrl, opts.protocols ?? [], {
    headers: opts.headers ?? {},
    maxPayload: opts.maxPayload ?? 64 * 1024 * 1024,
    perMessageDeflate: false,
    handshakeTimeout: Math.max(1, timeoutMs - (Date.now() - started)),
    ...(opts.zeroMask ? { generateMask: zeroMask } : {}),
    ...(socket ? { createConnection: () => socket as TLSSocket } : {}),
  });
  opts.beforeOpen?.(ws);
  return new Promise((resolve, reject) => {
    const fail = (e: LoopgateError) => {
      ws.removeAllListeners("open");
      ws.terminate();
      reject(e);
    };
    ws.once("open", () => {
      ws.removeAllListeners("unexpected-response");
      resolve(ws);
    });
    ws.once("unexpected-response", (_req, res) => {
      void refusalBody(res).then((body) => {
        const status = res.statusCode ?? 0;
        const text = body ? `: ${body}` : "";
        if (status === 401 || status === 403) {
          fail(
            new LoopgateError(
              ErrorCodes.AUTH_REFUSED,
              `${host}:${port} refused the connection with HTTP ${status}${text}`,
              { hint: "check the token (loopgate token create on the host mints one)", details: { status } },
            ),
          );
        } else {
          fail(
            new LoopgateError(
              status === 503 || status === 502 || status === 404 ? ErrorCodes.UNREACHABLE : ErrorCodes.REQUEST_FAILED,
              `${host}:${port} answered the upgrade with HTTP ${status}${text}`,
              {
                hint: status === 503 ? "the host is not linked to the relay right now" : "check the URL path",
                details: { status },
              },
            ),
          );
        }
      });
    });
    ws.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code) fail(netError(e, host, port));
      else if (/timed out|timeout/i.test(e.message))
        fail(
          new LoopgateError(ErrorCodes.TIMEOUT, `the WebSocket handshake with ${host}:${port} timed out`, {
            hint: "raise --timeout",
          }),
        );
      else
        fail(
          new LoopgateError(ErrorCodes.UNREACHABLE, `WebSocket to ${host}:${port} failed: ${e.message}`, {
            hint: "check the URL",
          }),
        );
    });
  });
}
