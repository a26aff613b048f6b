/**
 * Best-of-N attempts (issue 14): wall time of a task of 4 attempts against one of 1 attempt, submit
 * → the task's end, on this machine, with the whole service (test/support/stack.ts; one worker
 * taking 4 tasks at once) on a 2,000-file / ~20 MB repository; and the memory each attempt's
 * sandbox holds (the container's cgroup usage, read while the attempts work), with the worker's
 * own resident memory beside it.
 *
 *   node --import tsx bench/attempts.bench.ts
 *   BENCH_SAMPLES=3 node --import tsx bench/attempts.bench.ts
 */
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { call, startStack, waitForTask } from '../test/support/stack.js';
import { bigRepo } from './fixtures.js';
import { fmt, header, load, log, sleep, stats, writeSection } from './support.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
const docker = createDockerClient();

/** Memory (bytes) of each running container of a task, read once, into `peaks` (per container). */
async function readMemory(taskId: string, peaks: Map<string, number>): Promise<void> {
  const containers = await docker.listContainers({
    filters: { label: [`${LABELS.task}=${taskId}`] },
  });
  await Promise.all(
    containers.map(async (c) => {
      const s = (await docker
        .getContainer(c.Id)
        .stats({ stream: false })
        .catch(() => ({}))) as {
        memory_stats?: { usage?: number; stats?: { inactive_file?: number } };
      };
      const bytes = (s.memory_stats?.usage ?? 0) - (s.memory_stats?.stats?.inactive_file ?? 0);
      if (bytes > 0) peaks.set(c.Id, Math.max(peaks.get(c.Id) ?? 0, bytes));
    }),
  );
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = load();
  const stack = await startStack({
    repos: { 'big.git': bigRepo(2000, 10_000) },
    script: scenarioScript({
      work: steps([shell('sleep 3; echo changed > a.txt'), shell('git status --short | wc -l')]),
    }),
    env: {
      PATCHBAY_WORKER_CONCURRENCY: '4',
      PATCHBAY_MAX_ATTEMPTS: '4',
      PATCHBAY_MAX_ACTIVE_TASKS: '1000',
      PATCHBAY_REF_REFRESH_SECONDS: '60',
    },
  });
  const wall: Record<1 | 4, number[]> = { 1: [], 4: [] };
  const perAttempt: number[] = [];
  const rssDelta: number[] = [];
  try {
    const submit = async (attempts: number): Promise<string> => {
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('big.git'), ref: 'main' },
        prompt: 'SCENARIO:work',
        attempts,
        environment: { verify: 'grep -q changed a.txt' },
      });
      if (res.status !== 202) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    };
    // The first task makes the mirror (a full clone); it is not counted.
    await waitForTask(stack, await submit(1), {}, 120_000);
    for (let i = 0; i < SAMPLES; i++) {
      for (const attempts of [1, 4] as const) {
        await sleep(500);
        const rssBefore = process.memoryUsage().rss;
        const t = performance.now();
        const id = await submit(attempts);
        if (attempts === 4) {
          // Read every container's memory until the task ends; each keeps its peak.
          const peaks = new Map<string, number>();
          let rssPeak = rssBefore;
          for (let k = 0; k < 400; k++) {
            await readMemory(id, peaks);
            rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
            const { body } = await call(stack, 'GET', `/v1/tasks/${id}`);
            if (['succeeded', 'failed', 'cancelled'].includes(body.status)) break;
            await sleep(250);
          }
          perAttempt.push(...peaks.values());
          rssDelta.push(rssPeak - rssBefore);
        }
        const done = await waitForTask(stack, id, {}, 120_000);
        if (done.status !== 'succeeded') throw new Error(`${attempts}-attempt task ${done.status}`);
        wall[attempts].push(performance.now() - t);
      }
    }
  } finally {
    await stack.close();
  }
  const one = stats(wall[1]);
  const four = stats(wall[4]);
  const mem = stats(perAttempt);
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  log(`1 attempt p50 ${fmt(one.p50)}, 4 attempts p50 ${fmt(four.p50)}`);
  await writeSection('attempts', [
    ...header(
      'Best-of-N attempts (issue 14)',
      'node --import tsx bench/attempts.bench.ts',
      started,
      loadAtStart,
    ),
    `- What: submit → the task's end, ${SAMPLES} tasks of each kind taken in turns, on a 2,000-file / ~20 MB repository (mirror warm, ref answered from it), each attempt one \`sleep 3\` command then a second command, a final message and \`verify\`; one worker process with \`PATCHBAY_WORKER_CONCURRENCY=4\`, so the 4 attempts run side by side on the 2 cores. Memory: each attempt container's peak cgroup usage less its inactive page cache, read every 250 ms while the task runs (the reads and the status polls add to the 4-attempt wall time); and the peak growth of the one process holding API, worker and test stack meanwhile.`,
    '',
    '| task | p50 | p95 | mean |',
    '|---|---|---|---|',
    `| 1 attempt | ${fmt(one.p50)} | ${fmt(one.p95)} | ${fmt(one.mean)} |`,
    `| 4 attempts | ${fmt(four.p50)} | ${fmt(four.p95)} | ${fmt(four.mean)} |`,
    '',
    `4 attempts take ${(four.p50 / one.p50).toFixed(2)}× the wall time of 1 (p50). Memory per attempt sandbox (peak): p50 ${mib(mem.p50)}, max ${mib(Math.max(...perAttempt))} (${perAttempt.length} containers); the service process grew by p50 ${mib(stats(rssDelta).p50)} at its peak while 4 attempts ran.`,
  ]);
}

await main();
