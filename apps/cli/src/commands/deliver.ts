import { Command } from 'commander';
import { EXIT, action } from '../context.js';

/** `patchbay deliver <id> [--branch b] [--pr]`: the task's result pushed to a branch. */
export function deliverCommand(): Command {
  return new Command('deliver')
    .description(
      "Push a task's result to a branch of its repository (and open a pull request with --pr); waits up to a minute for the outcome.",
    )
    .argument('<id>', 'task id')
    .option(
      '-b, --branch <name>',
      "branch to push (default: the earlier delivery's, or patchbay/<id>)",
    )
    .option('-m, --message <text>', 'commit message (default: the prompt and the task id)')
    .option('--pr', 'open a pull (merge) request into the branch the task started from')
    .option('--title <text>', 'pull request title (default: the first line of the prompt)')
    .option('--draft', 'open the pull request as a draft')
    .action(
      action(
        async (
          ctx,
          id: string,
          options: {
            branch?: string;
            message?: string;
            pr?: boolean;
            title?: string;
            draft?: boolean;
          },
        ) => {
          const task = await ctx.client.deliver(id, {
            ...(options.branch === undefined ? {} : { branch: options.branch }),
            ...(options.message === undefined ? {} : { commitMessage: options.message }),
            ...(options.pr || options.title !== undefined || options.draft
              ? {
                  pullRequest: {
                    ...(options.title === undefined ? {} : { title: options.title }),
                    ...(options.draft ? { draft: true } : {}),
                  },
                }
              : {}),
          });
          const d = task.delivery;
          if (ctx.json) ctx.out(JSON.stringify(task));
          else if (d?.status === 'delivered') {
            ctx.out(`${task.id}: pushed ${d.commit?.slice(0, 12) ?? ''} to ${d.branch}`);
            if (d.pullRequest)
              ctx.out(`pull request #${d.pullRequest.number}: ${d.pullRequest.url}`);
          } else
            ctx.out(`${task.id}: delivery to ${d?.branch ?? '?'} is ${d?.status ?? 'unknown'}`);
          return d?.status === 'delivered' ? EXIT.ok : EXIT.failed;
        },
      ),
    );
}
