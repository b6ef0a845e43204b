/**
 * `loopgate service install|uninstall|status`: writes the service definition
 * for this platform (systemd on Linux, launchd on macOS) and asks the service
 * manager to start it, the way `openclaw gateway install` does. The manager
 * commands run through `run` so tests can put a fake systemctl on PATH.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";
import { stateDir } from "../state.ts";
import {
  launchdLabel,
  renderLaunchdPlist,
  renderSystemdUnit,
  unitName,
  type ServiceKind,
  type ServiceSpec,
} from "./units.ts";

export type ServicePlatform = "systemd" | "launchd";

export interface ServiceOptions {
  kind: ServiceKind;
  /** loopgate arguments for the service's command. */
  args?: string[];
  /** A system-wide unit (systemd only): the relay on a server. */
  system?: boolean;
  /** The account a system unit runs as (default: the invoking user). */
  user?: string;
  /** Write the definition here instead of the manager's folder, and do not start it. */
  unitDir?: string;
  /** Write but do not enable or start. */
  noStart?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface ServicePlan {
  platform: ServicePlatform;
  kind: ServiceKind;
  name: string;
  path: string;
  text: string;
  /** Manager commands install runs, in order (empty with --unit-dir / --no-start). */
  commands: string[][];
}

export function servicePlatform(env: NodeJS.ProcessEnv = process.env): ServicePlatform {
  const forced = env.LOOPGATE_SERVICE_PLATFORM;
  if (forced === "systemd" || forced === "launchd") return forced;
  if (process.platform === "darwin") return "launchd";
  if (process.platform === "linux") return "systemd";
  throw new LoopgateError(
    ErrorCodes.USAGE,
    `loopgate service supports Linux (systemd) and macOS (launchd), not ${process.platform}`,
    {
      hint: "run `loopgate gateway run` under your platform's service manager yourself",
    },
  );
}

/** The executable this process was started as (the npm bin link, or the checkout's script). */
function executable(): string {
  const argv1 = process.argv[1];
  if (argv1 === undefined || !isAbsolute(argv1))
    throw new LoopgateError(ErrorCodes.INTERNAL, "cannot tell where the loopgate executable is");
  return argv1;
}

function carriedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["LOOPGATE_STATE_DIR", "LOOPGATE_CONFIG"] as const) {
    const v = env[k];
    if (v !== undefined && v.trim() !== "") out[k] = resolve(v);
  }
  return out;
}

function userUnitDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg !== undefined && xdg !== "" ? xdg : join(env.HOME ?? homedir(), ".config"), "systemd", "user");
}

export function planService(o: ServiceOptions): ServicePlan {
  const env = o.env ?? process.env;
  const platform = servicePlatform(env);
  if (o.system && platform !== "systemd")
    throw new LoopgateError(ErrorCodes.USAGE, "--system is for systemd (Linux) only", {
      hint: "on macOS the service runs as a launchd agent of your user",
    });
  const state = resolve(stateDir(env));
  const spec: ServiceSpec = {
    kind: o.kind,
    node: process.execPath,
    script: executable(),
    args: o.args ?? [],
    env: carriedEnv(env),
    envFile: join(state, "service.env"),
    ...(o.system ? { system: { user: o.user ?? env.SUDO_USER ?? userInfo().username, stateDir: state } } : {}),
  };
  const activate = o.unitDir === undefined && !o.noStart;
  if (platform === "systemd") {
    const name = unitName(o.kind);
    const dir = o.unitDir ?? (o.system ? "/etc/systemd/system" : userUnitDir(env));
    const ctl = o.system ? ["systemctl"] : ["systemctl", "--user"];
    return {
      platform,
      kind: o.kind,
      name,
      path: join(dir, name),
      text: renderSystemdUnit(spec),
      commands: activate
        ? [
            [...ctl, "daemon-reload"],
            [...ctl, "enable", "--now", name],
          ]
        : [],
    };
  }
  const label = launchdLabel(o.kind);
  const path = join(o.unitDir ?? join(env.HOME ?? homedir(), "Library", "LaunchAgents"), `${label}.plist`);
  const uid = String(userInfo().uid);
  return {
    platform,
    kind: o.kind,
    name: label,
    path,
    text: renderLaunchdPlist(spec, join(state, "logs")),
    commands: activate ? [["launchctl", "bootstrap", `gui/${uid}`, path]] : [],
  };
}

function run(cmd: string[], env: NodeJS.ProcessEnv): { ok: boolean; out: string } {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env, encoding: "utf8", timeout: 30_000 });
  if (r.error) return { ok: false, out: r.error.message };
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

function managerFailed(cmd: string[], out: string, system: boolean): LoopgateError {
  const userBus = !system && cmd[0] === "systemctl";
  return new LoopgateError(
    ErrorCodes.REQUEST_FAILED,
    `\`${cmd.join(" ")}\` failed: ${out.split("\n")[0]?.slice(0, 300) ?? ""}`,
    {
      hint: userBus
        ? "the unit file is written; without a user session bus (e.g. over ssh) run `loginctl enable-linger $USER` and log in again, then `systemctl --user enable --now` it"
        : "the definition is written; start it with your service manager, or fix the error and run install again",
    },
  );
}

export interface InstallResult {
  platform: ServicePlatform;
  name: string;
  path: string;
  started: boolean;
}

export function installService(o: ServiceOptions): InstallResult {
  const env = o.env ?? process.env;
  const plan = planService(o);
  if (o.system && o.unitDir === undefined && process.getuid?.() !== 0) {
    throw new LoopgateError(ErrorCodes.USAGE, "a system unit is written to /etc/systemd/system, which needs root", {
      hint: "run it with sudo, or pass --unit-dir to write it elsewhere",
    });
  }
  mkdirSync(resolve(plan.path, ".."), { recursive: true });
  writeFileSync(plan.path, plan.text, { mode: 0o644 });
  mkdirSync(join(resolve(stateDir(env)), "logs"), { recursive: true, mode: 0o700 });
  for (const cmd of plan.commands) {
    const r = run(cmd, env);
    if (!r.ok) throw managerFailed(cmd, r.out, Boolean(o.system));
  }
  return { platform: plan.platform, name: plan.name, path: plan.path, started: plan.commands.length > 0 };
}

export function uninstallService(o: ServiceOptions): { path: string; removed: boolean } {
  const env = o.env ?? process.env;
  const plan = planService({ ...o, noStart: true });
  const existed = existsSync(plan.path);
  if (o.unitDir === undefined) {
    const stop =
      plan.platform === "systemd"
        ? [[...(o.system ? ["systemctl"] : ["systemctl", "--user"]), "disable", "--now", plan.name]]
        : [["launchctl", "bootout", `gui/${userInfo().uid}/${plan.name}`]];
    // Stopping a service that is not loaded is not an error worth failing on.
    for (const cmd of stop) run(cmd, env);
  }
  rmSync(plan.path, { force: true });
  if (o.unitDir === undefined && plan.platform === "systemd")
    run([...(o.system ? ["systemctl"] : ["systemctl", "--user"]), "daemon-reload"], env);
  return { path: plan.path, removed: existed };
}

export interface ServiceStatus {
  platform: ServicePlatform;
  name: string;
  path: string;
  installed: boolean;
  /** Whether the definition on disk is the one install would write now. */
  current: boolean;
  active: boolean | undefined;
  enabled: boolean | undefined;
}

export function serviceStatus(o: ServiceOptions): ServiceStatus {
  const env = o.env ?? process.env;
  const plan = planService({ ...o, noStart: true });
  const installed = existsSync(plan.path);
  const current = installed && readFileSync(plan.path, "utf8") === plan.text;
  let active: boolean | undefined;
  let enabled: boolean | undefined;
  if (installed && o.unitDir === undefined) {
    if (plan.platform === "systemd") {
      const ctl = o.system ? ["systemctl"] : ["systemctl", "--user"];
      active = run([...ctl, "is-active", "--quiet", plan.name], env).ok;
      enabled = run([...ctl, "is-enabled", "--quiet", plan.name], env).ok;
    } else {
      active = run(["launchctl", "print", `gui/${userInfo().uid}/${plan.name}`], env).ok;
      enabled = active;
    }
  }
  return { platform: plan.platform, name: plan.name, path: plan.path, installed, current, active, enabled };
}
