import { Command, CommanderError, Option } from 'commander';

import packageJson from '../package.json' with { type: 'json' };
import { applyPatchCommand } from './commands/apply-patch.js';
import { attemptsCommand } from './commands/attempts.js';
import { cancelCommand } from './commands/cancel.js';
import { deliverCommand } from './commands/deliver.js';
import { envCommand } from './commands/env.js';
import { listCommand } from './commands/list.js';
import { logsCommand } from './commands/logs.js';
import { mcpCommand } from './commands/mcp.js';
import { patchCommand } from './commands/patch.js';
import { replyCommand } from './commands/reply.js';
import { scheduleCommand } from './commands/schedule.js';
import { statusCommand } from './commands/status.js';
import { submitCommand } from './commands/submit.js';
import { DEFAULT_SERVER, EXIT } from './context.js';

/** The `patchbay` command: one subcommand per file under `commands/`, registered here. */
function buildProgram(): Command {
  const program = new Command('patchbay')
    .description('Command-line client of Patchbay, the self-hosted cloud coding agent.')
    .version(packageJson.version)
    .addOption(
      new Option('--server <url>', `API base URL (default: ${DEFAULT_SERVER})`).env('PATCHBAY_URL'),
    )
    .addOption(new Option('--key <key>', 'API key').env('PATCHBAY_API_KEY'))
    .option('--json', 'machine-readable output for scripts')
    .addCommand(submitCommand())
    .addCommand(replyCommand())
    .addCommand(statusCommand())
    .addCommand(attemptsCommand())
    .addCommand(listCommand())
    .addCommand(logsCommand())
    .addCommand(patchCommand())
    .addCommand(deliverCommand())
    .addCommand(envCommand())
    .addCommand(scheduleCommand())
    .addCommand(cancelCommand())
    .addCommand(applyPatchCommand())
    .addCommand(mcpCommand());
  // Throw instead of exiting, everywhere, so that usage errors get exit code 2 below.
  for (const command of [
    program,
    ...program.commands,
    ...program.commands.flatMap((c) => c.commands),
  ])
    command.exitOverride();
  return program;
}

/** Commander's codes for a malformed command line: exit 2, like other Unix tools. */
const USAGE_ERRORS = new Set([
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.excessArguments',
  'commander.invalidArgument',
  'commander.conflictingOption',
  'commander.help',
]);

// Not `runMain` from @patchbay/core: importing core (its zod schemas) costs about 0.4 s, and
// scripts run `patchbay apply-patch` once per patch. Commands import core's types only.
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has already printed the message (or the help text).
    process.exitCode =
      err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
        ? EXIT.ok
        : USAGE_ERRORS.has(err.code)
          ? EXIT.usage
          : err.exitCode;
  } else {
    process.stderr.write(
      `patchbay: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  }
}
