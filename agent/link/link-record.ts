/**
 * What this host's standalone `loopgate link` fronts, remembered in the state
 * dir (`link.json`, no secrets: relay URL, pins, upstream, the vouch header
 * if the link vouches for its clients) so that
 * `loopgate token create` can print a complete client config, pin included,
 * for the gateway the link actually serves.
 */
import { statePath, writePublicFile, readIfExists } from "../state.ts";

export interface LinkRecord {
  relayUrl: string;
  pins: string[];
  upstream: string;
  /** Set when the link names verified clients to a trusted-proxy upstream (vouch.ts). */
  vouchHeader?: string;
}

const FILE = "link.json";

export function saveLinkRecord(r: LinkRecord): void {
  writePublicFile(statePath(FILE), JSON.stringify(r, null, 2) + "\n");
}

export function loadLinkRecord(): LinkRecord | undefined {
  const raw = readIfExists(statePath(FILE));
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<LinkRecord>;
    if (
      typeof v.relayUrl !== "string" ||
      typeof v.upstream !== "string" ||
      !Array.isArray(v.pins) ||
      !v.pins.every((p) => typeof p === "string")
    )
      return undefined;
    return {
      relayUrl: v.relayUrl,
      pins: v.pins,
      upstream: v.upstream,
      ...(typeof v.vouchHeader === "string" ? { vouchHeader: v.vouchHeader } : {}),
    };
  } catch {
    return undefined;
  }
}
