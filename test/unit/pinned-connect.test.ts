import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:tls";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectVerifiedTls } from "../../agent/tls/pinned-connect.ts";
import { loadOrCreateRelayCert, type RelayCert } from "../../relay/node/certificate.ts";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";

const newCert = () => loadOrCreateRelayCert(mkdtempSync(join(tmpdir(), "loopgate-pinned-")));

/** A TLS server on 127.0.0.1 that counts the bytes each connection sent it. */
async function tlsServer(cert: RelayCert): Promise<{ port: number; received: number[]; server: Server }> {
  const received: number[] = [];
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    const i = received.push(0) - 1;
    s.on("data", (d: Buffer) => (received[i]! += d.length));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => server.close());
  return { port: (server.address() as AddressInfo).port, received, server };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** The error code a connection attempt was refused with; an accepted one is closed and fails the test. */
async function refusal(attempt: Promise<import("node:tls").TLSSocket>): Promise<string> {
  try {
    (await attempt).destroy();
  } catch (e) {
    return e instanceof LoopgateError ? e.code : String(e);
  }
  assert.fail("the connection was accepted");
}

/** Lets the server see whatever the client sent, then closes the client. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
}

test("a wrong pin is refused with nothing written, also right after a verified connection to the same address", async () => {
  const [good, other] = await Promise.all([newCert(), newCert()]);
  const srv = await tlsServer(good);
  for (let i = 0; i < 3; i++) {
    const ok = await connectVerifiedTls("127.0.0.1", srv.port, { pins: [good.pin] });
    // A resumed session has no peer certificate to pin: every connection is a full handshake.
    assert.equal(ok.isSessionReused(), false);
    // The last one does write: the server counts what it gets.
    if (i === 2) await new Promise<void>((r) => ok.end("ping", r));
    else ok.destroy();
    assert.equal(
      await refusal(connectVerifiedTls("127.0.0.1", srv.port, { pins: [other.pin] })),
      ErrorCodes.PIN_MISMATCH,
    );
  }
  await settle();
  assert.equal(sum(srv.received), 4, "only the last verified connection's 4 bytes reached the server");
});

test("without a pin, each connection is checked against its own CAs (`ca`) and host name", async () => {
  const [served, unrelated] = await Promise.all([newCert(), newCert()]);
  const srv = await tlsServer(served);
  const trusted = await connectVerifiedTls("127.0.0.1", srv.port, { ca: served.certPem });
  assert.equal(trusted.authorized, true);
  trusted.destroy();
  for (const opts of [{ ca: unrelated.certPem }, {}]) {
    assert.equal(await refusal(connectVerifiedTls("127.0.0.1", srv.port, opts)), ErrorCodes.TLS_FAILED);
  }
  // Trusted again: the earlier refusals left nothing behind.
  const again = await connectVerifiedTls("127.0.0.1", srv.port, { ca: served.certPem });
  again.destroy();
  await settle();
  assert.equal(sum(srv.received), 0, "no connection sent the server a byte");
});
