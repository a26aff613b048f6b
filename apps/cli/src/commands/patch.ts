import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { checkCheckout, gitApply } from '../checkout.js';
import { EXIT, action } from '../context.js';

interface PatchOptions {
  output?: string;
  apply?: boolean;
  attempt?: number;
}

/**
 * `patchbay patch <id>`: the task's patch to stdout, to a file, or applied to the current
 * checkout once that is shown to be at the task's base commit and clean.
 */
export function patchCommand(): Command {
  return new Command('patch')
    .description(
      "Print a task's patch, write it to a file (-o), or apply it to the current checkout (--apply).",
    )
    .argument('<id>', 'task id')
    .option('-o, --output <file>', 'write the patch to this file')
    .option('--attempt <n>', "one attempt's patch instead of the chosen one's", attemptNumber)
    .option(
      '--apply',
      "git apply --index onto the current checkout; it must be at the task's base commit and clean",
    )
    .action(
      action(async (ctx, id: string, options: PatchOptions) => {
        const task = options.apply ? await ctx.client.get(id) : undefined;
        // Check the checkout before downloading: a refusal should not wait on a big patch.
        let top: string | undefined;
        if (task) {
          if (!task.baseCommit) {
            process.stderr.write(`patchbay: task ${id} has no base commit yet (${task.status})\n`);
            return EXIT.failed;
          }
          const check = await checkCheckout(process.cwd(), task.baseCommit);
          if (!check.ok) {
            process.stderr.write(`patchbay: not applying the patch of ${id}: ${check.problem}\n`);
            return EXIT.failed;
          }
          top = check.top;
        }
        const patch = await ctx.client.patch(id, options.attempt);
        if (options.output) await writeFile(options.output, patch);
        if (top !== undefined) {
          if (patch.length === 0) {
            ctx.out(
              ctx.json
                ? JSON.stringify({ applied: false, bytes: 0 })
                : 'the patch is empty: nothing to apply',
            );
            return EXIT.ok;
          }
          try {
            await gitApply(top, patch);
          } catch (err) {
            process.stderr.write(`patchbay: git apply failed: ${(err as Error).message}\n`);
            return EXIT.failed;
          }
          ctx.out(
            ctx.json
              ? JSON.stringify({
                  applied: true,
                  bytes: patch.length,
                  files: task?.result?.files.length ?? null,
                })
              : `applied ${patch.length} bytes of patch to ${top} (staged)`,
          );
        } else if (!options.output) {
          process.stdout.write(patch);
        } else if (ctx.json) {
          ctx.out(JSON.stringify({ written: options.output, bytes: patch.length }));
        }
        return EXIT.ok;
      }),
    );
}

/** An attempt number as given on the command line: a usage error when it is not one. */
function attemptNumber(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 100)
    throw new InvalidArgumentError(
      `--attempt must be a number from 1 (got ${JSON.stringify(text)})`,
    );
  return n;
}
