import type { TaskSpec } from '@patchbay/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT, action, exitFor } from '../context.js';
import { followTask } from '../follow.js';
import { renderTask } from '../render.js';

export interface SubmitOptions {
  ref?: string;
  setup?: string;
  verify?: string;
  model?: string;
  image?: string;
  attempts?: number;
  models?: string[];
  runtime?: 'patchbay' | 'codex';
  follow?: boolean;
}

/** The task spec the flags describe; only what was given, so server defaults apply to the rest. */
export function specFrom(repo: string, prompt: string, options: SubmitOptions): TaskSpec {
  const environment = {
    ...(options.image ? { image: options.image } : {}),
    ...(options.setup ? { setup: options.setup } : {}),
    ...(options.verify ? { verify: options.verify } : {}),
  };
  return {
    repo: { url: repo, ...(options.ref ? { ref: options.ref } : {}) },
    prompt,
    ...(Object.keys(environment).length > 0 ? { environment } : {}),
    ...(options.model ? { model: { name: options.model } } : {}),
    ...(options.attempts === undefined ? {} : { attempts: options.attempts }),
    ...(options.models === undefined ? {} : { models: options.models }),
    ...(options.runtime === undefined ? {} : { agent: { runtime: options.runtime } }),
  };
}

/** `patchbay submit <repo> <prompt>`: queues a task; with `--follow`, waits for its end. */
export function submitCommand(): Command {
  return new Command('submit')
    .description('Submit a task: a repository and what to do in it, in plain words.')
    .argument('<repo>', 'repository URL (https://…)')
    .argument('<prompt>', 'the task, in plain words')
    .option('--ref <ref>', 'branch, tag or commit (default: the default branch)')
    .option('--setup <script>', 'runs before the agent; may use network and secrets')
    .option('--verify <command>', "runs after the agent; decides the task's verdict")
    .option('--model <name>', 'model to use (default: the server default)')
    .option('--image <image>', 'sandbox image (default: the server default)')
    .option(
      '--attempts <n>',
      'attempts side by side; the result is the one verify and size pick',
      (text: string) => {
        const n = Number(text);
        if (!Number.isInteger(n) || n < 1)
          throw new InvalidArgumentError(`--attempts must be a whole number from 1`);
        return n;
      },
    )
    .option('--models <names>', 'one model per attempt, comma-separated', (text: string) =>
      text.split(',').map((name) => name.trim()),
    )
    .addOption(
      new Option(
        '--runtime <name>',
        "the agent: Patchbay's own loop, or Codex CLI in the sandbox",
      ).choices(['patchbay', 'codex']),
    )
    .option('-f, --follow', "follow the task's log until it ends; exit code says how it ended")
    .action(
      action(async (ctx, repo: string, prompt: string, options: SubmitOptions) => {
        const task = await ctx.client.submit(specFrom(repo, prompt, options));
        if (!options.follow) {
          ctx.out(ctx.json ? JSON.stringify(task) : task.id);
          return EXIT.ok;
        }
        if (!ctx.json) ctx.out(`submitted ${task.id}`);
        // With --json the caller wants one document at the end, not the log on the way.
        const done = await followTask(ctx, task.id, ctx.json ? 'silent' : 'text');
        ctx.out(ctx.json ? JSON.stringify(done) : renderTask(done, { color: ctx.tty }));
        return exitFor(done.status);
      }),
    );
}
