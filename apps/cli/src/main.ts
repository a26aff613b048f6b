import { Command } from 'commander';

import packageJson from '../package.json' with { type: 'json' };
import { applyPatchCommand } from './commands/apply-patch.js';

/** The `patchbay` command: one subcommand per file under `commands/`, registered here. */
function buildProgram(): Command {
  return new Command('patchbay')
    .description('Command-line client of Patchbay, the self-hosted cloud coding agent.')
    .version(packageJson.version)
    .addCommand(applyPatchCommand());
}

// Not `runMain` from @patchbay/core: importing core (its zod schemas) costs about 0.4 s, and
// scripts run `patchbay apply-patch` once per patch. Commands that need core import it lazily.
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.stderr.write(
    `patchbay: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
}
