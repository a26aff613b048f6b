import { Command } from 'commander';
import { EXIT, action } from '../context.js';
import { renderAttempts } from '../render.js';

/** `patchbay attempts <id>`: the attempts of the task's current turn, the chosen one marked. */
export function attemptsCommand(): Command {
  return new Command('attempts')
    .description(
      "Show the attempts of a task's current turn: status, model, verify verdict, size, tokens; * marks the chosen one.",
    )
    .argument('<id>', 'task id')
    .action(
      action(async (ctx, id: string) => {
        const attempts = await ctx.client.attempts(id);
        ctx.out(ctx.json ? JSON.stringify(attempts) : renderAttempts(attempts));
        return EXIT.ok;
      }),
    );
}
