/**
 * Service definitions for running loopgate in the background: a systemd unit
 * (Linux; user unit for the gateway and link, system unit for a relay) and a
 * launchd agent (macOS). Pure functions from a spec to file text, so they can
 * be generated anywhere and verified (systemd-analyze verify, plutil -lint).
 *
 * No secret is ever written into a unit: the gateway reads its token from the
 * state dir or config, the link signs with the host key, and anything else
 * comes from an optional EnvironmentFile (mode 0600) the user fills.
 */
import { LoopgateError, ErrorCodes } from "../../shared/errors.ts";

export const SERVICE_KINDS = ["gateway", "link", "relay"] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

export interface ServiceSpec {
  kind: ServiceKind;
  /** Absolute path of the Node binary to run. */
  node: string;
  /** Absolute path of loopgate's executable script. */
  script: string;
  /** loopgate arguments after the command (e.g. ["--relay", "wss://…"]). */
  args: string[];
  /** Non-secret environment carried into the service (state dir, config path). */
  env: Record<string, string>;
  /** Optional environment file for secrets (systemd only; launchd has none). */
  envFile?: string;
  /** System unit (relay on a server): runs as `user`, hardened, may bind ports below 1024. */
  system?: { user: string; stateDir: string };
}

const COMMAND: Record<ServiceKind, string[]> = {
  gateway: ["gateway", "run"],
  link: ["link"],
  relay: ["relay", "serve"],
};

const DESCRIPTION: Record<ServiceKind, string> = {
  gateway: "loopgate gateway (loopback only)",
  link: "loopgate link (outbound connection to a relay)",
  relay: "loopgate relay (wss:// for linked hosts)",
};

/** Flags that carry a secret: refused, since a unit file and `ps` would show them. */
const SECRET_FLAGS = /^--(token|password|secret|key-pass)(=|$)/;

export function unitName(kind: ServiceKind): string {
  return `loopgate-${kind}.service`;
}

export function launchdLabel(kind: ServiceKind): string {
  return `dev.loopgate.${kind}`;
}

export function checkServiceArgs(args: readonly string[]): void {
  const bad = args.find((a) => SECRET_FLAGS.test(a));
  if (bad !== undefined) {
    const flag = bad.split("=")[0];
    throw new LoopgateError(ErrorCodes.USAGE, `${flag} would be written into the service definition and shown by ps`, {
      hint: "put secrets in the state dir or config (gateway.auth.token), in a --token-file, or in the service's environment file",
    });
  }
  for (const a of args) {
    if (/[\n\r\0]/.test(a))
      throw new LoopgateError(ErrorCodes.USAGE, "service arguments cannot contain line breaks or NUL");
  }
}

/** Quotes one ExecStart word for systemd: `%` and `$` are specifiers/variables there. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? escaped : `"${escaped}"`;
}

function envLine(k: string, v: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new LoopgateError(ErrorCodes.USAGE, `bad environment name ${k}`);
  return `Environment=${systemdQuote(`${k}=${v}`)}`;
}

export function renderSystemdUnit(spec: ServiceSpec): string {
  checkServiceArgs(spec.args);
  const exec = [spec.node, spec.script, ...COMMAND[spec.kind], ...spec.args].map(systemdQuote).join(" ");
  const networked = spec.kind !== "gateway";
  const lines = [
    "# Written by `loopgate service install`; `loopgate service uninstall` removes it.",
    "[Unit]",
    `Description=${DESCRIPTION[spec.kind]}`,
    ...(networked ? ["Wants=network-online.target", "After=network-online.target"] : ["After=network.target"]),
    "StartLimitIntervalSec=60",
    "StartLimitBurst=10",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${exec}`,
    ...Object.entries(spec.env).map(([k, v]) => envLine(k, v)),
    // The leading '-' makes the file optional.
    ...(spec.envFile !== undefined ? [`EnvironmentFile=-${systemdQuote(spec.envFile)}`] : []),
    "Restart=on-failure",
    "RestartSec=2",
    "KillSignal=SIGTERM",
    "TimeoutStopSec=15",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "UMask=0077",
  ];
  if (spec.system) {
    lines.push(
      `User=${systemdQuote(spec.system.user)}`,
      `Environment=${systemdQuote(`LOOPGATE_STATE_DIR=${spec.system.stateDir}`)}`,
      "ProtectSystem=strict",
      `ReadWritePaths=${systemdQuote(spec.system.stateDir)}`,
      "ProtectKernelTunables=yes",
      "ProtectKernelModules=yes",
      "ProtectControlGroups=yes",
      "RestrictSUIDSGID=yes",
      "LockPersonality=yes",
      // A relay usually listens on 443.
      "AmbientCapabilities=CAP_NET_BIND_SERVICE",
      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    );
  }
  lines.push("", "[Install]", `WantedBy=${spec.system ? "multi-user.target" : "default.target"}`, "");
  return lines.join("\n");
}

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function renderLaunchdPlist(spec: ServiceSpec, logDir: string): string {
  checkServiceArgs(spec.args);
  const argv = [spec.node, spec.script, ...COMMAND[spec.kind], ...spec.args];
  const env = Object.entries(spec.env);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    `  <key>Label</key><string>${launchdLabel(spec.kind)}</string>`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...argv.map((a) => `    <string>${xml(a)}</string>`),
    "  </array>",
    ...(env.length > 0
      ? [
          "  <key>EnvironmentVariables</key>",
          "  <dict>",
          ...env.flatMap(([k, v]) => [`    <key>${xml(k)}</key><string>${xml(v)}</string>`]),
          "  </dict>",
        ]
      : []),
    "  <key>RunAtLoad</key><true/>",
    "  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>",
    "  <key>ThrottleInterval</key><integer>5</integer>",
    "  <key>Umask</key><integer>63</integer>",
    `  <key>StandardOutPath</key><string>${xml(`${logDir}/${spec.kind}.out.log`)}</string>`,
    `  <key>StandardErrorPath</key><string>${xml(`${logDir}/${spec.kind}.err.log`)}</string>`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}
