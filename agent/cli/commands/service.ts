/**
 * `loopgate service install|uninstall|status <gateway|link|relay>`: run
 * loopgate in the background under systemd (Linux) or launchd (macOS).
 * Arguments after `--` are the service command's own flags, e.g.
 *   loopgate service install link -- --relay wss://relay.example.com --relay-fingerprint sha256:…
 */
import type { Command } from "commander";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import { printJson } from "../output.ts";
import { action } from "../action.ts";

interface ServiceFlags {
  system?: boolean;
  user?: string;
  unitDir?: string;
  start?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

async function kindOf(raw: string) {
  const { SERVICE_KINDS } = await import("../../service/units.ts");
  const kind = SERVICE_KINDS.find((k) => k === raw);
  if (kind === undefined)
    throw new LoopgateError(ErrorCodes.USAGE, `unknown service ${raw}`, {
      hint: `one of: ${SERVICE_KINDS.join(", ")}`,
    });
  return kind;
}

function common(cmd: Command): Command {
  return cmd
    .option("--system", "a system unit (systemd only; e.g. the relay on a server), written to /etc/systemd/system")
    .option("--user <name>", "the account a --system unit runs as (default: the invoking user)")
    .option("--unit-dir <dir>", "write the definition into this folder instead, and do not start it")
    .option("--json", "print JSON");
}

/** A `service <verb> <kind>` action: the kind checked, the manager loaded, failures printed the CLI's way. */
function withService(
  fn: (a: {
    m: typeof import("../../service/manager.ts");
    opts: import("../../service/manager.ts").ServiceOptions;
    flags: ServiceFlags;
  }) => Promise<void>,
) {
  return action(async (raw: string, flags: ServiceFlags, _cmd: Command) => {
    const kind = await kindOf(raw);
    const m = await import("../../service/manager.ts");
    await fn({
      m,
      opts: { kind, system: Boolean(flags.system), ...(flags.unitDir ? { unitDir: flags.unitDir } : {}) },
      flags,
    });
  });
}

export function registerServiceCommands(program: Command): void {
  const service = program
    .command("service")
    .description(
      "run the gateway, a link or a relay in the background (systemd user unit on Linux, launchd agent on macOS)",
    )
    .addHelpText(
      "after",
      "\nSecrets never go into the unit: the gateway reads its token from the state dir or config, the link signs with the host key,\nand anything else (e.g. OPENCLAW_GATEWAY_TOKEN=…) can go in <state dir>/service.env (mode 0600), which the systemd unit reads.",
    );
  common(
    service
      .command("install <kind> [args...]")
      .description("write the service definition and start it (kind: gateway | link | relay; flags for it after --)"),
  )
    .option("--no-start", "write it, but do not enable or start it")
    .option("--dry-run", "print the definition and the commands install would run; change nothing")
    .action(
      action(async (raw: string, args: string[], flags: ServiceFlags, _cmd: Command) => {
        const kind = await kindOf(raw);
        const m = await import("../../service/manager.ts");
        const opts = {
          kind,
          args,
          system: Boolean(flags.system),
          noStart: flags.start === false,
          ...(flags.user ? { user: flags.user } : {}),
          ...(flags.unitDir ? { unitDir: flags.unitDir } : {}),
        };
        if (flags.dryRun) {
          const plan = m.planService(opts);
          if (flags.json) printJson({ ok: true, dryRun: true, ...plan });
          else
            process.stdout.write(
              `# ${plan.path}\n${plan.text}\n# then: ${plan.commands.map((c) => c.join(" ")).join(" && ") || "(nothing: not started)"}\n`,
            );
          return;
        }
        const r = m.installService(opts);
        if (flags.json) printJson({ ok: true, ...r });
        else
          process.stdout.write(`installed ${r.name} at ${r.path}${r.started ? " and started it" : " (not started)"}\n`);
      }),
    );
  common(service.command("uninstall <kind>").description("stop the service and remove its definition")).action(
    withService(async ({ m, opts, flags }) => {
      const r = m.uninstallService(opts);
      if (flags.json) printJson({ ok: true, ...r });
      else process.stdout.write(r.removed ? `removed ${r.path}\n` : `nothing installed at ${r.path}\n`);
    }),
  );
  common(
    service.command("status <kind>").description("whether the service is installed, current, enabled and running"),
  ).action(
    withService(async ({ m, opts, flags }) => {
      const s = m.serviceStatus(opts);
      if (flags.json) return printJson({ ok: true, ...s });
      const word = (b: boolean | undefined, yes: string, no: string) => (b === undefined ? "unknown" : b ? yes : no);
      process.stdout.write(
        s.installed
          ? `${s.name}: installed at ${s.path}${s.current ? "" : " (differs from what install would write now: run install again)"}; ${word(s.enabled, "enabled", "disabled")}, ${word(s.active, "running", "not running")}\n`
          : `${s.name}: not installed (loopgate service install ${opts.kind})\n`,
      );
      if (!s.installed) process.exitCode = 1;
    }),
  );
}
