/**
 * The relay's certificate: loaded from --cert/--key, or generated once
 * (self-signed, EC P-256, SHA-256) and kept in the state dir. Its pin is what
 * clients and hosts configure as tlsFingerprint. A generated certificate
 * names each relay host name and its wildcard (`relay.example.com` and
 * `*.relay.example.com`), since each host has its own origin one label down.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFile } from "node:child_process";
import { getCompileCacheDir } from "node:module";
import type selfsigned from "selfsigned";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { normalizePin } from "../../shared/pin.ts";
import { writeSecretFile, writePublicFile } from "./files.ts";

export interface RelayCert {
  certPem: string;
  keyPem: string;
  /** 64 lowercase hex digits. */
  pin: string;
  generated: boolean;
  certPath: string | undefined;
}

export const CERT_FILE = "relay-cert.pem";
export const KEY_FILE = "relay-key.pem";

export function certPinFromPem(pem: string): string {
  return normalizePin(new X509Certificate(pem).fingerprint256);
}

function isIp(s: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(s) || s.includes(":");
}

/** Loads a user-provided certificate and key, with errors that say what is wrong. */
export function loadCertFiles(certPath: string, keyPath: string): RelayCert {
  const read = (p: string, what: string) => {
    if (!existsSync(p))
      throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${what} file not found: ${p}`, {
        hint: `check --${what === "certificate" ? "cert" : "key"}`,
      });
    return readFileSync(p, "utf8");
  };
  const certPem = read(certPath, "certificate");
  const keyPem = read(keyPath, "key");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${certPath} is not a PEM certificate`, {
      hint: "pass the certificate (-----BEGIN CERTIFICATE-----) as --cert",
    });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new LoopgateError(ErrorCodes.CONFIG_INVALID, `${keyPath} is not a readable PEM private key`, {
      hint: "pass an unencrypted PEM private key as --key",
    });
  }
  if (!cert.checkPrivateKey(key)) {
    throw new LoopgateError(
      ErrorCodes.CONFIG_INVALID,
      `the key ${keyPath} does not belong to the certificate ${certPath}`,
      { hint: "pass the matching key" },
    );
  }
  return { certPem, keyPem, pin: normalizePin(cert.fingerprint256), generated: false, certPath };
}

/** Loads the relay certificate from `dir`, generating and storing one on first use. */
export async function loadOrCreateRelayCert(dir: string, opts: { hostnames?: string[] } = {}): Promise<RelayCert> {
  const certPath = join(dir, CERT_FILE);
  const keyPath = join(dir, KEY_FILE);
  if (existsSync(certPath) && existsSync(keyPath)) return { ...loadCertFiles(certPath, keyPath), generated: false };
  // Each host name also gets its wildcard: every host is served at its own origin `<label>.<name>`
  // (relay/core/host-origin.ts), under this same certificate and so this same pin.
  const dnsNames = ["localhost", ...(opts.hostnames ?? [])].filter((n) => !isIp(n));
  const names = [...dnsNames.flatMap((n) => [n, `*.${n}`]), "127.0.0.1", "::1", ...(opts.hostnames ?? []).filter(isIp)];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const pems = await generateApart([{ name: "commonName", value: opts.hostnames?.[0] ?? "loopgate-relay" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [...new Set(names)].map((n) => (isIp(n) ? { type: 7, ip: n } : { type: 2, value: n })),
      },
    ],
  });
  writeSecretFile(keyPath, pems.private);
  writePublicFile(certPath, pems.cert);
  return { certPem: pems.cert, keyPem: pems.private, pin: certPinFromPem(pems.cert), generated: true, certPath };
}

/**
 * selfsigned's generate(), run in a child process (certificate-generate.ts).
 * Loaded here, its modules would stay in the relay for its whole life (a
 * relay restarted with its certificate never loads them): about 5 MiB of
 * JavaScript heap, marked again by every full collection under traffic, and
 * 11-17 MiB of resident memory. A worker thread gave the heap back but kept
 * 3-8 MiB of resident memory; a process gives back everything. It runs once,
 * on the relay's first start.
 */
type Generate = typeof selfsigned.generate;

function generateApart(
  attrs: Parameters<Generate>[0],
  options: Parameters<Generate>[1],
): Promise<{ cert: string; private: string }> {
  // ".ts" in a checkout (run from source), ".js" in the built package.
  const script = fileURLToPath(
    new URL(`./certificate-generate${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
  );
  return new Promise((resolve, reject) => {
    // The relay's compile cache, when it has one: the child then starts without compiling (or type-stripping) again.
    const cacheDir = getCompileCacheDir?.();
    const env = cacheDir ? { ...process.env, NODE_COMPILE_CACHE: cacheDir } : process.env;
    const child = execFile(process.execPath, [script], { timeout: 60_000, env }, (err, stdout, stderr) => {
      if (!err) {
        try {
          return resolve(JSON.parse(stdout) as { cert: string; private: string });
        } catch {
          // reported below
        }
      }
      // Node prints the error's own line among a stack and a version line: that line says what failed.
      const lines = stderr
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
      const why = lines.find((l) => /^[A-Za-z]*Error\b/.test(l)) ?? err?.message ?? "no certificate came back";
      reject(
        new LoopgateError(ErrorCodes.INTERNAL, `could not generate the relay certificate: ${why}`, {
          hint: "pass a certificate and key of your own with --cert and --key",
        }),
      );
    });
    child.stdin?.end(JSON.stringify({ attrs, options }));
  });
}
