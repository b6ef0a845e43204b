import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, calculateJwkThumbprint } from "jose";
import { hostLabel, hostIdFromLabel, hostOrigin, HOST_LABEL } from "../../shared/host-label.ts";

test("a host id and its DNS label map one to one (canonical forms only)", async () => {
  for (let i = 0; i < 50; i++) {
    const { publicKey } = await generateKeyPair("Ed25519", { extractable: true });
    const id = await calculateJwkThumbprint(await exportJWK(publicKey));
    const label = hostLabel(id)!;
    assert.match(label, HOST_LABEL);
    assert.ok(label.length <= 63);
    assert.equal(hostIdFromLabel(label), id);
    assert.equal(hostIdFromLabel(label.toUpperCase()), id, "DNS is case-insensitive");
  }
  // Two ids that differ only in case get different labels.
  const a = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const b = "aAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert.notEqual(hostLabel(a), hostLabel(b));
  // A non-canonical last character (spare bits set) is not an id; a label with spare bits set is not a label.
  assert.equal(hostLabel("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"), undefined);
  assert.equal(hostIdFromLabel("a".repeat(51) + "b"), undefined);
  assert.equal(hostIdFromLabel("a".repeat(51)), undefined);
  assert.equal(hostIdFromLabel("xn--" + "a".repeat(48)), undefined);
  assert.equal(hostLabel("short"), undefined);
});

test("a host's origin is a subdomain of the relay's host name, never of an IP", () => {
  const id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert.equal(hostOrigin(id, "wss://relay.example.com:8443"), `https://${hostLabel(id)}.relay.example.com:8443`);
  assert.equal(hostOrigin(id, "https://relay.example.com/"), `https://${hostLabel(id)}.relay.example.com`);
  assert.equal(hostOrigin(id, "wss://127.0.0.1:8443"), undefined);
  assert.equal(hostOrigin(id, "wss://[::1]:8443"), undefined);
});
