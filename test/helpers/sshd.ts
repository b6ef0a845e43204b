/**
 * A throwaway OpenSSH server on 127.0.0.1 and an `ssh -N -L` tunnel through
 * it: the remote-access seed's universal fallback, for e2e tests and the
 * bench. Needs Debian's openssh-server (sshd) and openssh-client (ssh);
 * `sshAvailable()` says why not when they are missing.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./free-port.ts";
import { userInfo } from "node:os";
import { join } from "node:path";
import { tempDir } from "./proc.ts";

const SSHD = "/usr/sbin/sshd";

export function sshAvailable(): string | undefined {
  if (!existsSync(SSHD))
    return "sshd not found: install Debian's openssh-server (apt-get install openssh-server); .ci/run does";
  try {
    execFileSync("ssh", ["-V"], { stdio: "ignore" });
  } catch {
    return "ssh not found: install Debian's openssh-client";
  }
  return undefined;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), resolve(true)));
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export interface SshTunnel {
  localPort: number;
  sshdPort: number;
  close(): Promise<void>;
}

/** Starts sshd on 127.0.0.1 and `ssh -N -L localPort:127.0.0.1:targetPort` through it. */
export async function startSshTunnel(targetPort: number): Promise<SshTunnel> {
  const why = sshAvailable();
  if (why) throw new Error(why);
  const dir = tempDir("loopgate-sshd-");
  chmodSync(dir, 0o700);
  const hostKey = join(dir, "host_ed25519");
  const userKey = join(dir, "user_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", userKey]);
  const authorized = join(dir, "authorized_keys");
  writeFileSync(authorized, execFileSync("cat", [`${userKey}.pub`]), { mode: 0o600 });
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const sshdPort = await freePort();
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `Port ${sshdPort}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorized}`,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `PubkeyAuthentication yes`,
      `PermitRootLogin prohibit-password`,
      `StrictModes no`,
      `UsePAM no`,
      `AllowTcpForwarding local`,
      `PermitOpen 127.0.0.1:${targetPort}`,
      `X11Forwarding no`,
      `PrintMotd no`,
      `LogLevel ERROR`,
    ].join("\n") + "\n",
  );
  const sshd: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let sshdErr = "";
  sshd.stderr?.on("data", (d) => (sshdErr += String(d)));
  try {
    await waitForPort(sshdPort, 5000);
  } catch (e) {
    sshd.kill("SIGKILL");
    throw new Error(`sshd did not start: ${sshdErr || (e as Error).message}`);
  }
  const localPort = await freePort();
  const ssh: ChildProcess = spawn(
    "ssh",
    [
      "-N",
      "-L",
      `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
      "-i",
      userKey,
      "-p",
      String(sshdPort),
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "LogLevel=ERROR",
      `${userInfo().username}@127.0.0.1`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let sshErr = "";
  ssh.stderr?.on("data", (d) => (sshErr += String(d)));
  try {
    await waitForPort(localPort, 8000);
  } catch (e) {
    ssh.kill("SIGKILL");
    sshd.kill("SIGKILL");
    throw new Error(`ssh -L did not come up: ${sshErr || (e as Error).message}`);
  }
  const stop = (p: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
      setTimeout(() => p.kill("SIGKILL"), 2000).unref();
    });
  return {
    localPort,
    sshdPort,
    async close() {
      await stop(ssh);
      await stop(sshd);
    },
  };
}
