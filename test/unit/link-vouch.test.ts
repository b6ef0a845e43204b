/**
 * The standalone link's vouch header (agent/link/vouch.ts): set only for a
 * client token that verifies with the host key for the relay the link
 * dialled, to the token's id; a copy from anywhere else never reaches the
 * upstream; a token that does not verify refuses the stream. And the hold
 * that keeps a stream's early messages while the token is checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, exportJWK, type CryptoKey, type JWK } from "jose";
import { mintClientToken, hostIdFromJwk } from "../../shared/tokens.ts";
import { LoopgateError } from "../../shared/errors.ts";
import { LinkMux } from "../../shared/link/mux.ts";
import { encodeOpen, encodeData } from "../../shared/link/codec.ts";
import type { LinkStream } from "../../shared/link/stream.ts";
import type { OpenMeta } from "../../shared/link/codec.ts";
import { upstreamRequest } from "../../agent/link/upstream-request.ts";
import { Voucher, checkVouchHeader } from "../../agent/link/vouch.ts";
import { holdMessages } from "../../agent/link/hold-messages.ts";

const RELAY = "wss://relay.example.com:8443";
const AUD = "https://relay.example.com:8443";
const UPSTREAM = "ws://127.0.0.1:18789";

async function host(): Promise<{ privateKey: CryptoKey; publicJwk: JWK; hostId: string }> {
  const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey: privateKey as CryptoKey, publicJwk, hostId: await hostIdFromJwk(publicJwk) };
}

/** The link's voucher for host `h`, naming clients in `header` (x-loopgate-user unless told). */
function voucherFor(
  h: { publicJwk: JWK; hostId: string },
  isRevoked: (id: string) => boolean = () => false,
  header = "x-loopgate-user",
): Voucher {
  return new Voucher({ header, hostId: h.hostId, hostKey: h.publicJwk, relayUrl: RELAY, isRevoked });
}

function open(headers: Record<string, string>, kind: "ws" | "http" = "ws"): OpenMeta {
  return { kind, path: "/", headers, clientAddr: "192.0.2.7" };
}

test("a verified client token is named (its id) in the vouch header, and a forged copy is replaced", async () => {
  const h = await host();
  const revoked = new Set<string>();
  const v = voucherFor(h, (id) => revoked.has(id), "X-Loopgate-User");
  const { token, id } = await mintClientToken(h.privateKey, h.hostId, {
    audience: AUD,
    ttlSec: 600,
    scopes: ["operator.read"],
    name: "laptop",
  });
  const meta = open({ "x-loopgate-client-token": token });
  const req = upstreamRequest(meta, UPSTREAM, AUD);
  // Even if a forged copy got past the relay and upstreamRequest, the link's own value is the only one.
  const forged = {
    ...req,
    headers: { ...req.headers, "x-loopgate-user": "admin@example.com", "X-LOOPGATE-USER": "admin@example.com" },
  };
  const out = await v.vouch(meta, forged);
  assert.equal(out.headers["x-loopgate-user"], id);
  assert.equal(out.headers["x-loopgate-client-token"], undefined, "the upstream never sees the relay token");
  assert.equal(out.headers["x-openclaw-scopes"], "operator.read", "OpenClaw caps the session to the token's scopes");
  assert.equal(Object.keys(out.headers).filter((k) => k.toLowerCase() === "x-loopgate-user").length, 1);
  assert.equal(out.headers["x-loopgate-relay"], "1");
  revoked.add(id);
  await assert.rejects(v.vouch(meta, req), (e: LoopgateError) => e.details?.reason === "revoked");
});

test("no token (plain HTTP): no vouch header, and a client's copy is dropped", async () => {
  const h = await host();
  const v = voucherFor(h);
  const meta = open({}, "http");
  const req = upstreamRequest(meta, UPSTREAM, AUD);
  const out = await v.vouch(meta, {
    ...req,
    headers: { ...req.headers, "x-loopgate-user": "admin@example.com", "x-openclaw-scopes": "operator.admin" },
  });
  assert.equal(out.headers["x-loopgate-user"], undefined);
  assert.equal(out.headers["x-openclaw-scopes"], undefined);
});

test("a token the host key does not vouch for is refused: another host's, another relay's, expired, not a JWT", async () => {
  const h = await host();
  const other = await host();
  const v = voucherFor(h);
  const cases: [string, string, string][] = [
    [
      "another host's",
      (await mintClientToken(other.privateKey, other.hostId, { audience: AUD, ttlSec: 600, scopes: [] })).token,
      "wrong_issuer",
    ],
    [
      "another relay's",
      (
        await mintClientToken(h.privateKey, h.hostId, {
          audience: "https://other.example.com",
          ttlSec: 600,
          scopes: [],
        })
      ).token,
      "wrong_audience",
    ],
    [
      "expired",
      (await mintClientToken(h.privateKey, h.hostId, { audience: AUD, ttlSec: -120, scopes: [] })).token,
      "expired",
    ],
    ["not a JWT", "admin@example.com", "malformed"],
  ];
  for (const [what, token, reason] of cases) {
    const meta = open({ "x-loopgate-client-token": token });
    await assert.rejects(
      v.vouch(meta, { url: new URL("http://127.0.0.1:18789/"), method: "GET", headers: {}, protocols: [] }),
      (e: LoopgateError) => e.details?.reason === reason,
      what,
    );
  }
});

test("a vouch header may not be one the link or a proxy chain already gives a meaning", () => {
  assert.equal(checkVouchHeader(" X-Loopgate-User "), "x-loopgate-user");
  for (const bad of [
    "x-forwarded-for",
    "X-Forwarded-User",
    "x-forwarded-anything",
    "x-loopgate-relay",
    "x-loopgate-client-token",
    "x-openclaw-scopes",
    "x-real-ip",
    "authorization",
    "x-",
    "x-a b",
    "x-é",
  ]) {
    assert.throws(() => checkVouchHeader(bad), LoopgateError, bad);
  }
});

test("messages that arrive while the token is checked are held with their credit, then handed on in order", () => {
  const host = new LinkMux({ role: "host", send: () => {}, onOpen: (s) => opened.push(s) });
  const opened: LinkStream[] = [];
  host.receive(encodeOpen(1, open({})));
  const stream = opened[0]!;
  const held = holdMessages(stream);
  host.receive(encodeData(1, new TextEncoder().encode("one"), false, true));
  host.receive(encodeData(1, new TextEncoder().encode("two"), false, true));
  const got: string[] = [];
  stream.onMessage = (d, _b, release) => {
    got.push(String(d));
    release();
  };
  held.replay();
  assert.deepEqual(got, ["one", "two"]);
});

test("a stream nobody reads after the hold (a GET) gets its old handler back: credit is returned, nothing throws", () => {
  const host = new LinkMux({ role: "host", send: () => {}, onOpen: (s) => opened.push(s) });
  const opened: LinkStream[] = [];
  host.receive(encodeOpen(3, open({}, "http")));
  const stream = opened[0]!;
  const before: string[] = [];
  stream.onMessage = (d, _b, release) => {
    before.push(String(d));
    release();
  };
  const held = holdMessages(stream);
  host.receive(encodeData(3, new TextEncoder().encode("stray"), false, true));
  assert.deepEqual(before, [], "held, not delivered yet");
  held.replay();
  assert.deepEqual(before, ["stray"]);
  host.receive(encodeData(3, new TextEncoder().encode("later"), false, true));
  assert.deepEqual(before, ["stray", "later"], "the old handler reads what follows too");
});
