import { Command } from 'commander';
import { EXIT, action, exitFor } from '../context.js';
import { followTask } from '../follow.js';
import { renderTask } from '../render.js';

/** `patchbay reply <id> <prompt>`: a follow-up turn on an ended task; `--follow` waits for it. */
export function replyCommand(): Command {
  return new Command('reply')
    .description(
      'Send a follow-up to an ended task: the agent goes on from the tree and conversation its last turn left.',
    )
    .argument('<id>', 'task id')
    .argument('<prompt>', 'what to do next, in plain words')
    .option('-f, --follow', "follow the new turn's log until it ends; exit code says how it ended")
    .action(
      action(async (ctx, id: string, prompt: string, options: { follow?: boolean }) => {
        const task = await ctx.client.reply(id, prompt);
        if (!options.follow) {
          ctx.out(ctx.json ? JSON.stringify(task) : `${task.id} turn ${task.turn} queued`);
          return EXIT.ok;
        }
        if (!ctx.json) ctx.out(`${task.id}: turn ${task.turn} queued`);
        const done = await followTask(ctx, task.id, ctx.json ? 'silent' : 'text', {
          from: task.turn,
          until: task.turn,
        });
        ctx.out(ctx.json ? JSON.stringify(done) : renderTask(done, { color: ctx.tty }));
        return exitFor(done.status);
      }),
    );
}
