import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { spawnSync } from "node:child_process";
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

test("a relay that generates its certificate does not load the generator's modules itself", () => {
  // They run in a child process, whose memory goes when it ends. Module hooks record only their own
  // process and thread: what the relay itself resolved while generating.
  const dir = mkdtempSync(join(tmpdir(), "loopgate-cert-"));
  const script = `
    import { registerHooks } from "node:module";
    const seen = [];
    registerHooks({ resolve: (spec, ctx, next) => (seen.push(spec), next(spec, ctx)) });
    const { loadOrCreateRelayCert } = await import(${JSON.stringify(new URL("../../relay/node/certificate.ts", import.meta.url).href)});
    const cert = await loadOrCreateRelayCert(${JSON.stringify(dir)});
    console.log(JSON.stringify({ generated: cert.generated, seen }));
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { generated: boolean; seen: string[] };
  assert.equal(out.generated, true);
  assert.ok(out.seen.length > 0, "the hook saw the relay's own imports");
  assert.deepEqual(
    out.seen.filter((s) => /selfsigned|pkijs|asn1js|@peculiar/.test(s)),
    [],
    "the certificate generator was loaded on the relay's main thread",
  );
});
