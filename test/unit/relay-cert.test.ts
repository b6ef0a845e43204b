import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateRelayCert } from "../../relay/node/certificate.ts";

test("a generated relay certificate covers each host's origin one label down (one certificate, one pin)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "loopgate-cert-"));
  const cert = await loadOrCreateRelayCert(dir, { hostnames: ["relay.example.com", "10.0.0.7"] });
  const x = new X509Certificate(cert.certPem);
  const san = x.subjectAltName ?? "";
  for (const name of [
    "DNS:relay.example.com",
    "DNS:*.relay.example.com",
    "DNS:localhost",
    "DNS:*.localhost",
    "IP Address:10.0.0.7",
    "IP Address:127.0.0.1",
  ])
    assert.ok(san.split(", ").includes(name), `${name} in ${san}`);
  assert.ok(!san.includes("*.10.0.0.7"), "no wildcard of an IP");
  assert.ok(x.checkHost("oqkyagsalqlotjgysarqonpdfxrp4zdf2r6flt7frd7hrukczx2q.relay.example.com"));
  // Loaded again: the same certificate and pin.
  assert.equal((await loadOrCreateRelayCert(dir)).pin, cert.pin);
});
