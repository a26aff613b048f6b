import { Command } from 'commander';
import { EXIT, action } from '../context.js';

/** `patchbay env list|drop [--repo url]`: the caller's cached environments. */
export function envCommand(): Command {
  const env = new Command('env').description(
    'Cached environments: what setup made, kept so later tasks of the same repository skip it.',
  );
  env
    .command('list')
    .description('List your cached environments, most recently used first.')
    .option('--repo <url>', 'only those of this repository')
    .action(
      action(async (ctx, options: { repo?: string }) => {
        const { environments } = await ctx.client.environments(options.repo);
        if (ctx.json) ctx.out(JSON.stringify({ environments }));
        else if (environments.length === 0) ctx.out('no cached environments');
        else
          for (const e of environments)
            ctx.out(
              `${e.key.slice(0, 12)}  ${e.repo}  ${(e.bytes / 1024 / 1024).toFixed(1)} MiB  last used ${e.lastUsedAt}`,
            );
        return EXIT.ok;
      }),
    );
  env
    .command('drop')
    .description('Drop your cached environments (of one repository with --repo): setup runs again.')
    .option('--repo <url>', 'only those of this repository')
    .action(
      action(async (ctx, options: { repo?: string }) => {
        const { dropped } = await ctx.client.dropEnvironments(options.repo);
        ctx.out(ctx.json ? JSON.stringify({ dropped }) : `dropped ${dropped}`);
        return EXIT.ok;
      }),
    );
  return env;
}
