/**
 * Turns a bind mode into listen addresses, and listens.
 * loopback: 127.0.0.1 (+ ::1 when the host has it); lan: all interfaces;
 * tailnet: the Tailscale address only; custom: one given address;
 * auto: loopback, falling back to all interfaces only when loopback is
 * unavailable (and saying so).
 */
import type { Server } from "node:http";
import { networkInterfaces } from "node:os";
import { execFile } from "node:child_process";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import type { BindMode } from "../../shared/config/schema.ts";
import { classifyIp, parseV6 } from "../../shared/url-safety.ts";

export interface ListenResult {
  addresses: { address: string; port: number; family: string }[];
  port: number;
  /** Set when auto fell back beyond loopback. */
  fellBack: boolean;
  notes: string[];
}

function listenOnce(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host, port, ipv6Only: host.includes(":"), exclusive: true });
  });
}

function bindError(host: string, port: number, err: NodeJS.ErrnoException): LoopgateError {
  if (err.code === "EADDRINUSE") {
    return new LoopgateError(ErrorCodes.BIND_FAILED, `port ${port} on ${host} is already in use`, {
      hint: "is another gateway running? stop it, or pick another port with --port (0 picks a free one)",
    });
  }
  if (err.code === "EACCES") {
    return new LoopgateError(ErrorCodes.BIND_FAILED, `not allowed to listen on ${host}:${port}`, {
      hint: "use a port above 1024",
    });
  }
  return new LoopgateError(ErrorCodes.BIND_FAILED, `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, {
    hint: "check the address exists on this machine",
  });
}

const TAILNET_V6 = [0xfd7a, 0x115c, 0xa1e0];

export function isTailnetAddress(addr: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(addr);
  if (v4) return Number(v4[1]) === 100 && Number(v4[2]) >= 64 && Number(v4[2]) <= 127;
  const v6 = parseV6(addr);
  return v6 !== undefined && v6[0] === TAILNET_V6[0] && v6[1] === TAILNET_V6[1] && v6[2] === TAILNET_V6[2];
}

/** Finds the host's Tailscale address: a tailscale* interface first, then `tailscale ip`. */
export async function findTailnetAddress(
  opts: { interfaces?: ReturnType<typeof networkInterfaces>; tailscaleBin?: string } = {},
): Promise<string | undefined> {
  const ifs = opts.interfaces ?? networkInterfaces();
  const candidates: string[] = [];
  for (const [name, addrs] of Object.entries(ifs)) {
    if (!name.startsWith("tailscale")) continue;
    for (const a of addrs ?? []) if (isTailnetAddress(a.address)) candidates.push(a.address);
  }
  const v4 = candidates.find((c) => c.includes("."));
  if (v4 ?? candidates[0]) return v4 ?? candidates[0];
  const out = await new Promise<string>((resolve) => {
    execFile(opts.tailscaleBin ?? "tailscale", ["ip", "-4"], { timeout: 3000 }, (err, stdout) =>
      resolve(err ? "" : String(stdout)),
    );
  });
  return out
    .split(/\s+/)
    .map((s) => s.trim())
    .find((s) => s !== "" && isTailnetAddress(s));
}

/** Listens `makeServer()` servers on the addresses of `bind`. */
export async function listenForBind(opts: {
  bind: BindMode;
  port: number;
  customHost?: string;
  makeServer: () => Server;
  /** May we go beyond loopback if auto needs to? (auth is configured) */
  canExpose: boolean;
  tailnetAddress?: () => Promise<string | undefined>;
}): Promise<{ servers: Server[]; result: ListenResult }> {
  const servers: Server[] = [];
  const addresses: ListenResult["addresses"] = [];
  const notes: string[] = [];
  let port = opts.port;
  const tryListen = async (host: string, required: boolean): Promise<boolean> => {
    const s = opts.makeServer();
    try {
      port = await listenOnce(s, host, port);
      servers.push(s);
      addresses.push({ address: host, port, family: host.includes(":") ? "IPv6" : "IPv4" });
      return true;
    } catch (e) {
      s.close();
      const err = e as NodeJS.ErrnoException;
      if (required) throw bindError(host, port, err);
      notes.push(`${host} unavailable (${err.code ?? err.message}); not listening there`);
      return false;
    }
  };
  const closeAll = () => servers.forEach((s) => s.close());

  try {
    switch (opts.bind) {
      case "loopback":
        await tryListen("127.0.0.1", true);
        await tryListen("::1", false);
        return { servers, result: { addresses, port, fellBack: false, notes } };
      case "auto": {
        const v4 = await tryListen("127.0.0.1", false);
        const v6 = await tryListen("::1", false);
        if (v4 || v6) return { servers, result: { addresses, port, fellBack: false, notes } };
        if (!opts.canExpose) {
          throw new LoopgateError(
            ErrorCodes.BIND_REFUSED,
            "bind auto: loopback is unavailable, and falling back beyond loopback needs token or password auth",
            {
              hint: "configure gateway.auth.token or a password, or fix the loopback interface",
            },
          );
        }
        notes.push("loopback is unavailable: bind auto fell back to all interfaces (auth required)");
        await tryListen("0.0.0.0", true);
        return { servers, result: { addresses, port, fellBack: true, notes } };
      }
      case "lan":
        await tryListen("0.0.0.0", true);
        return { servers, result: { addresses, port, fellBack: false, notes } };
      case "custom": {
        const host = opts.customHost as string;
        if (classifyIp(host) === undefined && host !== "localhost") {
          throw new LoopgateError(
            ErrorCodes.CONFIG_INVALID,
            `custom bind address must be an IP address (got ${JSON.stringify(host.slice(0, 64))})`,
            {
              hint: "use e.g. --bind custom --host 192.168.1.10",
            },
          );
        }
        await tryListen(host, true);
        return { servers, result: { addresses, port, fellBack: false, notes } };
      }
      case "tailnet": {
        const addr = await (opts.tailnetAddress ?? (() => findTailnetAddress()))();
        if (!addr) {
          throw new LoopgateError(
            ErrorCodes.BIND_FAILED,
            "bind tailnet: no Tailscale address found on this host (no tailscale* interface with a 100.64.0.0/10 or fd7a:115c:a1e0::/48 address, and `tailscale ip` gave none)",
            {
              hint: "start Tailscale (tailscale up), or use --bind loopback with Tailscale Serve",
            },
          );
        }
        await tryListen(addr, true);
        return { servers, result: { addresses, port, fellBack: false, notes } };
      }
    }
  } catch (e) {
    closeAll();
    throw e;
  }
}
