/**
 * `npm run relay:worker`: the Workers relay under local workerd (`wrangler dev
 * --local`), offline and with no account, serving https with the same kind of
 * self-signed certificate the Node relay makes, so the link and clients can pin
 * it. Prints the pin. Options: --port P (default 8787), --allow-host ID
 * (repeatable; default: this machine's host id), --state DIR.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadOrCreateRelayCert } from "../../relay/node/certificate.ts";
import { stateDir } from "../state.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    "allow-host": { type: "string", multiple: true },
    state: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("usage: npm run relay:worker -- [--port 8787] [--allow-host HOST_ID …] [--state DIR]");
  process.exit(0);
}

const dir = values.state ?? join(stateDir(), "worker-relay");
const cert = await loadOrCreateRelayCert(dir);
let allow = values["allow-host"] ?? [];
if (allow.length === 0) {
  const { loadOrCreateHostIdentity } = await import("../identity.ts");
  allow = [(await loadOrCreateHostIdentity()).hostId];
}
console.log(`Workers relay (local workerd) on wss://127.0.0.1:${values.port}`);
console.log(`pin: ${cert.pin}`);
console.log(`allowed hosts: ${allow.join(", ")}`);

const child = spawn(
  join(root, "node_modules", ".bin", "wrangler"),
  [
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    values.port!,
    "--local-protocol",
    "https",
    "--https-key-path",
    join(dir, "relay-key.pem"),
    "--https-cert-path",
    join(dir, "relay-cert.pem"),
    "--persist-to",
    join(dir, "wrangler-state"),
    "--var",
    `ALLOWED_HOSTS:${allow.join(",")}`,
    // Token audiences come from configuration, never from a request's Host header.
    "--var",
    `RELAY_AUDIENCES:https://127.0.0.1:${values.port}`,
  ],
  {
    cwd: root,
    stdio: "inherit",
    // Offline: no metrics, no fetch of the request.cf template.
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
  },
);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
