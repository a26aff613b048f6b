import { createRedis } from '@patchbay/queue';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryUntilResolved } from '../support/retry.js';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, freePort, startStack, waitForTask } from '../support/stack.js';

/**
 * Redis restarted (with AOF) under running and queued tasks. The Redis is a private
 * `redis-server` on a port of its own: the shared one on 6379 is never touched.
 */
let stack: Stack;
let redis: ChildProcess | undefined;
let port = 0;
let dir = '';

async function startRedis(): Promise<void> {
  redis = spawn(
    'redis-server',
    [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      // Every write on disk before it is acknowledged: a restart may lose nothing.
      '--appendfsync',
      'always',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  const client = createRedis({ url: `redis://127.0.0.1:${port}` });
  try {
    await retryUntilResolved(() => client.ping(), { timeoutMs: 10_000 });
  } finally {
    client.disconnect();
  }
}

async function stopRedis(): Promise<void> {
  if (!redis || redis.exitCode !== null) return;
  const exited = once(redis, 'exit');
  redis.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  dir = await mkdtemp(join(tmpdir(), 'patchbay-redis-'));
  await startRedis();
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    env: { REDIS_URL: `redis://127.0.0.1:${port}`, PATCHBAY_WORKER_CONCURRENCY: '2' },
    script: scenarioScript({
      slow: steps([
        shell('sleep 2; echo one > one.txt'),
        shell('sleep 2; echo two > two.txt'),
        shell('sleep 1; echo three > three.txt'),
      ]),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
  await stopRedis();
  await rm(dir, { recursive: true, force: true });
});

describe('Redis restarted under load', () => {
  it('loses no task, event or queued job; the API answers 503 meanwhile and recovers', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:slow',
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    // Two run (concurrency 2) and two wait in the queue when Redis goes away.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { body } = await call(stack, 'GET', '/v1/tasks?status=running');
      if (body.tasks.some((t: { phase: string }) => t.phase === 'agent')) break;
      if (Date.now() > deadline) throw new Error('no task reached the agent phase');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    await stopRedis();
    const down = await call(stack, 'GET', `/v1/tasks/${ids[0]}`);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('unavailable');
    expect(
      (
        await call(stack, 'POST', '/v1/tasks', {
          repo: { url: stack.git.url('app.git') },
          prompt: 'x',
        })
      ).status,
    ).toBe(503);
    expect((await call(stack, 'GET', '/readyz')).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await startRedis();

    // Everyone reconnects by themselves.
    const back = Date.now() + 30_000;
    while ((await call(stack, 'GET', '/readyz')).status !== 200) {
      if (Date.now() > back) throw new Error('the API never saw Redis again');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    for (const id of ids) {
      const task = await waitForTask(stack, id, {}, 180_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      // The event log is whole: seq runs 1, 2, 3, … with no gap, and ends with the status.
      const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
      const seqs = body.events.map((e: { seq: number }) => e.seq);
      expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
      expect(body.events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
    }
    const listed = await call(stack, 'GET', '/v1/tasks?limit=100');
    expect(listed.body.tasks.map((t: { id: string }) => t.id).sort()).toEqual([...ids].sort());
  }, 300_000);
});
