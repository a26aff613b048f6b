import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { isPatchbayError } from '@patchbay/core';
import { Job, Queue, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CancelChannel } from './cancel-channel.js';
import { createRedis } from './redis.js';
import { TASK_QUEUE_NAME, TaskQueue, bullPrefix } from './task-queue.js';
import {
  createTaskWorker,
  isHandBackAbort,
  type TaskProcessor,
  type TaskWorkerOptions,
  type TaskWorker,
} from './task-worker.js';
import { REDIS_URL, deletePrefix, uniquePrefix, waitFor } from './test-support.js';

let prefix: string;
let redis: Redis;
let queue: TaskQueue;
let workers: TaskWorker[];

beforeEach(() => {
  prefix = uniquePrefix('queue');
  redis = createRedis({ url: REDIS_URL, name: 'queue-test' });
  queue = new TaskQueue({ connection: redis, prefix, backoffMs: 50 });
  workers = [];
});
afterEach(async () => {
  await Promise.all(workers.map((w) => w.close({ graceMs: 0 })));
  await queue.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

function startWorker(
  processor: TaskProcessor,
  options: Pick<
    TaskWorkerOptions,
    'concurrency' | 'onGivenUp' | 'lockDuration' | 'stalledInterval' | 'keepEnded'
  > = {},
): TaskWorker {
  const worker = createTaskWorker({
    url: REDIS_URL,
    prefix,
    processor,
    lockDuration: 1000,
    stalledInterval: 500,
    abortGraceMs: 2000,
    ...options,
  });
  workers.push(worker);
  return worker;
}

/** A promise with its resolver, for steering a processor from the test. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('TaskQueue and TaskWorker', () => {
  it('runs an enqueued task by its id, once, and knows while it is active', async () => {
    const seen: { taskId: string; attempt: number; data: unknown }[] = [];
    const release = deferred();
    const started = deferred();
    startWorker(async (taskId, { try: attempt, job }) => {
      seen.push({ taskId, attempt, data: job.data });
      started.resolve();
      await release.promise;
    });
    await queue.enqueue('task-1');
    await queue.enqueue('task-1');
    await started.promise;
    expect(await queue.isActive('task-1')).toBe(true);
    expect(await queue.isActive('task-2')).toBe(false);
    expect((await queue.counts()).active).toBe(1);
    release.resolve();
    await waitFor(async () => (await queue.counts()).completed === 1, 5000, 'completion');
    expect(await queue.isActive('task-1')).toBe(false);
    expect(seen).toEqual([{ taskId: 'task-1', attempt: 1, data: { taskId: 'task-1' } }]);
  });

  it('keeps as many ended jobs as the worker says, though no job names it', async () => {
    const ids = ['good-1', 'good-2', 'good-3', 'good-4', 'bad-1', 'bad-2'];
    for (const id of ids) await queue.enqueue(id);
    const bull = new Queue(TASK_QUEUE_NAME, { connection: redis, prefix: bullPrefix(prefix) });
    const jobs = await Promise.all(ids.map((id) => Job.fromId(bull, id)));
    await bull.close();
    expect(
      jobs.map((job) => [job?.id, job?.opts.removeOnComplete, job?.opts.removeOnFail]),
    ).toEqual(ids.map((id) => [id, undefined, undefined]));
    startWorker(
      async (taskId) => {
        if (taskId.startsWith('bad')) throw new UnrecoverableError('no');
      },
      { keepEnded: { completed: { count: 2 }, failed: { count: 1 } } },
    );
    await waitFor(
      async () => {
        const c = await queue.counts();
        return c.waiting + c.active === 0 && c.completed === 2 && c.failed === 1;
      },
      5000,
      'the oldest ended jobs removed',
    );
  });

  it('retries a failing task but never one that throws UnrecoverableError', async () => {
    const calls = new Map<string, number[]>();
    startWorker(async (taskId, { try: attempt }) => {
      calls.set(taskId, [...(calls.get(taskId) ?? []), attempt]);
      if (taskId === 'final') throw new UnrecoverableError('bad repo');
      if (attempt < 2) throw new Error('flaky');
    });
    await queue.enqueue('final');
    await queue.enqueue('flaky');
    await waitFor(
      async () => {
        const c = await queue.counts();
        return c.failed === 1 && c.completed === 1;
      },
      5000,
      'both jobs to settle',
    );
    expect(calls.get('final')).toEqual([1]);
    expect(calls.get('flaky')).toEqual([1, 2]);
  });

  it('gives up a job once, when it will not run again, and never one that is retried', async () => {
    const givenUp: { taskId: string; attempt: number; reason: string }[] = [];
    startWorker(
      async (taskId, { try: attempt }) => {
        if (taskId === 'final') throw new UnrecoverableError('bad repo');
        if (taskId === 'always') throw new Error('broken every time');
        if (attempt < 2) throw new Error('flaky');
      },
      { onGivenUp: (job) => givenUp.push(job) },
    );
    await queue.enqueue('final');
    await queue.enqueue('always');
    await queue.enqueue('flaky');
    await waitFor(
      async () => {
        const c = await queue.counts();
        return c.failed === 2 && c.completed === 1;
      },
      10_000,
      'the jobs to settle',
    );
    expect(givenUp.map((g) => g.taskId).sort()).toEqual(['always', 'final']);
    expect(givenUp.find((g) => g.taskId === 'final')).toEqual({
      taskId: 'final',
      attempt: 1,
      reason: 'bad repo',
    });
  });

  it('refuses ids BullMQ or Redis keys cannot take', async () => {
    for (const id of ['', 'a:b', '123', 'a/b', 'x'.repeat(129)]) {
      const err: unknown = await queue.enqueue(id).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isPatchbayError(err, 'validation_error'), id).toBe(true);
    }
  });

  it('removes a waiting job but not an active one', async () => {
    await queue.enqueue('waiting-1');
    expect((await queue.counts()).waiting).toBe(1);
    expect(await queue.remove('waiting-1')).toBe(true);
    expect(await queue.remove('waiting-1')).toBe(false);
    expect(await queue.remove('never-queued')).toBe(false);
    expect((await queue.counts()).waiting).toBe(0);

    const started = deferred();
    const release = deferred();
    startWorker(async () => {
      started.resolve();
      await release.promise;
    });
    await queue.enqueue('active-1');
    await started.promise;
    expect(await queue.remove('active-1')).toBe(false);
    release.resolve();
  });

  it('aborts a running task on cancel with a cancelled reason', async () => {
    const reason = deferred<unknown>();
    const worker = startWorker(async (_taskId, { signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      reason.resolve(signal.reason);
      throw new UnrecoverableError('cancelled');
    });
    await queue.enqueue('to-cancel');
    await waitFor(() => worker.running().includes('to-cancel'), 5000, 'the task to start');
    expect(worker.cancel('elsewhere')).toBe(false);
    expect(worker.cancel('to-cancel')).toBe(true);
    const why = await reason.promise;
    expect(isPatchbayError(why, 'cancelled')).toBe(true);
    expect(isHandBackAbort(why)).toBe(false);
  });

  it("hands a SIGKILLed worker's task to another worker after the stalled interval", async () => {
    const fixture = fileURLToPath(new URL('./crash-worker.test-support.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, REDIS_URL, prefix], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      const started = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('started crashy 1')) resolve();
        });
      });
      await queue.enqueue('crashy');
      await Promise.race([
        started,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`child said: ${out}`)), 20_000),
        ),
      ]);
      expect(await queue.isActive('crashy')).toBe(true);
      child.kill('SIGKILL');
      await once(child, 'exit');
      // With no worker alive the job sits in the active list, but its lock lapses.
      await waitFor(async () => !(await queue.isActive('crashy')), 5000, 'the lock to lapse');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }

    const attempts: number[] = [];
    const done = deferred();
    startWorker(async (taskId, { try: attempt }) => {
      if (taskId === 'crashy') attempts.push(attempt);
      done.resolve();
    });
    const t0 = Date.now();
    await done.promise;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(attempts).toEqual([2]);
  });

  it('goes on with a run whose lock lapsed when the job comes back to it, and never runs it twice', async () => {
    const runs: number[] = [];
    const release = deferred();
    const started = deferred();
    // A long lock, renewed only after the test: the stalled check finds the lapsed lock first.
    const worker = startWorker(
      async (_taskId, { try: attempt }) => {
        runs.push(attempt);
        started.resolve();
        await release.promise;
      },
      { concurrency: 2, lockDuration: 30_000, stalledInterval: 200 },
    );
    let deliveries = 0;
    worker.worker.on('active', () => void deliveries++);
    await queue.enqueue('lapsed');
    await started.promise;
    // As after a Redis outage longer than the lock: the run goes on, but its lock is gone.
    await redis.del(`${bullPrefix(prefix)}:${TASK_QUEUE_NAME}:lapsed:lock`);
    await waitFor(async () => deliveries === 2, 5000, 'stalled recovery to give the job out again');
    expect(worker.running()).toEqual(['lapsed']);
    release.resolve();
    await waitFor(async () => (await queue.counts()).completed === 1, 5000, 'completion');
    expect(runs).toEqual([1]);
    expect(await queue.counts()).toMatchObject({ failed: 0, active: 0, waiting: 0 });
    expect(worker.running()).toEqual([]);
  });

  it('on close lets a short task finish and hands a long one back, which runs again', async () => {
    const log: string[] = [];
    const bothStarted = deferred();
    const worker = startWorker(
      async (taskId, { signal, try: attempt }) => {
        log.push(`start ${taskId} ${attempt}`);
        if (log.length === 2) bothStarted.resolve();
        if (taskId === 'short') {
          await new Promise((r) => setTimeout(r, 200));
          log.push('short done');
          return;
        }
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        log.push(`long aborted handBack=${isHandBackAbort(signal.reason)}`);
        throw signal.reason;
      },
      { concurrency: 2 },
    );
    await queue.enqueue('short');
    await queue.enqueue('long');
    await bothStarted.promise;
    const t0 = Date.now();
    const closing = worker.close({ graceMs: 600 });
    expect(worker.close({ graceMs: 600 })).toBe(closing);
    await closing;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(log).toContain('short done');
    expect(log).toContain('long aborted handBack=true');
    const counts = await queue.counts();
    expect(counts).toMatchObject({ completed: 1, failed: 0, active: 0, waiting: 1 });

    const rerun = deferred<{ taskId: string; attempt: number }>();
    startWorker(async (taskId, { try: attempt }) => rerun.resolve({ taskId, attempt }));
    expect(await rerun.promise).toEqual({ taskId: 'long', attempt: 2 });
    await waitFor(async () => (await queue.counts()).completed === 2, 5000, 'the rerun to finish');
  });

  it('gives up on a task that ignores its abort signal and leaves it to stalled recovery', async () => {
    const errors: Error[] = [];
    const started = deferred();
    const stubborn = createTaskWorker({
      url: REDIS_URL,
      prefix,
      lockDuration: 1000,
      stalledInterval: 500,
      abortGraceMs: 300,
      onError: (err) => errors.push(err),
      processor: async () => {
        started.resolve();
        await new Promise(() => {});
      },
    });
    workers.push(stubborn);
    await queue.enqueue('stubborn');
    await started.promise;
    const t0 = Date.now();
    await stubborn.close({ graceMs: 100 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(errors.map((e) => e.message).join('\n')).toContain('ignored their abort signal');

    const rerun = deferred<number>();
    startWorker(async (_taskId, { try: attempt }) => rerun.resolve(attempt));
    expect(await rerun.promise).toBe(2);
  });

  it('closes an idle worker promptly', async () => {
    const worker = startWorker(async () => {});
    await worker.waitUntilReady();
    const t0 = Date.now();
    await worker.close();
    await worker.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('CancelChannel', () => {
  it('delivers a cancel to every subscriber until it unsubscribes or closes', async () => {
    const a = new CancelChannel({ redis, prefix });
    const b = new CancelChannel({ redis, prefix });
    const other = new CancelChannel({ redis, prefix: `${prefix}-other` });
    try {
      const gotA: string[] = [];
      const gotB: string[] = [];
      const gotOther: string[] = [];
      const stopA = await a.subscribe((id) => gotA.push(id));
      await b.subscribe((id) => gotB.push(id));
      await b.subscribe(() => {
        throw new Error('a broken handler does not stop the others');
      });
      await other.subscribe((id) => gotOther.push(id));

      expect(await a.publish('task-1')).toBe(2);
      await waitFor(() => gotA.length === 1 && gotB.length === 1, 2000, 'delivery');
      stopA();
      await b.publish('task-2');
      await waitFor(() => gotB.length === 2, 2000, 'second delivery');
      expect(gotA).toEqual(['task-1']);
      expect(gotB).toEqual(['task-1', 'task-2']);
      expect(gotOther).toEqual([]);

      await b.close();
      await b.close();
      expect(await a.publish('task-3')).toBe(1);
      await expect(b.subscribe(() => {})).rejects.toThrow('closed');
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });
});
