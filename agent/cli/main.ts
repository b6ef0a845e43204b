/**
 * The loopgate CLI. Every command has --help; scripts read --json.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { fail } from "./output.ts";
import { registerGatewayCommands } from "./commands/gateway.ts";
import { registerClientCommands } from "./commands/client.ts";
import { registerRelayCommands } from "./commands/relay.ts";
import { registerHostCommands } from "./commands/host.ts";
import { registerTokenCommands } from "./commands/token.ts";
import { registerLinkCommands } from "./commands/link.ts";
import { registerServiceCommands } from "./commands/service.ts";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("loopgate")
    .description(
      "A personal agent gateway that stays on loopback, with an optional pinned relay for reaching it from anywhere.",
    )
    .version(VERSION, "-V, --version")
    .option("--config <path>", "config file (JSON5); default ~/.loopgate/config.json5 or $LOOPGATE_CONFIG")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  const gateway = registerGatewayCommands(program);
  registerClientCommands(program, gateway);
  registerRelayCommands(program);
  registerHostCommands(program);
  registerTokenCommands(program);
  registerLinkCommands(program);
  registerServiceCommands(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help")
        process.exit(0);
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    fail(e, argv.includes("--json"));
  }
}

await main(process.argv);
