import { Command } from 'commander';
import { EXIT, action } from '../context.js';
import { type SubmitOptions, specFrom } from './submit.js';

/** `patchbay schedule add|list|runs|pause|resume|rm`: task specs run on a cron pattern. */
export function scheduleCommand(): Command {
  const schedule = new Command('schedule').description(
    'Schedules: a task submitted each time a cron pattern comes round (never over a run still going).',
  );
  schedule
    .command('add')
    .description('Schedule a task: the repository, the prompt and when.')
    .argument('<repo>', 'repository URL (https://…)')
    .argument('<prompt>', 'the task, in plain words')
    .requiredOption(
      '--cron <pattern>',
      'cron pattern, e.g. "0 9 * * 1-5" (six fields: seconds first)',
    )
    .option('--tz <zone>', 'IANA time zone of the pattern (default UTC)')
    .option('--ref <ref>', 'branch, tag or commit (default: the default branch)')
    .option('--setup <script>', 'runs before the agent')
    .option('--verify <command>', "runs after the agent; decides each task's verdict")
    .action(
      action(
        async (
          ctx,
          repo: string,
          prompt: string,
          options: SubmitOptions & { cron: string; tz?: string },
        ) => {
          const created = await ctx.client.createSchedule({
            cron: options.cron,
            ...(options.tz ? { timezone: options.tz } : {}),
            spec: specFrom(repo, prompt, options),
          });
          ctx.out(
            ctx.json
              ? JSON.stringify(created)
              : `${created.id}  ${created.cron} (${created.timezone}), next ${created.nextRunAt ?? '—'}`,
          );
          return EXIT.ok;
        },
      ),
    );
  schedule
    .command('list')
    .description('List your schedules, newest first.')
    .action(
      action(async (ctx) => {
        const { schedules } = await ctx.client.schedules();
        if (ctx.json) ctx.out(JSON.stringify({ schedules }));
        else if (schedules.length === 0) ctx.out('no schedules');
        else
          for (const s of schedules)
            ctx.out(
              `${s.id}  ${s.paused ? 'paused ' : 'active '} ${s.cron} (${s.timezone})  next ${s.nextRunAt ?? '—'}  ${s.spec.prompt.split('\n', 1)[0]}`,
            );
        return EXIT.ok;
      }),
    );
  schedule
    .command('runs')
    .description("A schedule's runs, newest first: the task each started, or why it started none.")
    .argument('<id>', 'schedule id')
    .action(
      action(async (ctx, id: string) => {
        const { runs } = await ctx.client.scheduleRuns(id);
        if (ctx.json) ctx.out(JSON.stringify({ runs }));
        else if (runs.length === 0) ctx.out('no runs yet');
        else for (const r of runs) ctx.out(`${r.at}  ${r.taskId ?? `skipped: ${r.skipped}`}`);
        return EXIT.ok;
      }),
    );
  for (const [name, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const)
    schedule
      .command(name)
      .description(paused ? 'Pause a schedule.' : 'Resume a paused schedule.')
      .argument('<id>', 'schedule id')
      .action(
        action(async (ctx, id: string) => {
          const s = await ctx.client.setSchedulePaused(id, paused);
          ctx.out(ctx.json ? JSON.stringify(s) : `${s.id}  ${s.paused ? 'paused' : 'active'}`);
          return EXIT.ok;
        }),
      );
  schedule
    .command('rm')
    .description('Delete a schedule (the tasks it started stay).')
    .argument('<id>', 'schedule id')
    .action(
      action(async (ctx, id: string) => {
        await ctx.client.deleteSchedule(id);
        ctx.out(ctx.json ? JSON.stringify({ deleted: id }) : `deleted ${id}`);
        return EXIT.ok;
      }),
    );
  return schedule;
}
