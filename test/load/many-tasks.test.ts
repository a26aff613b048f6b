import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack } from '../support/stack.js';

// CI runs a few dozen; the full count runs with PATCHBAY_LOAD_TASKS=1000 (see docs/RELIABILITY.md).
const TASKS = Number(process.env.PATCHBAY_LOAD_TASKS ?? 40);
const root = fileURLToPath(new URL('../..', import.meta.url));
let stack: Stack;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    env: { PATCHBAY_MAX_ACTIVE_TASKS: '100000' },
    script: scenarioScript({
      few: (n, request) =>
        steps([
          shell(`echo "${/task-(\d+)/.exec(request.lastUserText ?? '')?.[1]}" > out.txt`),
          shell('cat out.txt'),
        ])(n, request),
    }),
  });
  for (const name of ['a', 'b']) {
    workers.push(
      spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
        cwd: root,
        env: {
          ...process.env,
          ...stack.env,
          PATCHBAY_WORKER_ID: `${stack.config.worker.id}-${name}`,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  }
});

afterAll(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  await stack?.close();
});

const rssKiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

describe('load', () => {
  it(
    `runs ${TASKS} tasks submitted at once on 2 workers: all succeed with the right patch`,
    { timeout: 3_600_000 },
    async () => {
      const ids: string[] = [];
      const submitStarted = Date.now();
      // As fast as the API takes them, 20 requests in flight.
      for (let i = 0; i < TASKS; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(20, TASKS - i) }, (_, j) =>
            call(stack, 'POST', '/v1/tasks', {
              repo: { url: stack.git.url('app.git') },
              prompt: `SCENARIO:few task-${i + j}`,
            }),
          ),
        );
        for (const res of batch) {
          expect(res.status).toBe(202);
          ids.push(res.body.id);
        }
      }
      const submitMs = Date.now() - submitStarted;

      const early = Math.min(100, Math.ceil(TASKS / 10));
      let earlyRss: number[] | undefined;
      const done = new Map<string, any>();
      const deadline = Date.now() + TASKS * 5_000 + 60_000;
      while (done.size < TASKS) {
        if (Date.now() > deadline) throw new Error(`${done.size}/${TASKS} tasks finished in time`);
        // Stop at the first failure rather than waiting for the deadline.
        const failed = await call(stack, 'GET', '/v1/tasks?limit=10&status=failed');
        expect(failed.body.tasks.map((t: any) => t.error)).toEqual([]);
        for (const id of ids) {
          if (done.has(id)) continue;
          const { body } = await call(stack, 'GET', `/v1/tasks/${id}`);
          if (['succeeded', 'failed', 'cancelled'].includes(body.status)) done.set(id, body);
        }
        if (earlyRss === undefined && done.size >= early)
          earlyRss = workers.map((w) => rssKiB(w.pid!));
        if (done.size < TASKS) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      const endRss = workers.map((w) => rssKiB(w.pid!));

      for (const [i, id] of ids.entries()) {
        const task = done.get(id);
        expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
        expect(task.result.files).toEqual([
          { path: 'out.txt', status: 'added', additions: 1, deletions: 0 },
        ]);
        const patch = await call(stack, 'GET', `/v1/tasks/${id}/patch`);
        expect(patch.body).toContain(`\n+${i}\n`);
      }
      console.log(
        `load: ${TASKS} tasks, submitted in ${submitMs} ms, worker RSS after ${early} tasks ${earlyRss?.join('/')} KiB, after all ${endRss.join('/')} KiB`,
      );
      // Memory must settle, not grow with the number of tasks run; meaningful over a long run only.
      if (TASKS >= 500)
        endRss.forEach((rss, w) => expect(rss).toBeLessThanOrEqual(earlyRss![w]! * 1.1));
    },
  );
});
