import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import {
  type Stack,
  call,
  killWorker,
  lifecycleOf,
  spawnWorker,
  startStack,
  waitForTask,
} from '../support/stack.js';

/**
 * Every way a task ends writes exactly one terminal lifecycle event to the outbox: the pipeline
 * finishing (success and failure), a cancel from the API (queued and running), and a task given up
 * as `worker_lost` after its worker died on every try. Workers run as child processes.
 */
let stack: Stack;
const children = new Set<ChildProcess>();
let spawned = 0;

async function worker(): Promise<ChildProcess> {
  const { child, ready } = spawnWorker(stack, `${stack.config.worker.id}-life-${++spawned}`);
  children.add(child);
  await ready;
  return child;
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({
      edit: steps([shell('echo b > a.txt')]),
      hang: steps([shell('sleep 300', { timeout_ms: 600_000 })]),
    }),
  });
});

afterAll(async () => {
  for (const child of children) await killWorker(child);
  await stack?.close();
});

const submit = async (prompt: string, environment: Record<string, unknown> = {}) => {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt,
    environment,
  });
  expect(res.status).toBe(202);
  return res.body.id as string;
};

async function untilPhase(id: string, phase: string, attempt: number): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
    if (
      body.events.some((e: any) => e.type === 'tool_call') &&
      body.events.some((e: any) => e.type === 'phase' && e.phase === phase && e.try === attempt)
    )
      return;
    expect(Date.now(), `task ${id} never reached ${phase} (attempt ${attempt})`).toBeLessThan(
      until,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
}

const terminal = (types: string[]) =>
  types.filter((t) => ['task.succeeded', 'task.failed', 'task.cancelled'].includes(t));

describe('the lifecycle outbox', () => {
  it('gets one terminal event from every way a task ends', { timeout: 240_000 }, async () => {
    // Cancelled from the API while queued: no worker runs yet.
    const queued = await submit('SCENARIO:edit');
    expect((await call(stack, 'POST', `/v1/tasks/${queued}/cancel`)).status).toBe(202);
    expect(await lifecycleOf(stack, queued)).toEqual(['task.queued', 'task.cancelled']);

    let child = await worker();
    // The pipeline ends a task that succeeds, and one whose verify fails.
    const ok = await submit('SCENARIO:edit', { verify: 'grep -q b a.txt' });
    const bad = await submit('SCENARIO:edit', { verify: 'false' });
    expect((await waitForTask(stack, ok)).status).toBe('succeeded');
    expect((await waitForTask(stack, bad)).status).toBe('failed');
    expect(await lifecycleOf(stack, ok)).toEqual(['task.queued', 'task.started', 'task.succeeded']);
    expect(await lifecycleOf(stack, bad)).toEqual(['task.queued', 'task.started', 'task.failed']);

    // Cancelled from the API while running: its worker ends it.
    const running = await submit('SCENARIO:hang');
    await untilPhase(running, 'agent', 1);
    await call(stack, 'POST', `/v1/tasks/${running}/cancel`);
    expect((await waitForTask(stack, running)).status).toBe('cancelled');
    expect(await lifecycleOf(stack, running)).toEqual([
      'task.queued',
      'task.started',
      'task.cancelled',
    ]);

    // Worker lost: its worker dies under it on every try; the next worker gives it up.
    const lost = await submit('SCENARIO:hang');
    for (let attempt = 1; attempt <= 3; attempt++) {
      await untilPhase(lost, 'agent', attempt);
      await killWorker(child);
      child = await worker();
    }
    const ended = await waitForTask(stack, lost, {}, 120_000);
    expect(ended.error).toMatchObject({ code: 'worker_lost' });
    const types = await lifecycleOf(stack, lost);
    expect(terminal(types)).toEqual(['task.failed']);
    expect(types[0]).toBe('task.queued');

    for (const id of [queued, ok, bad, running, lost])
      expect(terminal(await lifecycleOf(stack, id)), id).toHaveLength(1);
  });
});
