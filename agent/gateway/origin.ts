/**
 * Browser Origin check on the WebSocket upgrade. Non-browser clients send no
 * Origin and pass. A browser page may connect only from the gateway's own
 * origin (same host:port as the request) or an origin the user allowed
 * (gateway.controlUi.allowedOrigins, and the relay origin for relayed UI).
 */
export function checkOrigin(origin: string | undefined, host: string | undefined, allowed: readonly string[], relayHost?: string): string | undefined {
  if (origin === undefined || origin === "") return undefined;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return "origin not allowed: malformed Origin header";
  }
  if (host !== undefined && o.host.toLowerCase() === host.toLowerCase()) return undefined;
  // Through the relay: the page's own origin is the relay host the browser connected to (HTTPS only).
  if (relayHost !== undefined && o.protocol === "https:" && o.host.toLowerCase() === relayHost.toLowerCase()) return undefined;
  const normalized = `${o.protocol}//${o.host}`.toLowerCase();
  if (allowed.some((a) => a.replace(/\/+$/, "").toLowerCase() === normalized)) return undefined;
  return `origin not allowed: ${normalized.slice(0, 200)} (add it to gateway.controlUi.allowedOrigins if you trust it)`;
}
