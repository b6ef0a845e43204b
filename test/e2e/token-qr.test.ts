/** `loopgate token create --qr`: the terminal QR code opens the Control UI through the relay, signed in with the new token. */
import { hostLabel } from "../../shared/host-label.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { cli, isolatedEnv } from "../helpers/proc.ts";
import { decodeTerminal } from "../helpers/qr.ts";

test("token create --qr prints a QR code of the browser sign-in link carrying the token; without --qr there is none", async () => {
  const env = isolatedEnv({ gateway: { relay: { url: "wss://relay.example.com:8443" } } }, "loopgate-token-qr-");
  const hostId = JSON.parse((await cli(["host", "id", "--json"], { env })).stdout).hostId as string;

  const r = await cli(["token", "create", "--name", "phone", "--qr"], { env });
  assert.equal(r.code, 0, r.stderr);
  const token = /"token": "([^"]+)"/.exec(r.stdout)?.[1];
  assert.ok(token, "the config carries the token");
  const qr = r.stdout.slice(r.stdout.indexOf("clear the screen after):\n") + "clear the screen after):\n".length);
  assert.equal(
    decodeTerminal(qr),
    `https://${hostLabel(hostId)!}.relay.example.com:8443/?token=${token}`,
    "the browser link at the host's own origin",
  );

  const plain = await cli(["token", "create", "--name", "laptop"], { env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(!plain.stdout.includes("█"), "no QR code unless asked");
  assert.ok(!plain.stdout.includes("?token=ey"), "the browser line never carries the token");
});
