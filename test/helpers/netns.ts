/**
 * A test file that re-runs itself inside private network, mount and PID
 * namespaces: `unshare -rnm --pid`, the namespace's `lo` up with one extra,
 * non-loopback address, and a hosts file of its own mounted over /etc/hosts
 * for that run only. Clients there reach a server on that address as they
 * would from elsewhere, and nothing leaves the namespace. Inside, the env var
 * LOOPGATE_NETNS_ADDR holds the address. The inner test runner is PID 1 of
 * its own PID namespace, so when a run overstays its deadline and is killed,
 * every process it started (gateways, chromium, tmux) goes with it.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./proc.ts";

/** User, network, mount and PID namespaces; the child is killed with unshare, and all of the PID namespace with it. */
const UNSHARE = ["-rnm", "--pid", "--fork", "--kill-child", "--mount-proc"];

/** The address inside the namespace, when this process runs there. */
export const NETNS_ADDR: string | undefined = process.env.LOOPGATE_NETNS_ADDR;

/** Undefined when such a namespace can be made here and given an address, else why not. */
export function namespaceUnavailable(addr: string): string | undefined {
  const r = spawnSync("unshare", [...UNSHARE, "sh", "-c", `ip link set lo up && ip addr add ${addr}/32 dev lo`], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (r.error) return `cannot run unshare (${r.error.message}); install util-linux`;
  if (r.status !== 0)
    return `cannot create a network and mount namespace with an address of its own (unshare -rnm --pid, ip addr add: ${(r.stderr || `exit ${r.status}`).trim().split("\n")[0]}); allow unprivileged user namespaces and install iproute2`;
  return undefined;
}

/** Runs `file` (a test file) with node's test runner inside a new namespace where `names` resolve to `addr`; TAP on stdout. */
export function runInNamespace(
  file: string,
  addr: string,
  o: { names: string[]; testTimeoutMs: number; timeoutMs: number },
): SpawnSyncReturns<string> {
  const hosts = join(tempDir("loopgate-netns-"), "hosts");
  writeFileSync(hosts, `127.0.0.1 localhost\n${o.names.map((n) => `${addr} ${n}\n`).join("")}`);
  const script = `mount --bind "$2" /etc/hosts && ip link set lo up && ip addr add ${addr}/32 dev lo && exec "$0" --test --test-reporter=tap --test-timeout=${o.testTimeoutMs} "$1"`;
  return spawnSync("unshare", [...UNSHARE, "sh", "-c", script, process.execPath, file, hosts], {
    // NODE_TEST_CONTEXT would make the inner runner report to ours instead of printing.
    env: { ...process.env, LOOPGATE_NETNS_ADDR: addr, NODE_TEST_CONTEXT: undefined },
    encoding: "utf8",
    timeout: o.timeoutMs,
    killSignal: "SIGKILL",
  });
}
