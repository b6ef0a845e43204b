/**
 * One host flooding its link, from a process of its own (test/helpers/flood-client.ts):
 * 8 streams of 512 KiB echoes through the relay. The chaos isolation test and the
 * bench's fairness row both time another host's clients while this runs.
 */
import { join } from "node:path";
import { runProcess, ROOT } from "./proc.ts";
import type { RelayKind, RelayProc } from "./relay.ts";

export interface Flood {
  /** The flooding client's process. */
  pid: number;
  /** MiB the flooding host has echoed so far (as the flooder last reported). */
  mib(): number;
  /** The flooder's streams that were closed on it (none expected). */
  closed(): string[];
  stop(): Promise<void>;
}

/** Starts the flood through `relay` to `hostId`, and resolves once it runs (plus half a second to build up). */
export async function startFlood(relay: RelayProc, hostId: string, token: string, kind: RelayKind): Promise<Flood> {
  const proc = runProcess(process.execPath, [
    join(ROOT, "test", "helpers", "flood-client.ts"),
    `${relay.url}/h/${hostId}`,
    relay.pin,
    token,
    "8",
    String(512 * 1024),
    // Workers cannot pause a client's reads: keep the flooder within its credit there.
    kind === "workers" ? String(1024 * 1024) : "0",
  ]);
  await proc.waitForLine((l) => l === "ready");
  await new Promise((r) => setTimeout(r, 500));
  return {
    pid: proc.child.pid!,
    mib: () => Number(/mib ([\d.]+)/.exec(proc.stdout.filter((l) => l.startsWith("mib")).pop() ?? "mib 0")?.[1] ?? 0),
    closed: () => proc.stdout.filter((l) => l.startsWith("closed")),
    stop: async () => {
      await proc.kill("SIGKILL");
    },
  };
}
