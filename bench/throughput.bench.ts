/**
 * Throughput benchmark (issue 7, figure 5): tasks per minute with 1 and 2 worker processes at
 * worker concurrency 1, 2, 4, 8 and 16, and memory per running task (worker RSS above idle plus
 * container memory from the cgroup, as `docker stats` computes it).
 *
 *   node --import tsx bench/throughput.bench.ts
 *   BENCH_CONCURRENCY=1,4 BENCH_WORKERS=1 node --import tsx bench/throughput.bench.ts
 *
 * Workers run as child processes (`apps/worker/src/main.ts`), as in production; the API, git
 * server and scripted model run in this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { scenarioScript, steps } from '../test/support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../test/support/stack.js';
import { bigRepo, workCalls } from './fixtures.js';
import { header, load, log, sleep, writeSection } from './support.js';

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,2,4,8,16').split(',').map(Number);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
/** Tasks per configuration: enough to keep every slot busy twice, bounded for a shared machine. */
const tasksFor = (slots: number): number => Math.min(32, Math.max(8, 2 * slots));
const CALLS = 10;
const WORKER_MAIN = fileURLToPath(new URL('../apps/worker/src/main.ts', import.meta.url));
const docker = createDockerClient(process.env.DOCKER_HOST);
/** Every task this benchmark submitted, to find (and finally remove) its containers. */
const allIds: string[] = [];

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/** Running containers of this benchmark's tasks (the namespace is shared with other workers). */
async function containersOf(ids: ReadonlySet<string>): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [LABELS.task] } });
  return list.filter((c) => ids.has(c.Labels[LABELS.task] ?? '')).map((c) => c.Id);
}

/** Container memory as `docker stats` shows it (cgroup v1: usage minus inactive file cache). */
async function containerMemory(ids: ReadonlySet<string>): Promise<number[]> {
  const out: number[] = [];
  for (const id of await containersOf(ids)) {
    const c = { Id: id };
    const dir = `/sys/fs/cgroup/memory/docker/${c.Id}`;
    const usage = Number(await readFile(`${dir}/memory.usage_in_bytes`, 'utf8').catch(() => 'NaN'));
    const stat = await readFile(`${dir}/memory.stat`, 'utf8').catch(() => '');
    const inactive = Number(/^total_inactive_file (\d+)$/m.exec(stat)?.[1] ?? 0);
    if (Number.isFinite(usage)) out.push(usage - inactive);
  }
  return out;
}

async function startWorkers(stack: Stack, n: number, concurrency: number): Promise<ChildProcess[]> {
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
      env: {
        ...process.env,
        ...stack.env,
        PATCHBAY_WORKER_ID: `bench-${i}`,
        PATCHBAY_WORKER_CONCURRENCY: String(concurrency),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
  }
  return children;
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 15_000).unref();
        }),
    ),
  );
}

interface Row {
  workers: number;
  concurrency: number;
  tasks: number;
  perMinute: number;
  peakRunning: number;
  rssDeltaPerTask: number;
  containerMemory: number;
  load: string;
}

async function runConfig(stack: Stack, workers: number, concurrency: number): Promise<Row> {
  const children = await startWorkers(stack, workers, concurrency);
  try {
    // Let the workers connect and settle (tsx compile, Redis, Docker) before the idle RSS.
    await sleep(4000);
    const idle = (await Promise.all(children.map((c) => rssOf(c.pid!)))).reduce((a, b) => a + b, 0);
    const n = tasksFor(workers * concurrency);
    const t = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('repo.git'), ref: 'main' },
        prompt: 'SCENARIO:work',
      });
      if (res.status !== 202) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
      ids.push(res.body.id as string);
    }
    allIds.push(...ids);
    const mine = new Set(ids);
    let done = false;
    let peakRunning = 0;
    let peakRss = idle;
    const containerSamples: number[] = [];
    const sampling = (async () => {
      for (;;) {
        const mems = await containerMemory(mine);
        const rss = (await Promise.all(children.map((c) => rssOf(c.pid!)))).reduce(
          (a, b) => a + b,
          0,
        );
        if (mems.length >= peakRunning && mems.length > 0) {
          peakRunning = mems.length;
          peakRss = Math.max(peakRss, rss);
        }
        containerSamples.push(...mems);
        if (done) return;
        await sleep(250);
      }
    })();
    const finished = await Promise.all(ids.map((id) => waitForTask(stack, id, {}, 300_000)));
    const elapsed = performance.now() - t;
    done = true;
    await sampling;
    const failed = finished.filter((f) => f.status !== 'succeeded');
    if (failed.length > 0)
      throw new Error(`${failed.length} tasks failed: ${JSON.stringify(failed[0].error)}`);
    const mean = (xs: number[]): number =>
      xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      workers,
      concurrency,
      tasks: n,
      perMinute: n / (elapsed / 60_000),
      peakRunning,
      rssDeltaPerTask: peakRunning === 0 ? NaN : (peakRss - idle) / peakRunning,
      containerMemory: mean(containerSamples),
      load: load(),
    };
  } finally {
    await stopWorkers(children);
  }
}

const mib = (b: number): string => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MiB` : '–');

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = load();
  const stack = await startStack({
    repos: { 'repo.git': bigRepo(200, 10_000) },
    script: scenarioScript({ work: steps(workCalls(CALLS)) }),
    worker: false,
    env: { PATCHBAY_WARM_POOL_SIZE: '0', PATCHBAY_MAX_ACTIVE_TASKS: '1000' },
  });
  const rows: Row[] = [];
  try {
    // Make the mirror once, outside the figures.
    const prime = await startWorkers(stack, 1, 1);
    const id = (
      await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('repo.git'), ref: 'main' },
        prompt: 'SCENARIO:work',
      })
    ).body.id as string;
    allIds.push(id);
    await waitForTask(stack, id, {}, 120_000);
    await stopWorkers(prime);
    for (const workers of WORKERS) {
      for (const concurrency of CONCURRENCY) {
        log(`${workers} worker(s) × concurrency ${concurrency}`);
        const row = await runConfig(stack, workers, concurrency);
        log(`  ${row.perMinute.toFixed(1)} tasks/min, load ${row.load}`);
        rows.push(row);
      }
    }
  } finally {
    await stack.close();
    const left = await containersOf(new Set(allIds));
    await Promise.allSettled(left.map((id) => docker.getContainer(id).remove({ force: true })));
  }
  const best = (w: number): Row | undefined =>
    rows.filter((r) => r.workers === w).sort((a, b) => b.perMinute - a.perMinute)[0];
  const bests = WORKERS.map((w) => best(w))
    .filter((r): r is Row => r !== undefined)
    .map(
      (r) =>
        `${r.workers} worker${r.workers > 1 ? 's' : ''}: ${r.perMinute.toFixed(0)} tasks/min at concurrency ${r.concurrency}`,
    );
  await writeSection('throughput', [
    ...header(
      'Throughput and memory per running task',
      `${process.env.BENCH_CONCURRENCY ? `BENCH_CONCURRENCY=${process.env.BENCH_CONCURRENCY} ` : ''}${process.env.BENCH_WORKERS ? `BENCH_WORKERS=${process.env.BENCH_WORKERS} ` : ''}node --import tsx bench/throughput.bench.ts`,
      started,
      loadStart,
    ),
    `- Task: ${CALLS} tool calls (${CALLS - 1} no-op shells and a 3-file patch) on a 200-file / ~2 MB repository with a warm mirror, no warm pool, no setup or verify; scripted model on 127.0.0.1 (no think time: this is the service's own ceiling, not a model's).`,
    '- Workers are separate processes (`node --import tsx apps/worker/src/main.ts`); the API, the git server and the scripted model share this process. Tasks per run: 2 × (workers × concurrency), between 8 and 32, all submitted at once; tasks/min = tasks / (first submit → last finished).',
    '- Memory per running task: (peak worker RSS − idle RSS) / containers running at that moment, plus the mean container memory (cgroup v1 `memory.usage_in_bytes` − `total_inactive_file`, what `docker stats` shows; the /workspace tmpfs counts here).',
    '',
    '| workers | concurrency | tasks | tasks/min | peak running | worker RSS Δ per task | container memory | load after |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.workers} | ${r.concurrency} | ${r.tasks} | ${r.perMinute.toFixed(1)} | ${r.peakRunning} | ${mib(r.rssDeltaPerTask)} | ${mib(r.containerMemory)} | ${r.load} |`,
    ),
    '',
    `Best: ${bests.join('; ')}. No numeric target in the issue; on 2 cores the ceiling is CPU (container create/start in dockerd, tar, git), so more than one worker process mainly adds contention.`,
  ]);
}

await main();
