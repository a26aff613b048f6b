import type { TaskStatus } from '@patchbay/core';
import { Command, Option } from 'commander';
import { EXIT, action } from '../context.js';
import { renderTaskRow } from '../render.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

/** `patchbay list`: the caller's tasks, newest first. */
export function listCommand(): Command {
  return new Command('list')
    .description('List your tasks, newest first.')
    .addOption(new Option('--status <status>', 'only tasks in this status').choices(STATUSES))
    .option('-n, --limit <n>', 'how many (1-100)', (v) => Number.parseInt(v, 10), 20)
    .action(
      action(async (ctx, options: { status?: TaskStatus; limit: number }) => {
        const page = await ctx.client.list({
          limit: options.limit,
          ...(options.status ? { status: options.status } : {}),
        });
        if (ctx.json) ctx.out(JSON.stringify(page));
        else if (page.tasks.length === 0) ctx.out('no tasks');
        else for (const task of page.tasks) ctx.out(renderTaskRow(task));
        return EXIT.ok;
      }),
    );
}
