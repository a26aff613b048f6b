import { Command } from 'commander';
import { EXIT, action } from '../context.js';
import { renderTask } from '../render.js';

/** `patchbay status <id>`: the task record; exit 1 when the task failed or was cancelled. */
export function statusCommand(): Command {
  return new Command('status')
    .description("Show a task's status, phase, base commit, result and usage.")
    .argument('<id>', 'task id')
    .action(
      action(async (ctx, id: string) => {
        const task = await ctx.client.get(id);
        ctx.out(ctx.json ? JSON.stringify(task) : renderTask(task, { color: ctx.tty }));
        return task.status === 'failed' || task.status === 'cancelled' ? EXIT.failed : EXIT.ok;
      }),
    );
}
