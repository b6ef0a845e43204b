/**
 * Relay memory figures for the bench: resident memory at rest (host linked,
 * no client yet) and per idle client. RSS counts the runtime binary's mapped
 * pages, which every process of that binary shares; its anonymous part
 * (RssAnon) is what this relay alone costs.
 */
import { readFileSync } from "node:fs";
import type { PathTarget } from "./paths.ts";
import type { Report } from "./report.ts";

export interface ProcessMemory {
  rssKiB: number;
  anonKiB: number;
}

export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon") };
  } catch {
    return undefined;
  }
}

/** Each relay path's relay process at rest, after `settleMs` without traffic. */
export async function relayIdleMemory(
  paths: readonly PathTarget[],
  settleMs = 2000,
): Promise<Record<string, ProcessMemory>> {
  await new Promise((r) => setTimeout(r, settleMs));
  const out: Record<string, ProcessMemory> = {};
  for (const p of paths) {
    const pid = p.pids.relay;
    const m = pid !== undefined ? processMemory(pid) : undefined;
    if (m) out[p.name] = m;
  }
  return out;
}

/**
 * The relay's KiB per idle client, from the idle-clients phase
 * (report.extra["idle <path>"]): 5 s after the last one opened, or settled
 * (once V8's memory reducer has returned the connection burst's garbage).
 */
export function relayKibPerClient(
  report: Report,
  paths: readonly PathTarget[],
  field: "kibPerClient" | "kibPerClientSettled" = "kibPerClient",
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of paths) {
    const r = report.extra[`idle ${p.name}`] as Partial<Record<typeof field, Record<string, number>>> | undefined;
    const v = r?.[field]?.relay;
    if (v !== undefined && !Number.isNaN(v)) out[p.name] = v;
  }
  return out;
}
