/**
 * The host's identity: an Ed25519 key made on first use and kept, 0600, in
 * the state dir. Its JWK thumbprint is the host id the relay allow-lists and
 * clients address (wss://RELAY/h/<hostId>).
 */
import { readFileSync, existsSync, linkSync, unlinkSync, writeFileSync, chmodSync } from "node:fs";
import { dirname } from "node:path";
import type { JWK, CryptoKey } from "jose";
import { generateKeyPair } from "jose/key/generate/keypair";
import { exportJWK } from "jose/key/export";
import { importJWK } from "jose/key/import";
import { LoopgateError, ErrorCodes } from "../shared/errors.ts";
import { hostIdFromJwk, checkHostPublicJwk } from "../shared/tokens.ts";
import { statePath, ensureDir } from "./state.ts";

export const HOST_KEY_FILE = "host-key.json";

export interface HostIdentity {
  hostId: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function fromJwk(jwk: JWK): Promise<HostIdentity> {
  const publicJwk = checkHostPublicJwk({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
  const privateKey = (await importJWK(jwk, "EdDSA")) as CryptoKey;
  return { hostId: await hostIdFromJwk(publicJwk), privateKey, publicJwk };
}

export function hostKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return statePath(HOST_KEY_FILE, env);
}

/** Loads the host key, or returns undefined when none exists yet. */
export async function loadHostIdentity(env: NodeJS.ProcessEnv = process.env): Promise<HostIdentity | undefined> {
  const path = hostKeyPath(env);
  if (!existsSync(path)) return undefined;
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(path, "utf8")) as JWK;
  } catch (e) {
    throw new LoopgateError(
      ErrorCodes.CONFIG_UNREADABLE,
      `the host key ${path} is unreadable: ${(e as Error).message}`,
      {
        hint: "restore it from a backup; deleting it makes a new host id (relays and clients must be told)",
      },
    );
  }
  return fromJwk(jwk);
}

/** Loads the host key, creating it on first use. Two processes racing end up with the same key. */
export async function loadOrCreateHostIdentity(
  env: NodeJS.ProcessEnv = process.env,
): Promise<HostIdentity & { created: boolean }> {
  const existing = await loadHostIdentity(env);
  if (existing) return { ...existing, created: false };
  const path = hostKeyPath(env);
  ensureDir(dirname(path));
  const { privateKey } = await generateKeyPair("Ed25519", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify(jwk), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  let created = true;
  try {
    linkSync(tmp, path); // fails if another process got there first
  } catch {
    created = false;
  } finally {
    unlinkSync(tmp);
  }
  const id = await loadHostIdentity(env);
  if (!id) throw new LoopgateError(ErrorCodes.INTERNAL, `could not create the host key at ${path}`);
  return { ...id, created };
}
