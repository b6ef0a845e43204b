/**
 * Canonical session keys, as OpenClaw has them: `agent:<agentId>:<key>`.
 * loopgate runs one agent, "main"; the short forms (`main`, `foo`) are
 * aliases of `agent:main:main` and `agent:main:foo`, so one conversation is
 * one session whichever client opened it.
 */
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";

export const AGENT_ID = "main";
export const MAIN_KEY = "main";
export const MAIN_SESSION_KEY = `agent:${AGENT_ID}:${MAIN_KEY}`;

const PREFIX = "agent:";

/** True when the key is already in the canonical `agent:<id>:<rest>` form. */
export function isCanonicalSessionKey(key: string): boolean {
  return key.startsWith(PREFIX) && key.indexOf(":", PREFIX.length) > PREFIX.length;
}

/**
 * Maps a client's session key to the canonical one. `agentId`, when a client
 * names one, must be this gateway's agent. Keys of another agent are refused.
 */
export function canonicalSessionKey(key: string, agentId?: string): string {
  if (agentId !== undefined && agentId.trim().toLowerCase() !== AGENT_ID) throw unknownAgent(agentId);
  const k = key.trim();
  if (k === "" || k.toLowerCase() === "agent:" + AGENT_ID) return MAIN_SESSION_KEY;
  if (k.startsWith(PREFIX)) {
    const rest = k.slice(PREFIX.length);
    const colon = rest.indexOf(":");
    const id = colon < 0 ? rest : rest.slice(0, colon);
    if (id.toLowerCase() !== AGENT_ID) throw unknownAgent(id);
    const tail = colon < 0 ? "" : rest.slice(colon + 1);
    return `${PREFIX}${AGENT_ID}:${tail === "" ? MAIN_KEY : tail}`;
  }
  return `${PREFIX}${AGENT_ID}:${k}`;
}

/** The part after `agent:<id>:` (what OpenClaw calls the main key for the main session). */
export function shortSessionKey(canonical: string): string {
  return isCanonicalSessionKey(canonical) ? canonical.slice(canonical.indexOf(":", PREFIX.length) + 1) : canonical;
}

function unknownAgent(id: string): LoopgateError {
  return new LoopgateError(ErrorCodes.SESSION_INVALID, `unknown agent ${JSON.stringify(id.slice(0, 64))}`, {
    hint: `this gateway runs one agent, "${AGENT_ID}": use agent:${AGENT_ID}:<key> or a short key such as ${MAIN_KEY}`,
  });
}
