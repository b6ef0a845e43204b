/**
 * Ports for servers that must be told theirs up front (wrangler, sshd, OpenClaw,
 * a relay whose audiences name its port). Port 0 is still the rule; these are
 * for the programs that cannot report the port they bound.
 *
 * A port the kernel handed out and took back (listen on 0, close) can be handed
 * out again at once, to another test's listener or as the source port of any
 * outgoing connection, before the program we told it to binds it. So the port
 * comes from just below the kernel's ephemeral range, which the kernel never
 * picks by itself: only another `freePort` call can collide, and `onFreePort`
 * retries on a fresh port for that.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const SPAN = 8000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 + 1000 ? low : 0;
  } catch {
    return 0;
  }
}

function bindable(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(undefined));
    s.listen(port, "127.0.0.1", () => {
      const a = s.address();
      const bound = typeof a === "object" && a ? a.port : undefined;
      s.close(() => resolve(bound));
    });
  });
}

/** A port on 127.0.0.1 that nothing holds now, outside the range the kernel assigns by itself where it can tell. */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low > 0) {
    const floor = Math.max(1025, low - SPAN);
    for (let i = 0; i < 50; i++) {
      const port = await bindable(floor + Math.floor(Math.random() * (low - floor)));
      if (port !== undefined) return port;
    }
  }
  const port = await bindable(0);
  if (port === undefined) throw new Error("no free port on 127.0.0.1");
  return port;
}

/** Starts a server on a free port; if that start fails (the port was taken meanwhile), once more on a fresh one. */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  return start(await freePort()).catch(async () => start(await freePort()));
}
