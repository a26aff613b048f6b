import { Command } from 'commander';
import { EXIT, action, exitFor } from '../context.js';
import { followTask } from '../follow.js';
import { renderEvent } from '../render.js';

/**
 * `patchbay logs <id>`: the event log, readable; `--follow` streams it until the task's current
 * turn ends (every earlier turn's events first).
 */
export function logsCommand(): Command {
  return new Command('logs')
    .description(
      "Show a task's event log: phases, commands and exit codes, assistant messages, plan, status.",
    )
    .argument('<id>', 'task id')
    .option('-f, --follow', 'stream new events until the task ends; exit code says how it ended')
    .action(
      action(async (ctx, id: string, options: { follow?: boolean }) => {
        if (options.follow) {
          const { turn } = await ctx.client.get(id);
          return exitFor((await followTask(ctx, id, undefined, { until: turn })).status);
        }
        for (const event of await ctx.client.events(id)) {
          const text = ctx.json ? JSON.stringify(event) : renderEvent(event, { color: ctx.tty });
          if (text !== null) ctx.out(text);
        }
        return EXIT.ok;
      }),
    );
}
