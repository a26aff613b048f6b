/**
 * Isolation (issue 24): what gVisor (`runsc`) costs against runc, in the same run.
 *
 * - a tool call round trip: `exec(['true'])` and `exec('true')` (`bash -lc`) through the exec
 *   channel, one sandbox per runtime, alternating;
 * - a sandbox ready: create (cold) → its first exec answered;
 * - a task start on the whole service: the task's `running` status → its first tool output, one
 *   stack per runtime (no warm pool), alternating.
 *
 *   node --import tsx bench/isolation.bench.ts
 *   BENCH_SAMPLES=400 BENCH_TASKS=10 node --import tsx bench/isolation.bench.ts
 *
 * Needs runsc registered with the engine: `bash infra/local/runsc.sh` (`npm test` does it).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Sandbox } from '@patchbay/sandbox';
import { TEST_IMAGE, removeNamespace, testProvider } from '@patchbay/sandbox/testing';
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../test/support/stack.js';
import { eventTime, eventsOf, fmt, header, load, log, stats, writeSection } from './support.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const READY = Number(process.env.BENCH_READY ?? 10);
const TASKS = Number(process.env.BENCH_TASKS ?? 6);
const RUNTIMES = ['runc', 'runsc'] as const;
type Runtime = (typeof RUNTIMES)[number];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function sandboxFigures(): Promise<
  Record<Runtime, { argv: number[]; shell: number[]; ready: number[] }>
> {
  const providers = Object.fromEntries(
    RUNTIMES.map((runtime) => [
      runtime,
      testProvider({ runtime, namespace: `bench-${randomUUID().slice(0, 8)}` }),
    ]),
  ) as Record<Runtime, ReturnType<typeof testProvider>>;
  const out = Object.fromEntries(
    RUNTIMES.map((r) => [
      r,
      { argv: [] as number[], shell: [] as number[], ready: [] as number[] },
    ]),
  ) as Record<Runtime, { argv: number[]; shell: number[]; ready: number[] }>;
  const made: Sandbox[] = [];
  try {
    const boxes = {} as Record<Runtime, Sandbox>;
    for (const runtime of RUNTIMES) {
      boxes[runtime] = await providers[runtime].create({ image: TEST_IMAGE, taskId: 'bench' });
      made.push(boxes[runtime]);
      for (let i = 0; i < 20; i++) await boxes[runtime].exec(['true']); // warm-up
    }
    log(`exec round trips: ${SAMPLES} per runtime…`);
    for (let i = 0; i < SAMPLES; i++)
      for (const runtime of RUNTIMES)
        out[runtime].argv.push(await timed(() => boxes[runtime].exec(['true'])));
    for (let i = 0; i < Math.ceil(SAMPLES / 4); i++)
      for (const runtime of RUNTIMES)
        out[runtime].shell.push(await timed(() => boxes[runtime].exec('true')));
    log(`sandbox ready: ${READY} per runtime…`);
    for (let i = 0; i < READY; i++) {
      for (const runtime of RUNTIMES) {
        let sandbox: Sandbox | undefined;
        out[runtime].ready.push(
          await timed(async () => {
            sandbox = await providers[runtime].create({ image: TEST_IMAGE, taskId: 'ready' });
            await sandbox.exec(['true']);
          }),
        );
        await sandbox?.destroy();
      }
    }
  } finally {
    await Promise.allSettled(made.map((s) => s.destroy()));
    for (const runtime of RUNTIMES) {
      await providers[runtime].close();
      await removeNamespace(providers[runtime].options.namespace);
    }
  }
  return out;
}

async function taskStart(stack: Stack): Promise<number> {
  const { body } = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt: 'SCENARIO:one go',
  });
  const task = await waitForTask(stack, body.id as string, {}, 180_000);
  if (task.status !== 'succeeded') throw new Error(`task ${task.status}`);
  const events = await eventsOf(stack, task.id as string);
  const running = eventTime(events, (e) => e.type === 'status' && e.status === 'running');
  return eventTime(events, (e) => e.type === 'tool_output') - running;
}

async function taskStarts(): Promise<Record<Runtime, number[]>> {
  const stacks = {} as Record<Runtime, Stack>;
  const out = { runc: [] as number[], runsc: [] as number[] };
  try {
    for (const runtime of RUNTIMES) {
      stacks[runtime] = await startStack({
        env: { PATCHBAY_SANDBOX_RUNTIME: runtime, PATCHBAY_REF_REFRESH_SECONDS: '60' },
        repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
        script: scenarioScript({ one: steps([shell('true')]) }),
      });
      await taskStart(stacks[runtime]); // the first makes the mirror
    }
    log(`task starts: ${TASKS} per runtime…`);
    for (let i = 0; i < TASKS; i++)
      for (const runtime of RUNTIMES) out[runtime].push(await taskStart(stacks[runtime]));
  } finally {
    for (const stack of Object.values(stacks)) await stack.close();
  }
  return out;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = load();
  const box = await sandboxFigures();
  const tasks = await taskStarts();
  const row = (what: string, runtime: Runtime, samples: number[]): string => {
    const s = stats(samples);
    return `| ${what} | \`${runtime}\` | ${samples.length} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.mean)} |`;
  };
  const ratio = (a: number[], b: number[]): string =>
    `${(stats(b).p50 / stats(a).p50).toFixed(2)}×`;
  await writeSection('isolation', [
    ...header(
      'Isolation: gVisor (runsc) against runc (issue 24)',
      'node --import tsx bench/isolation.bench.ts',
      started,
      loadAtStart,
    ),
    "- Runtimes: `runc`, and Debian 12's `runsc` (gVisor release 20221219, ptrace platform, registered by `infra/local/runsc.sh` with `--network=host`). Same image (`patchbay/sandbox:latest`), the operator's default limits, no network; measured alternately in one run.",
    '- Task start: the whole service (test/support/stack.ts), one stack per runtime, no warm pool (`PATCHBAY_WARM_POOL_SIZE=0`), ref answered from the mirror; the task’s `running` status → its first `tool_output` (one `["true"]` call).',
    '',
    '| measure | runtime | samples | p50 | p95 | mean |',
    '|---|---|---:|---:|---:|---:|',
    ...RUNTIMES.map((r) => row('tool call round trip, `exec(["true"])`', r, box[r].argv)),
    ...RUNTIMES.map((r) =>
      row('tool call round trip, `exec("true")` (`bash -lc`)', r, box[r].shell),
    ),
    ...RUNTIMES.map((r) => row('sandbox ready (create → first exec)', r, box[r].ready)),
    ...RUNTIMES.map((r) => row('task start (running → first tool output)', r, tasks[r])),
    '',
    `- gVisor costs, at p50: ${ratio(box.runc.argv, box.runsc.argv)} a round trip, ${ratio(box.runc.shell, box.runsc.shell)} a \`bash -l\` command, ${ratio(box.runc.ready, box.runsc.ready)} a sandbox's start, ${ratio(tasks.runc, tasks.runsc)} a task's start. Every syscall of the sandbox goes through gVisor's kernel (ptrace platform here: each one a round trip through a host thread), so process-heavy commands pay most.`,
  ]);
}

await main();
