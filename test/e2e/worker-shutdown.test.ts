import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let stack: Stack;
const children: ChildProcess[] = [];
const starts = { quick: 0, stuck: 0 };

function spawnWorker(id: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      ...stack.env,
      PATCHBAY_WORKER_ID: id,
      LOG_LEVEL: 'warn',
      PATCHBAY_SHUTDOWN_GRACE_SECONDS: '6',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function waitForToolCall(id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (
    !(await call(stack, 'GET', `/v1/tasks/${id}/events`)).body.events.some(
      (e: any) => e.type === 'tool_call',
    )
  ) {
    if (Date.now() > deadline) throw new Error(`task ${id} never reached its first command`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({
      // Finishes inside the grace period.
      quick: (n) =>
        n === 0
          ? ((starts.quick += 1), { calls: [shell('sleep 3 && echo q > quick.txt')] })
          : { text: 'Done.' },
      // Outlives the grace period on its first start; quick when it runs again.
      stuck: (n) =>
        n === 0
          ? ((starts.stuck += 1),
            { calls: [shell(starts.stuck === 1 ? 'sleep 120' : 'echo s > stuck.txt')] })
          : { text: 'Done.' },
    }),
  });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await stack?.close();
});

describe('SIGTERM on a worker', () => {
  it(
    'lets short tasks finish, hands long ones back after the grace period, and exits',
    { timeout: 180_000 },
    async () => {
      const worker = spawnWorker(`${stack.config.worker.id}-draining`);
      const spec = (prompt: string) => ({ repo: { url: stack.git.url('app.git') }, prompt });
      const quick = (await call(stack, 'POST', '/v1/tasks', spec('SCENARIO:quick'))).body
        .id as string;
      const stuck = (await call(stack, 'POST', '/v1/tasks', spec('SCENARIO:stuck'))).body
        .id as string;
      await Promise.all([waitForToolCall(quick), waitForToolCall(stuck)]);

      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(6_000 + 15_000);

      expect((await waitForTask(stack, quick, {}, 1000)).status).toBe('succeeded');
      const handedBack = (await call(stack, 'GET', `/v1/tasks/${stuck}`)).body;
      expect(handedBack.status).toBe('running');
      const log = (await call(stack, 'GET', `/v1/tasks/${stuck}/events`)).body.events;
      expect(log.at(-1)).toMatchObject({
        type: 'error',
        message: expect.stringContaining('shutting down'),
      });

      spawnWorker(`${stack.config.worker.id}-next`);
      const done = await waitForTask(stack, stuck, {}, 90_000);
      expect(done.status).toBe('succeeded');
      expect(done.result.files.map((f: any) => f.path)).toEqual(['stuck.txt']);
      expect(starts).toEqual({ quick: 1, stuck: 2 });
    },
  );
});
