import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateEngine } from '../support/private-engine.js';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';
import { createBridge } from '../support/tls-engine.js';

/**
 * The Docker engine restarted under running tasks. The engine is a private `dockerd` with its own
 * socket, data root, exec root (hence its own containerd) and bridge interface, holding a copy of
 * the sandbox image: the shared engine the other suites use is never touched. (Not `--bridge=none`:
 * with it, dockerd deletes the host's `docker0`, which belongs to the shared engine.)
 */
/** Engine restarts (CI 1; the published figure uses 5), each under two running tasks. */
const ROUNDS = Number(process.env.PATCHBAY_ENGINE_RESTARTS ?? 1);
const run = promisify(execFile);
let stack: Stack;
let engine: PrivateEngine;
let dir = '';
let bridge = '';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function submit(prompt: string) {
  return call(stack, 'POST', '/v1/tasks', { repo: { url: stack.git.url('app.git') }, prompt });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pb-dockerd-'));
  const socket = join(dir, 'docker.sock');
  bridge = await createBridge('pbd', 254);
  engine = new PrivateEngine({ dir, host: `unix://${socket}`, bridge });
  await engine.start();
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    env: { DOCKER_HOST: `unix://${socket}`, PATCHBAY_WORKER_CONCURRENCY: '2' },
    script: scenarioScript({
      slow: steps([
        shell('sleep 2; echo one > one.txt'),
        shell('sleep 2; echo two > two.txt'),
        shell('sleep 1; echo three > three.txt'),
      ]),
      quick: steps([shell('echo done > done.txt')]),
    }),
  });
  await engine.copyImage(stack.config.sandbox.image);
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await engine?.close();
  if (bridge !== '') await run('ip', ['link', 'del', bridge]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('Docker engine restarted mid-task', () => {
  it(`fails or retries the affected tasks with a code over ${ROUNDS} restart(s); the worker stays up and runs the next ones`, async () => {
    const affected: string[] = [];
    const duringOutage: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const running: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await submit('SCENARIO:slow');
        expect(res.status).toBe(202);
        running.push(res.body.id);
      }
      const deadline = Date.now() + 60_000;
      for (;;) {
        const phases = await Promise.all(
          running.map(async (id) => (await call(stack, 'GET', `/v1/tasks/${id}`)).body.phase),
        );
        if (phases.every((phase) => phase === 'agent')) break;
        if (Date.now() > deadline) throw new Error(`the tasks never reached the agent phase`);
        await delay(100);
      }
      expect(await engine.containers()).toHaveLength(2);
      affected.push(...running);

      await engine.stop();
      // Submitted while the engine is down: retried until the engine is back.
      const res = await submit('SCENARIO:quick');
      expect(res.status).toBe(202);
      duringOutage.push(res.body.id);
      await delay(2000);
      await engine.start();
      for (const id of [...running, res.body.id]) await waitForTask(stack, id, {}, 120_000);
    }

    const outcomes: Record<string, number> = {};
    for (const id of [...affected, ...duringOutage]) {
      const task = (await call(stack, 'GET', `/v1/tasks/${id}`)).body;
      const outcome =
        task.status === 'succeeded' ? 'succeeded' : `${task.status}:${task.error?.code}`;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (task.status === 'failed') expect(task.error.code).toBe('sandbox_error');
      else expect(task.status).toBe('succeeded');
      // A running task cannot have gone through the restart unnoticed: it failed, or ran again.
      if (affected.includes(id) && task.status === 'succeeded')
        expect(task.tries).toBeGreaterThan(1);
      // One that found the engine unreachable is tried again (after 5 s, then 10 s) and runs
      // once the engine is back.
      if (duringOutage.includes(id)) {
        expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
        expect(task.tries).toBeGreaterThan(1);
      }
      const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
      expect(body.events.at(-1)).toMatchObject({ type: 'status', status: task.status });
    }
    console.log(
      `docker-restart: ${ROUNDS} engine restarts under ${affected.length} running tasks, ` +
        `${duringOutage.length} submitted during the outages; outcomes ${JSON.stringify(outcomes)}`,
    );

    // The same worker process, still up, runs new tasks on the restarted engine.
    const after = await submit('SCENARIO:slow');
    const done = await waitForTask(stack, after.body.id, {}, 120_000);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const patch = await fetch(`${stack.url}/v1/tasks/${after.body.id}/patch`);
    expect(await patch.text()).toContain('+three');

    // Containers of the tasks cut short (stopped by the engine's shutdown) are reaped.
    const reaped = Date.now() + 30_000;
    while ((await engine.containers()).length > 0) {
      if (Date.now() > reaped)
        throw new Error(`containers left: ${(await engine.containers()).join(', ')}`);
      await delay(500);
    }
  }, 600_000);
});
