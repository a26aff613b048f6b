import { createDockerClient, LABELS } from '@patchbay/sandbox';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell } from '../support/scenarios.js';
import { type Stack, call, spawnWorker, startStack, waitForTask } from '../support/stack.js';

const docker = createDockerClient();
let stack: Stack;
const children: ChildProcess[] = [];
let attempts = 0;

/** A worker in its own process, so it can be killed for real. */
function startWorker(id: string): ChildProcess {
  const { child } = spawnWorker(stack, id);
  children.push(child);
  return child;
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({
      // The first attempt's command outlives its worker; the model answers the retry's first
      // turn (a fresh conversation in a fresh container) with a quick command instead.
      crash: (n) => {
        if (n === 0) {
          attempts += 1;
          return {
            text: 'Working.',
            calls: [shell(attempts === 1 ? 'sleep 120' : 'echo done > done.txt')],
          };
        }
        return { text: 'Done.' };
      },
    }),
  });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await stack?.close();
});

describe('a worker killed mid-task', () => {
  it(
    'leads to the task completing on another worker and no container left behind',
    { timeout: 180_000 },
    async () => {
      const first = startWorker(`${stack.config.worker.id}-doomed`);
      const { body } = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:crash',
      });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { body: log } = await call(stack, 'GET', `/v1/tasks/${body.id}/events`);
        if (log.events.some((e: any) => e.type === 'tool_call')) break;
        if (Date.now() > deadline)
          throw new Error('the first worker never reached the agent phase');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const [orphan] = await docker.listContainers({
        filters: { label: [`${LABELS.task}=${body.id}`] },
      });
      expect(orphan).toBeDefined();
      first.kill('SIGKILL');

      startWorker(`${stack.config.worker.id}-rescuer`);
      const task = await waitForTask(stack, body.id, {}, 90_000).catch(async (err: unknown) => {
        const { body: log } = await call(stack, 'GET', `/v1/tasks/${body.id}/events`);
        throw new Error(
          `${(err as Error).message}; events: ${JSON.stringify(log.events).slice(-3000)}`,
        );
      });
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      expect(task.tries).toBe(2);
      expect(task.result.files.map((f: any) => f.path)).toEqual(['done.txt']);

      // The dead worker's container is reaped within a reaper period or two.
      const reaped = Date.now() + 20_000;
      while (
        (
          await docker.listContainers({
            all: true,
            filters: { label: [`${LABELS.task}=${body.id}`] },
          })
        ).length > 0
      ) {
        if (Date.now() > reaped)
          throw new Error(`container ${orphan!.Id} of the killed worker was never reaped`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
  );
});
