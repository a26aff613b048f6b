import { Command } from 'commander';
import { EXIT, action } from '../context.js';

/** `patchbay cancel <id>`: asks the server to cancel (idempotent; a finished task is left as is). */
export function cancelCommand(): Command {
  return new Command('cancel')
    .description('Cancel a queued or running task.')
    .argument('<id>', 'task id')
    .action(
      action(async (ctx, id: string) => {
        const task = await ctx.client.cancel(id);
        ctx.out(
          ctx.json
            ? JSON.stringify(task)
            : `${task.id}: ${task.status}${task.status === 'running' ? ' (cancel requested)' : ''}`,
        );
        return EXIT.ok;
      }),
    );
}
